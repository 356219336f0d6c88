/**
 * Sandbox records. A record is never removed: deleting a sandbox sets its state to 'deleted' and keeps
 * its event log readable. Warm-pool members carry `pool_image` until a create request claims them.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { CreateSandboxBody, Sandbox } from '../protocol/api.js';
import { SandboxState, STATES_WITH_CONTAINER } from '../protocol/api.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { guard } from './errors.js';
import { checkLabels, type Timestamp, toIso, toJson, toMs } from './values.js';

/** Everything the store keeps about a sandbox: the API's `Sandbox` plus the control plane's own fields. */
export interface SandboxRecord extends Sandbox {
  /** The create request the sandbox was made from. */
  spec: CreateSandboxBody;
  /** Reaped after this long without activity; null: never idle-reaped. */
  idle_timeout_seconds: number | null;
  /** Leave the container in place when the sandbox is deleted. */
  keep_alive: boolean;
  /** The image whose warm pool holds this sandbox; null once claimed, or for sandboxes made on demand. */
  pool_image: string | null;
}

export interface NewSandbox {
  id: string;
  state: SandboxState;
  image: string;
  session_api_key: string;
  spec: CreateSandboxBody;
  /** The runtime server's base URL; '' until the container's port is known. */
  url?: string;
  workspace?: string | null;
  container_id?: string | null;
  labels?: Record<string, string>;
  /** @default now */
  created_at?: Timestamp;
  /** @default created_at */
  last_activity_at?: Timestamp;
  expires_at?: Timestamp | null;
  idle_timeout_seconds?: number | null;
  from_pool?: boolean;
  error?: string | null;
  keep_alive?: boolean;
  pool_image?: string | null;
}

/** The fields a sandbox's owner may change after creation. Absent fields are left as they are. */
export interface SandboxPatch {
  state?: SandboxState;
  error?: string | null;
  image?: string;
  workspace?: string | null;
  url?: string;
  session_api_key?: string;
  container_id?: string | null;
  labels?: Record<string, string>;
  spec?: CreateSandboxBody;
  last_activity_at?: Timestamp;
  expires_at?: Timestamp | null;
  idle_timeout_seconds?: number | null;
  keep_alive?: boolean;
  pool_image?: string | null;
}

export interface SandboxFilter {
  /** One state or several. Without it, every state but 'deleted' (unless `includeDeleted`). */
  state?: SandboxState | readonly SandboxState[];
  /** Every pair must match exactly. */
  labels?: Record<string, string>;
  /** true: only warm-pool members; false: only sandboxes handed out or made on demand; absent: both. */
  pooled?: boolean;
  includeDeleted?: boolean;
}

export interface UpdateOptions {
  /** Compare-and-set: apply the patch only if the sandbox is in one of these states, else CONFLICT. */
  expectState?: SandboxState | readonly SandboxState[];
}

/** States whose lifetime can run out (the reaper deletes them); everything but 'deleted'. */
const EXPIRABLE_STATES: readonly SandboxState[] = SandboxState.options.filter((s) => s !== 'deleted');
/** Warm-pool members that count towards the pool's size: ready, or on their way. */
const POOL_LIVE_STATES: readonly SandboxState[] = ['starting', 'running'];

interface SandboxRow {
  id: string;
  state: string;
  image: string;
  workspace: string | null;
  url: string;
  session_api_key: string;
  container_id: string | null;
  labels: string;
  spec: string;
  created_at: number;
  last_activity_at: number;
  expires_at: number | null;
  idle_timeout_seconds: number | null;
  from_pool: number;
  error: string | null;
  keep_alive: number;
  pool_image: string | null;
}

type Column = Exclude<keyof SandboxRow, 'id' | 'created_at' | 'from_pool'>;
type SqlValue = string | number | null;

function toRecord(row: SandboxRow): SandboxRecord {
  return {
    id: row.id,
    state: row.state as SandboxState,
    image: row.image,
    workspace: row.workspace,
    url: row.url,
    session_api_key: row.session_api_key,
    container_id: row.container_id,
    labels: JSON.parse(row.labels) as Record<string, string>,
    created_at: toIso(row.created_at),
    last_activity_at: toIso(row.last_activity_at),
    expires_at: row.expires_at === null ? null : toIso(row.expires_at),
    from_pool: row.from_pool === 1,
    error: row.error,
    spec: JSON.parse(row.spec) as CreateSandboxBody,
    idle_timeout_seconds: row.idle_timeout_seconds,
    keep_alive: row.keep_alive === 1,
    pool_image: row.pool_image,
  };
}

