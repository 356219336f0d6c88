/**
 * Numbered schema migrations. Each runs once, in its own transaction, and is recorded in
 * `schema_migrations`; a migration is never edited after release, only followed by a new one.
 *
 * Timestamps are INTEGER milliseconds since the epoch (compared by the reaper's queries) and are
 * shown as ISO strings at the store's edge; JSON columns hold text checked with json_valid.
 */
import type { Database } from 'better-sqlite3';
import { BerthError, ErrorCode } from '../protocol/errors.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sandboxes and events',
    sql: `
      CREATE TABLE sandboxes (
        id                   TEXT PRIMARY KEY,
        state                TEXT NOT NULL,
        image                TEXT NOT NULL,
        workspace            TEXT,
        url                  TEXT NOT NULL DEFAULT '',
        session_api_key      TEXT NOT NULL,
        container_id         TEXT,
        labels               TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(labels)),
        spec                 TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(spec)),
        created_at           INTEGER NOT NULL,
        last_activity_at     INTEGER NOT NULL,
        expires_at           INTEGER,
        idle_timeout_seconds INTEGER,
        from_pool            INTEGER NOT NULL DEFAULT 0 CHECK (from_pool IN (0, 1)),
        error                TEXT,
        keep_alive           INTEGER NOT NULL DEFAULT 0 CHECK (keep_alive IN (0, 1)),
        pool_image           TEXT
      ) STRICT;
      CREATE INDEX sandboxes_by_state ON sandboxes (state, created_at);
      CREATE INDEX sandboxes_in_pool ON sandboxes (pool_image, created_at) WHERE pool_image IS NOT NULL;

      -- seq is global and strictly increasing; a sandbox's events are the rows with its id, paged by seq.
      CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        sandbox_id  TEXT NOT NULL REFERENCES sandboxes (id),
        kind        TEXT NOT NULL CHECK (kind IN ('action', 'observation', 'lifecycle')),
        at          INTEGER NOT NULL,
        payload     TEXT NOT NULL CHECK (json_valid(payload)),
        duration_ms REAL
      ) STRICT;
      CREATE INDEX events_by_sandbox ON events (sandbox_id, seq);

      -- The event log is append-only, and a sandbox record outlives its sandbox (state 'deleted').
      CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
      CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
      CREATE TRIGGER sandboxes_no_delete BEFORE DELETE ON sandboxes
        BEGIN SELECT RAISE(ABORT, 'sandbox records are kept; set state to deleted'); END;
    `,
  },
  {
    version: 2,
    name: 'bounded event log',
    // Events stay immutable; the retention policy (EventRepo.prune) is the one thing that removes
    // them, and only while it holds the gate row. Sizes are counted per sandbox by triggers, so
    // neither retention nor the unanswered-actions check at start reads the whole table. Events
    // from before have bytes NULL: their size is octet_length(payload), read without the text.
    sql: `
      ALTER TABLE events ADD COLUMN bytes INTEGER;
      ALTER TABLE events ADD COLUMN truncated TEXT CHECK (truncated IS NULL OR json_valid(truncated));

      CREATE TABLE events_pruning (gate INTEGER NOT NULL) STRICT;
      DROP TRIGGER events_no_delete;
      CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        WHEN NOT EXISTS (SELECT 1 FROM events_pruning)
        BEGIN SELECT RAISE(ABORT, 'events are append-only; only the retention policy removes them'); END;

      -- open: actions without an observation so far; removing answered history leaves it alone.
      CREATE TABLE event_totals (
        sandbox_id TEXT PRIMARY KEY REFERENCES sandboxes (id),
        events     INTEGER NOT NULL,
        bytes      INTEGER NOT NULL,
        open       INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      INSERT INTO event_totals (sandbox_id, events, bytes, open)
        SELECT sandbox_id, count(*), sum(octet_length(payload)), sum(kind = 'action') - sum(kind = 'observation')
          FROM events GROUP BY sandbox_id;
      CREATE TRIGGER events_count_insert AFTER INSERT ON events BEGIN
        INSERT INTO event_totals (sandbox_id, events, bytes, open)
          VALUES (NEW.sandbox_id, 1, coalesce(NEW.bytes, octet_length(NEW.payload)),
                  (NEW.kind = 'action') - (NEW.kind = 'observation'))
          ON CONFLICT (sandbox_id) DO UPDATE SET
            events = events + 1, bytes = bytes + excluded.bytes, open = open + excluded.open;
      END;
      CREATE TRIGGER events_count_delete AFTER DELETE ON events BEGIN
        UPDATE event_totals SET events = events - 1, bytes = bytes - coalesce(OLD.bytes, octet_length(OLD.payload))
          WHERE sandbox_id = OLD.sandbox_id;
      END;
    `,
  },
];

/**
 * Brings the database up to the newest migration and returns the schema version. Safe to call on
 * every open and from several processes at once: the check and the migration share one IMMEDIATE
 * transaction, so a concurrent opener waits and then finds the work done.
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const current = db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migrations').pluck();
  const applied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const newest = migrations.reduce((max, m) => Math.max(max, m.version), 0);

  const found = current.get() as number;
  if (found > newest) {
    throw new BerthError(
      ErrorCode.UNAVAILABLE,
      `the database has schema version ${found}, newer than this Berth knows (${newest}); upgrade Berth`,
    );
  }
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  for (const m of ordered) {
    db.transaction(() => {
      if (applied.get(m.version) !== undefined) return;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }).immediate();
  }
  return current.get() as number;
}
