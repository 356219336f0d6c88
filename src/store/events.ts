/**
 * The append-only event log: every action, observation and lifecycle change of a sandbox. There is no
 * way to change an event, and the retention policy (`prune`) is the only way one is removed: the
 * oldest first, never an action without the observations that answer it (triggers refuse anything
 * else). `seq` is global and strictly increasing, so a sandbox's own seqs have gaps; clients page
 * with `after=<last seq seen>`. A payload larger than the per-event cap is stored cut (truncate.ts).
 */
import type { Database, Statement } from 'better-sqlite3';
import { EventKind, type SandboxEvent } from '../protocol/api.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { guard } from './errors.js';
import { capPayload, MIN_PAYLOAD_CAP, type Truncation } from './truncate.js';
import { type Timestamp, toIso, toJson, toMs } from './values.js';

/** The largest page `page()` returns, matching the API's `limit` maximum. */
export const MAX_EVENT_PAGE = 1000;
/** The page size when none is asked for, matching the API's default. */
export const DEFAULT_EVENT_PAGE = 200;

export type EventKindName = SandboxEvent['kind'];

/** The per-event cap when none is given (events.max_payload_bytes). */
export const DEFAULT_MAX_EVENT_PAYLOAD_BYTES = 64 * 1024;

/** What the event log keeps; 0 in a field means no limit of that kind. */
export interface RetentionPolicy {
  /** Events older than this many ms are removed. */
  maxAgeMs: number;
  /** Each sandbox's payloads are kept to this many bytes, its oldest events going first. */
  maxSandboxBytes: number;
  /** All payloads together: the events of deleted sandboxes go first, then the oldest of any. */
  maxTotalBytes: number;
}

export interface PruneReport {
  /** Events removed. */
  deleted: number;
  /** Payload bytes they held. */
  freedBytes: number;
  /** False when the time budget ran out first (the next pass goes on). */
  complete: boolean;
}

/** Payload bytes and events stored, per sandbox and overall. */
export interface EventUsage {
  events: number;
  bytes: number;
}

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
  truncated: string | null;
}

/** One event as retention sees it: no payload read. */
interface PruneRow {
  seq: number;
  kind: string;
  at: number;
  size: number;
}

const COLUMNS = 'seq, sandbox_id, kind, at, payload, duration_ms, truncated';
/** Rows one deletion looks at: a short write transaction, however far behind retention is. */
const PRUNE_BATCH = 1000;

function toEvent(row: EventRow): SandboxEvent {
  const e: SandboxEvent = {
    seq: row.seq,
    sandbox_id: row.sandbox_id,
    kind: row.kind as EventKindName,
    at: toIso(row.at),
    payload: JSON.parse(row.payload) as unknown,
    duration_ms: row.duration_ms,
  };
  if (row.truncated !== null) e.truncated = JSON.parse(row.truncated) as Truncation;
  return e;
}