/** The API's view of a record: drops the spec (it may hold env secrets) and the pool bookkeeping. */
export function toApiSandbox(record: SandboxRecord): Sandbox {
  return {
    id: record.id,
    state: record.state,
    image: record.image,
    workspace: record.workspace,
    url: record.url,
    session_api_key: record.session_api_key,
    container_id: record.container_id,
    labels: record.labels,
    created_at: record.created_at,
    last_activity_at: record.last_activity_at,
    expires_at: record.expires_at,
    from_pool: record.from_pool,
    error: record.error,
  };
}

function checkState(state: unknown): SandboxState {
  const parsed = SandboxState.safeParse(state);
  if (!parsed.success) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `unknown sandbox state ${JSON.stringify(state)}`);
  }
  return parsed.data;
}

function states(value: SandboxState | readonly SandboxState[]): SandboxState[] {
  const list = typeof value === 'string' ? [value] : [...value];
  return list.map(checkState);
}

function checkSeconds(value: number | null, field: string): number | null {
  if (value !== null && !(Number.isInteger(value) && value >= 0)) {
    throw new BerthError(ErrorCode.VALIDATION_FAILED, `${field} must be a non-negative integer`);
  }
  return value;
}

function notFound(id: string): BerthError {
  return new BerthError(ErrorCode.NOT_FOUND, `sandbox ${id} not found`);
}

/** Column values for the fields present in `patch`, validated. */
function patchColumns(patch: SandboxPatch): Map<Column, SqlValue> {
  const cols = new Map<Column, SqlValue>();
  if (patch.state !== undefined) cols.set('state', checkState(patch.state));
  if (patch.error !== undefined) cols.set('error', patch.error);
  if (patch.image !== undefined) cols.set('image', patch.image);
  if (patch.workspace !== undefined) cols.set('workspace', patch.workspace);
  if (patch.url !== undefined) cols.set('url', patch.url);
  if (patch.session_api_key !== undefined) cols.set('session_api_key', patch.session_api_key);
  if (patch.container_id !== undefined) cols.set('container_id', patch.container_id);
  if (patch.labels !== undefined) cols.set('labels', toJson(checkLabels(patch.labels), 'labels'));
  if (patch.spec !== undefined) cols.set('spec', toJson(patch.spec, 'spec'));
  if (patch.last_activity_at !== undefined) {
    cols.set('last_activity_at', toMs(patch.last_activity_at, 'last_activity_at'));
  }
  if (patch.expires_at !== undefined) {
    cols.set('expires_at', patch.expires_at === null ? null : toMs(patch.expires_at, 'expires_at'));
  }
  if (patch.idle_timeout_seconds !== undefined) {
    cols.set('idle_timeout_seconds', checkSeconds(patch.idle_timeout_seconds, 'idle_timeout_seconds'));
  }
  if (patch.keep_alive !== undefined) cols.set('keep_alive', patch.keep_alive ? 1 : 0);
  if (patch.pool_image !== undefined) cols.set('pool_image', patch.pool_image);
  return cols;
}

