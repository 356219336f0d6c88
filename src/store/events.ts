/**
 * The append-only event log: every action, observation and lifecycle change of a sandbox. There is no
 * way to change or remove an event (triggers enforce it too). `seq` is global and strictly increasing,
 * so a sandbox's own seqs have gaps; clients page with `after=<last seq seen>`.
 */
import type { Database, Statement } from 'better-sqlite3';
import { EventKind, type SandboxEvent } from '../protocol/api.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { guard } from './errors.js';
import { type Timestamp, toIso, toJson, toMs } from './values.js';

/** The largest page `page()` returns, matching the API's `limit` maximum. */
export const MAX_EVENT_PAGE = 1000;
/** The page size when none is asked for, matching the API's default. */
export const DEFAULT_EVENT_PAGE = 200;

export type EventKindName = SandboxEvent['kind'];

export interface NewEvent {
  sandbox_id: string;
  kind: EventKindName;
  /** For actions and observations, the OpenHands JSON; for lifecycle events, {event, reason}. */
  payload: unknown;
  /** @default now */
  at?: Timestamp;
  /** Milliseconds the action took (on observations). */
  duration_ms?: number | null;
}

export interface EventPage {
  events: SandboxEvent[];
  /** The seq to pass as `after` for the next page: the last event's seq, or `after` itself if none. */
  next_after: number;
}

interface EventRow {
  seq: number;
  sandbox_id: string;
  kind: string;
  at: number;
  payload: string;
  duration_ms: number | null;
}

function toEvent(row: EventRow): SandboxEvent {
  return {
    seq: row.seq,
    sandbox_id: row.sandbox_id,
    kind: row.kind as EventKindName,
    at: toIso(row.at),
    payload: JSON.parse(row.payload) as unknown,
    duration_ms: row.duration_ms,
  };
}

function checkSeq(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field} must be a non-negative integer`);
  }
  return value;
}

export class EventRepo {
  private readonly sandboxExists: Statement<[string], number>;
  private readonly insert: Statement<[string, string, number, string, number | null], EventRow>;
  private readonly touch: Statement<[number, string]>;
  private readonly after: Statement<[string, number, number], EventRow>;
  private readonly last: Statement<[string, number], EventRow>;
  private readonly latest: Statement<[string], number>;
  private readonly open: Statement<[], { sandbox_id: string; open: number; last_at: number }>;
  private readonly appendTx: (e: NewEvent) => SandboxEvent;

  constructor(
    db: Database,
    private readonly now: () => number,
  ) {
    this.sandboxExists = db.prepare<[string], number>('SELECT 1 FROM sandboxes WHERE id = ?').pluck();
    this.insert = db.prepare(
      'INSERT INTO events (sandbox_id, kind, at, payload, duration_ms) VALUES (?, ?, ?, ?, ?) RETURNING *',
    );
    this.touch = db.prepare('UPDATE sandboxes SET last_activity_at = max(last_activity_at, ?) WHERE id = ?');
    this.after = db.prepare('SELECT * FROM events WHERE sandbox_id = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.last = db.prepare(
      'SELECT * FROM (SELECT * FROM events WHERE sandbox_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq',
    );
    this.latest = db
      .prepare<[string], number>('SELECT coalesce(max(seq), 0) FROM events WHERE sandbox_id = ?')
      .pluck();
    this.open = db.prepare(
      `SELECT sandbox_id, sum(kind = 'action') - sum(kind = 'observation') AS open, max(at) AS last_at
         FROM events WHERE kind IN ('action', 'observation') GROUP BY sandbox_id HAVING open > 0`,
    );
    const appendTx = db.transaction((e: NewEvent) => {
      const kind = EventKind.safeParse(e.kind);
      if (!kind.success) {
        throw new BerthError(ErrorCode.VALIDATION_FAILED, `unknown event kind ${JSON.stringify(e.kind)}`);
      }
      const duration = e.duration_ms ?? null;
      if (duration !== null && !(Number.isFinite(duration) && duration >= 0)) {
        throw new BerthError(ErrorCode.VALIDATION_FAILED, 'duration_ms must be a non-negative number');
      }
      const at = e.at === undefined ? this.now() : toMs(e.at, 'at');
      const payload = toJson(e.payload, 'payload');
      this.requireSandbox(e.sandbox_id);
      const row = this.insert.get(e.sandbox_id, kind.data, at, payload, duration) as EventRow;
      // Actions and observations are the agent's activity, which the idle reaper measures.
      if (kind.data !== 'lifecycle') this.touch.run(at, e.sandbox_id);
      return toEvent(row);
    });
    // IMMEDIATE takes the write lock up front, so a writer in another process makes us wait (busy
    // timeout) instead of failing with SQLITE_BUSY when a deferred read would upgrade.
    this.appendTx = (e) => appendTx.immediate(e);
  }

  /**
   * Appends one event and returns it with its seq. On return it is on disk (the store commits with
   * synchronous=FULL). Actions and observations also advance the sandbox's last_activity_at, in the
   * same transaction. Unknown sandbox -> NOT_FOUND; full disk -> NO_SPACE.
   */
  append(e: NewEvent): SandboxEvent {
    return guard(`record an event of sandbox ${e.sandbox_id}`, () => this.appendTx(e));
  }

  /** Up to `limit` (at most MAX_EVENT_PAGE) events of the sandbox with seq > `after`, in order. */
  page(sandboxId: string, after = 0, limit = DEFAULT_EVENT_PAGE): EventPage {
    return guard(`read events of sandbox ${sandboxId}`, () => {
      checkSeq(after, 'after');
      const size = Math.min(checkSeq(limit, 'limit'), MAX_EVENT_PAGE);
      if (size === 0) throw new BerthError(ErrorCode.VALIDATION_FAILED, 'limit must be at least 1');
      this.requireSandbox(sandboxId);
      const events = this.after.all(sandboxId, after, size).map(toEvent);
      return { events, next_after: events.at(-1)?.seq ?? after };
    });
  }

  /** The sandbox's last `limit` events (at most MAX_EVENT_PAGE), oldest first. */
  tail(sandboxId: string, limit = DEFAULT_EVENT_PAGE): SandboxEvent[] {
    return guard(`read events of sandbox ${sandboxId}`, () => {
      const size = Math.min(checkSeq(limit, 'limit'), MAX_EVENT_PAGE);
      this.requireSandbox(sandboxId);
      return this.last.all(sandboxId, size).map(toEvent);
    });
  }

  /** The seq of the sandbox's newest event; 0 when it has none. */
  latestSeq(sandboxId: string): number {
    return guard(`read events of sandbox ${sandboxId}`, () => {
      this.requireSandbox(sandboxId);
      return this.latest.get(sandboxId) as number;
    });
  }

  /**
   * Sandboxes whose log has more actions than observations (a process stopped while they were in
   * flight), with how many are unanswered and when the last of their actions or observations was.
   */
  unanswered(): Array<{ sandboxId: string; count: number; lastAt: Date }> {
    return guard('read unanswered actions', () =>
      this.open.all().map((r) => ({ sandboxId: r.sandbox_id, count: r.open, lastAt: new Date(r.last_at) })),
    );
  }

  private requireSandbox(id: string): void {
    if (this.sandboxExists.get(id) === undefined) {
      throw new BerthError(ErrorCode.NOT_FOUND, `sandbox ${id} not found`);
    }
  }
}