function checkSeq(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field} must be a non-negative integer`);
  }
  return value;
}

export class EventRepo {
  private readonly sandboxExists: Statement<[string], number>;
  private readonly insert: Statement<
    [string, string, number, string, number | null, number, string | null],
    EventRow
  >;
  private readonly touch: Statement<[number, string]>;
  private readonly after: Statement<[string, number, number], EventRow>;
  private readonly last: Statement<[string, number], EventRow>;
  private readonly open: Statement<[], { sandbox_id: string; open: number; last_at: number | null }>;
  private readonly appendTx: (e: NewEvent) => SandboxEvent;
  private readonly maxPayloadBytes: number;

  constructor(
    private readonly db: Database,
    private readonly now: () => number,
    /** The per-event cap in bytes (0: none). @default DEFAULT_MAX_EVENT_PAYLOAD_BYTES */
    maxPayloadBytes = DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  ) {
    if (
      !(
        Number.isSafeInteger(maxPayloadBytes) &&
        (maxPayloadBytes === 0 || maxPayloadBytes >= MIN_PAYLOAD_CAP)
      )
    ) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `the event payload cap must be 0 (none) or an integer of at least ${MIN_PAYLOAD_CAP} bytes`,
      );
    }
    this.maxPayloadBytes = maxPayloadBytes;
    this.sandboxExists = db.prepare<[string], number>('SELECT 1 FROM sandboxes WHERE id = ?').pluck();
    this.insert = db.prepare(
      `INSERT INTO events (sandbox_id, kind, at, payload, duration_ms, bytes, truncated)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${COLUMNS}`,
    );
    this.touch = db.prepare('UPDATE sandboxes SET last_activity_at = max(last_activity_at, ?) WHERE id = ?');
    this.after = db.prepare(
      `SELECT ${COLUMNS} FROM events WHERE sandbox_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    );
    this.last = db.prepare(
      `SELECT * FROM (SELECT ${COLUMNS} FROM events WHERE sandbox_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
    );
    // From the per-sandbox counts (kept by triggers), so a start does not read the whole log.
    this.open = db.prepare(
      `SELECT t.sandbox_id, t.open,
              (SELECT max(at) FROM events e
                WHERE e.sandbox_id = t.sandbox_id AND e.kind IN ('action', 'observation')) AS last_at
         FROM event_totals t WHERE t.open > 0 ORDER BY t.sandbox_id`,
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
      const stored = capPayload(e.payload, toJson(e.payload, 'payload'), this.maxPayloadBytes);
      this.requireSandbox(e.sandbox_id);
      const truncated = stored.truncated ? JSON.stringify(stored.truncated) : null;
      const row = this.insert.get(
        e.sandbox_id,
        kind.data,
        at,
        stored.json,
        duration,
        stored.bytes,
        truncated,
      ) as EventRow;
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

  /**
   * Sandboxes whose log has more actions than observations (a process stopped while they were in
   * flight), with how many are unanswered and when the last of their actions or observations was.
   */
  unanswered(): Array<{ sandboxId: string; count: number; lastAt: Date }> {
    return guard('read unanswered actions', () =>
      this.open
        .all()
        .map((r) => ({ sandboxId: r.sandbox_id, count: r.open, lastAt: new Date(r.last_at ?? 0) })),
    );
  }

  /** Payload bytes and events stored: of one sandbox, or of all. */
  usage(sandboxId?: string): EventUsage {
    return guard('read the event log size', () => {
      const row = (
        sandboxId === undefined
          ? this.db.prepare(
              'SELECT coalesce(sum(events), 0) AS events, coalesce(sum(bytes), 0) AS bytes FROM event_totals',
            )
          : this.db.prepare('SELECT events, bytes FROM event_totals WHERE sandbox_id = ?')
      ).get(...(sandboxId === undefined ? [] : [sandboxId])) as EventUsage | undefined;
      return row ?? { events: 0, bytes: 0 };
    });
  }

  /**
   * Applies the retention policy: removes events older than maxAgeMs; then, in each sandbox over
   * maxSandboxBytes, its oldest; then, while all of them are over maxTotalBytes, the events of
   * deleted sandboxes (the sandbox with the oldest first) and then the oldest of any. Each removal is
   * a prefix of one sandbox's log that ends where every action in it has its observation, so the
   * log stays a sequence of pairs and `unanswered()` is unchanged. Works in short transactions
   * until done or `budgetMs` has passed. The file shrinks with `Store.compact()`.
   */
  prune(policy: RetentionPolicy, budgetMs = 250): PruneReport {
    return guard('apply the event log retention', () => {
      const t0 = performance.now();
      const report: PruneReport = { deleted: 0, freedBytes: 0, complete: true };
      const overBudget = () => {
        if (performance.now() - t0 < budgetMs) return false;
        report.complete = false;
        return true;
      };
      const take = (sandboxId: string, stop: (row: PruneRow, freed: number) => boolean): number => {
        // Repeats short deletions while each one makes progress; returns the bytes freed.
        let freed = 0;
        for (;;) {
          if (overBudget()) return freed;
          const step = this.deletePrefix(sandboxId, (row, f) => stop(row, freed + f));
          report.deleted += step.deleted;
          report.freedBytes += step.freed;
          freed += step.freed;
          if (!step.more) return freed;
        }
      };

      const sandboxes = () =>
        this.db.prepare('SELECT sandbox_id AS id, bytes FROM event_totals WHERE events > 0').all() as Array<{
          id: string;
          bytes: number;
        }>;
      if (policy.maxAgeMs > 0) {
        const cutoff = this.now() - policy.maxAgeMs;
        const oldest = this.db
          .prepare<[string], number>('SELECT at FROM events WHERE sandbox_id = ? ORDER BY seq LIMIT 1')
          .pluck();
        for (const { id } of sandboxes()) {
          if ((oldest.get(id) ?? cutoff) >= cutoff) continue;
          take(id, (row) => row.at >= cutoff);
          if (!report.complete) return report;
        }
      }
      if (policy.maxSandboxBytes > 0) {
        for (const { id, bytes } of sandboxes()) {
          if (bytes <= policy.maxSandboxBytes) continue;
          const need = bytes - policy.maxSandboxBytes;
          take(id, (_row, freed) => freed >= need);
          if (!report.complete) return report;
        }
      }
      if (policy.maxTotalBytes > 0) {
        let need = this.usage().bytes - policy.maxTotalBytes;
        if (need <= 0) return report;
        // Deleted sandboxes first, the one whose log starts earliest first.
        const deleted = this.db
          .prepare(
            `SELECT t.sandbox_id AS id,
                    (SELECT seq FROM events e WHERE e.sandbox_id = t.sandbox_id ORDER BY seq LIMIT 1) AS first
               FROM event_totals t JOIN sandboxes s ON s.id = t.sandbox_id
              WHERE t.events > 0 AND s.state = 'deleted' ORDER BY first`,
          )
          .all() as Array<{ id: string }>;
        for (const { id } of deleted) {
          need -= take(id, (_row, freed) => freed >= need);
          if (!report.complete || need <= 0) return report;
        }
        // Then the oldest events of any sandbox: the one with the oldest event, up to where another's
        // log starts (or enough is freed), and again.
        const oldestOther = this.db
          .prepare<[string], number | null>(
            `SELECT min((SELECT seq FROM events e WHERE e.sandbox_id = t.sandbox_id ORDER BY seq LIMIT 1))
               FROM event_totals t WHERE t.events > 0 AND t.sandbox_id <> ?`,
          )
          .pluck();
        const first = this.db
          .prepare<[], string>('SELECT sandbox_id FROM events ORDER BY seq LIMIT 1')
          .pluck();
        const stuck = new Set<string>();
        while (need > 0) {
          const id = first.get();
          if (id === undefined || stuck.has(id)) break;
          const until = oldestOther.get(id) ?? Number.POSITIVE_INFINITY;
          const freed = take(id, (row, f) => f >= need || row.seq > until);
          if (!report.complete) return report;
          // Nothing could go (an action still in flight at the start of its log): leave it.
          if (freed === 0) stuck.add(id);
          need -= freed;
        }
      }
      return report;
    });
  }

  /**
   * Removes, in one transaction, the prefix of the sandbox's log (up to PRUNE_BATCH events) before
   * the first event where `stop` says so, asked only at events before which every action has its
   * observation (so a removal never splits a pair). `more`: the batch was full
   * and something went, so there may be more to take.
   */
  private deletePrefix(
    sandboxId: string,
    stop: (row: PruneRow, freed: number) => boolean,
  ): { deleted: number; freed: number; more: boolean } {
    return this.db
      .transaction(() => {
        const rows = this.db
          .prepare<[string, number], PruneRow>(
            `SELECT seq, kind, at, coalesce(bytes, octet_length(payload)) AS size
             FROM events WHERE sandbox_id = ? ORDER BY seq LIMIT ?`,
          )
          .all(sandboxId, PRUNE_BATCH);
        let balance = 0;
        let freed = 0;
        let cut = { seq: -1, count: 0, freed: 0 };
        let stopped = false;
        for (const [i, row] of rows.entries()) {
          // Asked only where the prefix is balanced: past that, on to the answer that balances it.
          if (balance === 0 && stop(row, freed)) {
            stopped = true;
            break;
          }
          if (row.kind === 'action') balance += 1;
          else if (row.kind === 'observation') balance -= 1;
          freed += row.size;
          // A log that starts with an answer to an action removed before (or recorded before this
          // rule) counts as balanced from there.
          if (balance <= 0) {
            balance = 0;
            cut = { seq: row.seq, count: i + 1, freed };
          }
        }
        if (cut.count === 0) return { deleted: 0, freed: 0, more: false };
        this.db.prepare('INSERT INTO events_pruning (gate) VALUES (1)').run();
        this.db.prepare('DELETE FROM events WHERE sandbox_id = ? AND seq <= ?').run(sandboxId, cut.seq);
        this.db.prepare('DELETE FROM events_pruning').run();
        return { deleted: cut.count, freed: cut.freed, more: !stopped && rows.length === PRUNE_BATCH };
      })
      .immediate();
  }

  private requireSandbox(id: string): void {
    if (this.sandboxExists.get(id) === undefined) {
      throw new BerthError(ErrorCode.NOT_FOUND, `sandbox ${id} not found`);
    }
  }
}