export class SandboxRepo {
  private readonly byId: Statement<[string], SandboxRow>;
  private readonly insertStmt: Statement<Record<string, SqlValue>>;
  private readonly touchStmt: Statement<[number, string]>;
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly db: Database,
    private readonly now: () => number,
  ) {
    this.byId = db.prepare<[string], SandboxRow>('SELECT * FROM sandboxes WHERE id = ?');
    this.insertStmt = db.prepare(
      `INSERT INTO sandboxes (id, state, image, workspace, url, session_api_key, container_id, labels, spec,
         created_at, last_activity_at, expires_at, idle_timeout_seconds, from_pool, error, keep_alive, pool_image)
       VALUES (@id, @state, @image, @workspace, @url, @session_api_key, @container_id, @labels, @spec,
         @created_at, @last_activity_at, @expires_at, @idle_timeout_seconds, @from_pool, @error, @keep_alive,
         @pool_image)`,
    );
    this.touchStmt = db.prepare(
      'UPDATE sandboxes SET last_activity_at = max(last_activity_at, ?) WHERE id = ?',
    ) as Statement<[number, string]>;
  }

  /** Adds a record. An id that exists already -> CONFLICT. */
  insert(input: NewSandbox): SandboxRecord {
    return guard(`create sandbox ${input.id}`, () => {
      const created = input.created_at === undefined ? this.now() : toMs(input.created_at, 'created_at');
      this.insertStmt.run({
        id: input.id,
        state: checkState(input.state),
        image: input.image,
        workspace: input.workspace ?? null,
        url: input.url ?? '',
        session_api_key: input.session_api_key,
        container_id: input.container_id ?? null,
        labels: toJson(checkLabels(input.labels ?? {}), 'labels'),
        spec: toJson(input.spec, 'spec'),
        created_at: created,
        last_activity_at:
          input.last_activity_at === undefined ? created : toMs(input.last_activity_at, 'last_activity_at'),
        expires_at: input.expires_at == null ? null : toMs(input.expires_at, 'expires_at'),
        idle_timeout_seconds: checkSeconds(input.idle_timeout_seconds ?? null, 'idle_timeout_seconds'),
        from_pool: input.from_pool ? 1 : 0,
        error: input.error ?? null,
        keep_alive: input.keep_alive ? 1 : 0,
        pool_image: input.pool_image ?? null,
      });
      return this.get(input.id);
    });
  }

  /** The record, or NOT_FOUND. Deleted sandboxes are found too (state 'deleted'). */
  get(id: string): SandboxRecord {
    const found = this.find(id);
    if (!found) throw notFound(id);
    return found;
  }

  find(id: string): SandboxRecord | undefined {
    return guard(`read sandbox ${id}`, () => {
      const row = this.byId.get(id);
      return row && toRecord(row);
    });
  }

  /** Matching records, oldest first. */
  list(filter: SandboxFilter = {}): SandboxRecord[] {
    return guard('list sandboxes', () => {
      const { where, params } = this.filterSql(filter);
      const rows = this.statement(`SELECT * FROM sandboxes ${where} ORDER BY created_at, rowid`).all(
        ...params,
      ) as SandboxRow[];
      return rows.map(toRecord);
    });
  }

  count(filter: SandboxFilter = {}): number {
    return guard('count sandboxes', () => {
      const { where, params } = this.filterSql(filter);
      return this.statement(`SELECT count(*) FROM sandboxes ${where}`)
        .pluck()
        .get(...params) as number;
    });
  }

  /**
   * Applies `patch` and returns the new record. Unknown id -> NOT_FOUND; with `expectState`, a sandbox
   * in another state -> CONFLICT and nothing changes.
   */
  update(id: string, patch: SandboxPatch, options: UpdateOptions = {}): SandboxRecord {
    return guard(`update sandbox ${id}`, () => {
      const cols = patchColumns(patch);
      const expected = options.expectState === undefined ? undefined : states(options.expectState);
      if (cols.size === 0 && expected === undefined) return this.get(id);
      const sets = [...cols.keys()].map((c) => `${c} = ?`);
      // An empty patch under expectState still checks the state, through a no-op assignment.
      if (sets.length === 0) sets.push('id = id');
      let sql = `UPDATE sandboxes SET ${sets.join(', ')} WHERE id = ?`;
      if (expected) sql += ` AND state IN (${expected.map(() => '?').join(', ')})`;
      const row = this.statement(`${sql} RETURNING *`).get(...cols.values(), id, ...(expected ?? [])) as
        | SandboxRow
        | undefined;
      if (row) return toRecord(row);
      const current = this.get(id);
      throw new BerthError(
        ErrorCode.CONFLICT,
        `sandbox ${id} is ${current.state}, not ${expected?.join(' or ') ?? 'as expected'}`,
        { state: current.state },
      );
    });
  }

  /** Records activity now (or at `at`); never moves last_activity_at backwards. */
  touch(id: string, at?: Timestamp): void {
    guard(`touch sandbox ${id}`, () => {
      const ms = at === undefined ? this.now() : toMs(at, 'last_activity_at');
      if (this.touchStmt.run(ms, id).changes === 0) throw notFound(id);
    });
  }

  /** Sets state 'deleted' and takes the sandbox out of the pool; the record and its events stay. */
  markDeleted(id: string, error?: string | null): SandboxRecord {
    const patch: SandboxPatch = { state: 'deleted', pool_image: null };
    if (error !== undefined) patch.error = error;
    return this.update(id, patch);
  }

  /**
   * Takes the oldest ready ('running') warm-pool sandbox of `image`, marks it claimed (pool_image null,
   * from_pool true, activity now) and applies `patch` (the claimer's labels, spec, expiry...), all in
   * one statement, so two claimers, even in two processes, never get the same sandbox. Undefined when
   * the pool has none ready.
   */
  claimPooled(image: string, patch: Omit<SandboxPatch, 'pool_image'> = {}): SandboxRecord | undefined {
    return guard(`claim a pooled sandbox of ${image}`, () => {
      const cols = patchColumns(patch);
      cols.delete('pool_image');
      if (!cols.has('last_activity_at')) cols.set('last_activity_at', this.now());
      const sets = [...cols.keys()].map((c) => `${c} = ?`);
      const row = this.statement(
        `UPDATE sandboxes SET pool_image = NULL, from_pool = 1, ${sets.join(', ')}
         WHERE id = (SELECT id FROM sandboxes WHERE pool_image = ? AND state = 'running'
                     ORDER BY created_at, rowid LIMIT 1)
         RETURNING *`,
      ).get(...cols.values(), image) as SandboxRow | undefined;
      return row && toRecord(row);
    });
  }

  /** Warm-pool members of `image` that are ready or starting: what the pool's size is measured by. */
  countPooled(image: string): number {
    return guard(`count pooled sandboxes of ${image}`, () => {
      const marks = POOL_LIVE_STATES.map(() => '?').join(', ');
      return this.statement(`SELECT count(*) FROM sandboxes WHERE pool_image = ? AND state IN (${marks})`)
        .pluck()
        .get(image, ...POOL_LIVE_STATES) as number;
    });
  }

  /**
   * The records whose container Berth must keep: every live one (a state that has a container, pool
   * members included), and those deleted with keep_alive (the caller asked for the container to stay).
   * The reaper and `berth gc` remove only containers outside this.
   */
  owningContainers(): SandboxRecord[] {
    return [
      ...this.list({ state: [...STATES_WITH_CONTAINER] }),
      ...this.list({ state: ['deleted'] }).filter((r) => r.keep_alive),
    ];
  }

  /** Sandboxes (not pool members) whose lifetime ended at or before `now`, in any state but 'deleted'. */
  listExpired(now: Timestamp = new Date(this.now())): SandboxRecord[] {
    return guard('list expired sandboxes', () => {
      const marks = EXPIRABLE_STATES.map(() => '?').join(', ');
      const rows = this.statement(
        `SELECT * FROM sandboxes
         WHERE expires_at IS NOT NULL AND expires_at <= ? AND pool_image IS NULL AND state IN (${marks})
         ORDER BY expires_at, rowid`,
      ).all(toMs(now, 'now'), ...EXPIRABLE_STATES) as SandboxRow[];
      return rows.map(toRecord);
    });
  }

  /** When the next lifetime ends (of the sandboxes listExpired would list then), if any does. */
  nextExpiry(): Date | undefined {
    return guard('find the next expiry', () => {
      const marks = EXPIRABLE_STATES.map(() => '?').join(', ');
      const row = this.statement(
        `SELECT min(expires_at) AS at FROM sandboxes
         WHERE expires_at IS NOT NULL AND pool_image IS NULL AND state IN (${marks})`,
      ).get(...EXPIRABLE_STATES) as { at: number | null };
      return row.at === null ? undefined : new Date(row.at);
    });
  }

  /** Running sandboxes (not pool members) idle for at least their idle timeout at `now`. */
  listIdle(now: Timestamp = new Date(this.now())): SandboxRecord[] {
    return guard('list idle sandboxes', () => {
      const rows = this.statement(
        `SELECT * FROM sandboxes
         WHERE state = 'running' AND pool_image IS NULL AND idle_timeout_seconds > 0
           AND last_activity_at + idle_timeout_seconds * 1000 <= ?
         ORDER BY last_activity_at, rowid`,
      ).all(toMs(now, 'now')) as SandboxRow[];
      return rows.map(toRecord);
    });
  }

  private filterSql(filter: SandboxFilter): { where: string; params: SqlValue[] } {
    const clauses: string[] = [];
    const params: SqlValue[] = [];
    if (filter.state !== undefined) {
      const wanted = states(filter.state);
      if (wanted.length === 0) clauses.push('0');
      else {
        clauses.push(`state IN (${wanted.map(() => '?').join(', ')})`);
        params.push(...wanted);
      }
    } else if (!filter.includeDeleted) {
      clauses.push(`state <> 'deleted'`);
    }
    if (filter.pooled !== undefined) clauses.push(`pool_image IS ${filter.pooled ? 'NOT ' : ''}NULL`);
    for (const [key, value] of Object.entries(checkLabels(filter.labels ?? {}))) {
      // json_each matches any key exactly, dots and quotes included, unlike a JSON path.
      clauses.push(
        `EXISTS (SELECT 1 FROM json_each(sandboxes.labels) AS l WHERE l.key = ? AND l.type = 'text' AND l.value = ?)`,
      );
      params.push(key, value);
    }
    return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
  }

  /** Prepared statements for the dynamic queries, built once per distinct SQL text. */
  private statement(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }
}
