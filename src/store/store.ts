/**
 * The control plane's persistent state: one SQLite file (better-sqlite3, synchronous API) holding
 * sandbox records and their event logs. The store owns its connection; `close()` releases it.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { guard, toStoreError } from './errors.js';
import { EventRepo, type PruneReport, type RetentionPolicy } from './events.js';
import { MIGRATIONS, migrate } from './migrations.js';
import { SandboxRepo } from './sandboxes.js';

/**
 * How long a write waits for another connection's write lock before failing with UNAVAILABLE. Writes
 * are single short transactions, so a long wait means something is wrong, not busy.
 */
const BUSY_TIMEOUT_MS = 5000;

export interface StoreOptions {
  /** The clock for default timestamps, in ms since the epoch. @default Date.now */
  now?: () => number;
  /**
   * Upper bound on the database file's size; writes that would grow it further fail with NO_SPACE,
   * as on a full disk. @default no bound
   */
  maxSizeBytes?: number;
  /**
   * 'process-crash': a write is safe once its call returns if this process dies (kill -9), which WAL
   * with synchronous=NORMAL gives at no fsync cost; the last commits can be lost on power loss or an
   * OS crash. 'power-loss': synchronous=FULL, one fsync per write (measured: ~0.9 ms per action
   * here, 16 ms at p99 under disk contention, against ~0.2 ms). @default 'process-crash'
   */
  durability?: 'process-crash' | 'power-loss';
  /**
   * The per-event cap: a payload whose JSON is larger is stored cut to this many bytes, with its
   * size and sha256 (0: no cap). @default DEFAULT_MAX_EVENT_PAYLOAD_BYTES (64 KiB)
   */
  maxEventPayloadBytes?: number;
}

/** Free pages worth a full VACUUM of a database made before incremental vacuum (once, to convert it). */
const CONVERT_FREE_FRACTION = 0.25;
/** The WAL file is cut back to this after a checkpoint, so one burst does not keep it large. */
const JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024;

export class Store {
  readonly sandboxes: SandboxRepo;
  readonly events: EventRepo;

  private constructor(
    private readonly db: Database.Database,
    /** The database file, or ':memory:'. */
    readonly file: string,
    /** The schema version after migrations. */
    readonly schemaVersion: number,
    now: () => number,
    maxEventPayloadBytes?: number,
  ) {
    this.sandboxes = new SandboxRepo(db, now);
    this.events = new EventRepo(db, now, maxEventPayloadBytes);
  }

  /**
   * Opens (creating if needed) the database at `file`, with its directory, and brings its schema up
   * to date. The file holds session API keys, so it is made readable by its owner only.
   */
  static open(file: string, options: StoreOptions = {}): Store {
    return guard(`open the database ${file}`, () => {
      const inMemory = file === ':memory:';
      if (!inMemory) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      const created = !inMemory && !existsSync(file);
      const db = new Database(file);
      try {
        if (created) chmodSync(file, 0o600);
        // Before the first table: a new file frees pages incrementally (see compact()). On an older
        // file it takes effect with the VACUUM compact() runs once there is much to free.
        db.pragma('auto_vacuum = INCREMENTAL');
        db.pragma('journal_mode = WAL');
        db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
        // See StoreOptions.durability.
        db.pragma(`synchronous = ${options.durability === 'power-loss' ? 'FULL' : 'NORMAL'}`);
        db.pragma('foreign_keys = ON');
        db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
        const version = migrate(db, MIGRATIONS);
        if (options.maxSizeBytes !== undefined) {
          const bytes = options.maxSizeBytes;
          if (!(Number.isSafeInteger(bytes) && bytes > 0)) {
            throw new BerthError(ErrorCode.VALIDATION_FAILED, 'maxSizeBytes must be a positive integer');
          }
          const pageSize = db.pragma('page_size', { simple: true }) as number;
          db.pragma(`max_page_count = ${Math.max(1, Math.floor(bytes / pageSize))}`);
        }
        return new Store(db, file, version, options.now ?? Date.now, options.maxEventPayloadBytes);
      } catch (err) {
        db.close();
        throw err;
      }
    });
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction: every store call inside it commits together or not at all
   * (e.g. a state change with its lifecycle event). `fn` must be synchronous; store calls may nest.
   * What `fn` throws comes through unchanged; SQLite's own failures become BerthErrors.
   */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      if (err instanceof Database.SqliteError || err instanceof TypeError)
        throw toStoreError(err, 'transaction');
      throw err;
    }
  }

  /**
   * One retention pass (EventRepo.prune), then compact() if anything went. For a timer: what the
   * budget leaves undone, the next pass does.
   */
  prune(policy: RetentionPolicy, budgetMs?: number): PruneReport & { freedPages: number } {
    const report = this.events.prune(policy, budgetMs);
    return { ...report, freedPages: report.deleted > 0 ? this.compact() : 0 };
  }

  /**
   * Gives free pages back to the file system: incremental vacuum, then a checkpoint that truncates
   * the WAL. A database made before incremental vacuum is converted by one full VACUUM, once a
   * quarter of it is free. Returns the pages given back.
   */
  compact(): number {
    return guard('compact the database', () => {
      if (this.file === ':memory:') return 0;
      const pages = () => this.db.pragma('page_count', { simple: true }) as number;
      const before = pages();
      const free = this.db.pragma('freelist_count', { simple: true }) as number;
      if (free === 0) return 0;
      if ((this.db.pragma('auto_vacuum', { simple: true }) as number) === 2) {
        this.db.pragma('incremental_vacuum');
      } else if (free >= before * CONVERT_FREE_FRACTION) {
        this.db.pragma('auto_vacuum = INCREMENTAL');
        this.db.exec('VACUUM');
      }
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      return before - pages();
    });
  }

  /** Closes the connection (the last one to close folds the WAL into the main file). Idempotent. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
