/** The SQLite store on real database files in a temporary directory. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox, SandboxEvent } from '../../src/protocol/api.js';
import { BerthError } from '../../src/protocol/errors.js';
import { MIGRATIONS, migrate, type NewSandbox, Store, toApiSandbox } from '../../src/store/index.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const storeModule = pathToFileURL(path.join(repoRoot, 'src/store/index.ts')).href;

let dir: string;
let file: string;
const open: Store[] = [];

function openStore(options?: Parameters<typeof Store.open>[1]): Store {
  const store = Store.open(file, options);
  open.push(store);
  return store;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-store-'));
  file = path.join(dir, 'data', 'berth.db');
});
afterEach(() => {
  for (const store of open.splice(0)) store.close();
  rmSync(dir, { recursive: true, force: true });
});

function sandbox(id: string, extra: Partial<NewSandbox> = {}): NewSandbox {
  return {
    id,
    state: 'running',
    image: 'berth-runtime:abc',
    session_api_key: `key-${id}`,
    spec: { labels: extra.labels ?? {} },
    url: `http://127.0.0.1:40000/${id}`,
    ...extra,
  };
}

/** The seq of the sandbox's newest event (0 when it has none), read through the public tail. */
function newestSeq(store: Store, sandboxId: string): number {
  return store.events.tail(sandboxId, 1).at(-1)?.seq ?? 0;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BerthError);
    return (err as BerthError).code;
  }
  throw new Error('expected a BerthError');
}

/** Runs a TypeScript snippet in a child Node process that imports the store as `Store`. */
function child(source: string, args: string[]): ChildProcess {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(script, `import { Store } from ${JSON.stringify(storeModule)};\n${source}`);
  return spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function collect(proc: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => proc.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('opening and migrations', () => {
  it('creates the file with owner-only permissions, in WAL mode, at the newest schema', () => {
    const store = openStore();
    expect(store.schemaVersion).toBe(MIGRATIONS.at(-1)?.version);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    store.close();
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });

  it('runs each migration once across reopens and keeps the data', () => {
    let store = openStore();
    store.sandboxes.insert(sandbox('a'));
    store.close();
    store = openStore();
    store.close();
    store = openStore();
    expect(store.sandboxes.get('a').id).toBe('a');
    store.close();

    const raw = new Database(file);
    const rows = raw.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    expect(migrate(raw)).toBe(MIGRATIONS.at(-1)?.version);
    expect(raw.prepare('SELECT count(*) FROM schema_migrations').pluck().get()).toBe(MIGRATIONS.length);
    raw.close();
  });

  it('rolls back a failing migration entirely and records nothing', () => {
    const raw = new Database(path.join(dir, 'm.db'));
    const migrations = [
      { version: 1, name: 'one', sql: 'CREATE TABLE one (x INTEGER)' },
      { version: 2, name: 'broken', sql: 'CREATE TABLE two (x INTEGER); SELECT * FROM missing_table' },
    ];
    expect(() => migrate(raw, migrations)).toThrow(/missing_table/);
    const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    expect(tables).toContain('one');
    expect(tables).not.toContain('two');
    expect(raw.prepare('SELECT version FROM schema_migrations').pluck().all()).toEqual([1]);

    const fixed = [migrations[0]!, { version: 2, name: 'fixed', sql: 'CREATE TABLE two (x INTEGER)' }];
    expect(migrate(raw, fixed)).toBe(2);
    raw.close();
  });

  it('refuses a database written by a newer schema', () => {
    openStore().close();
    const raw = new Database(file);
    raw.prepare("INSERT INTO schema_migrations VALUES (999, 'future', 0)").run();
    raw.close();
    expect(codeOf(() => openStore())).toBe('UNAVAILABLE');
  });

  it('reports a closed store as UNAVAILABLE', () => {
    const store = openStore();
    store.close();
    store.close();
    expect(codeOf(() => store.sandboxes.get('a'))).toBe('UNAVAILABLE');
  });
});

describe('sandboxes', () => {
  it('round-trips a record in the API shape', () => {
    const now = Date.parse('2030-01-02T03:04:05.678Z');
    const store = openStore({ now: () => now });
    const created = store.sandboxes.insert(
      sandbox('sb1', {
        workspace: '/home/u/project',
        labels: { team: 'a', 'app.kind': 'x' },
        expires_at: new Date(now + 3_600_000),
        idle_timeout_seconds: 600,
        keep_alive: true,
        spec: { image: 'python:3.12', env: { A: '1' } },
      }),
    );
    expect(created).toMatchObject({
      id: 'sb1',
      state: 'running',
      workspace: '/home/u/project',
      container_id: null,
      labels: { team: 'a', 'app.kind': 'x' },
      created_at: '2030-01-02T03:04:05.678Z',
      last_activity_at: '2030-01-02T03:04:05.678Z',
      expires_at: '2030-01-02T04:04:05.678Z',
      from_pool: false,
      error: null,
      idle_timeout_seconds: 600,
      keep_alive: true,
      pool_image: null,
      spec: { image: 'python:3.12', env: { A: '1' } },
    });
    expect(store.sandboxes.get('sb1')).toEqual(created);
    const api = toApiSandbox(created);
    expect(Sandbox.parse(api)).toEqual(api);
    expect(api).not.toHaveProperty('spec');
  });

  it('rejects a duplicate id, an unknown id and an unknown state', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    expect(codeOf(() => store.sandboxes.insert(sandbox('a')))).toBe('CONFLICT');
    expect(codeOf(() => store.sandboxes.get('nope'))).toBe('NOT_FOUND');
    expect(store.sandboxes.find('nope')).toBeUndefined();
    expect(codeOf(() => store.sandboxes.update('nope', { state: 'stopped' }))).toBe('NOT_FOUND');
    expect(codeOf(() => store.sandboxes.touch('nope'))).toBe('NOT_FOUND');
    expect(codeOf(() => store.sandboxes.markDeleted('nope'))).toBe('NOT_FOUND');
    expect(codeOf(() => store.sandboxes.update('a', { state: 'exploded' as never }))).toBe(
      'VALIDATION_FAILED',
    );
    expect(codeOf(() => store.sandboxes.update('a', { expires_at: 'soon' }))).toBe('VALIDATION_FAILED');
  });

  it('updates the fields it is given and leaves the rest', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a', { state: 'starting', url: '' }));
    const updated = store.sandboxes.update('a', {
      state: 'running',
      url: 'http://127.0.0.1:41000',
      container_id: 'c0ffee',
      expires_at: '2031-01-01T00:00:00Z',
      labels: { k: 'v' },
    });
    expect(updated).toMatchObject({
      state: 'running',
      url: 'http://127.0.0.1:41000',
      container_id: 'c0ffee',
      expires_at: '2031-01-01T00:00:00.000Z',
      labels: { k: 'v' },
      session_api_key: 'key-a',
      error: null,
    });
    expect(store.sandboxes.update('a', { state: 'error', error: 'boom', expires_at: null })).toMatchObject({
      state: 'error',
      error: 'boom',
      expires_at: null,
      container_id: 'c0ffee',
    });
    expect(store.sandboxes.update('a', {})).toEqual(store.sandboxes.get('a'));
  });

  it('updates under an expected state, or refuses with CONFLICT and changes nothing', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a', { state: 'paused' }));
    expect(codeOf(() => store.sandboxes.update('a', { state: 'stopped' }, { expectState: 'running' }))).toBe(
      'CONFLICT',
    );
    expect(store.sandboxes.get('a').state).toBe('paused');
    const resumed = store.sandboxes.update('a', { state: 'running' }, { expectState: ['paused', 'stopped'] });
    expect(resumed.state).toBe('running');
    expect(codeOf(() => store.sandboxes.update('a', {}, { expectState: 'paused' }))).toBe('CONFLICT');
  });

  it('touch never moves last activity backwards', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a', { created_at: '2030-01-01T00:00:00Z' }));
    store.sandboxes.touch('a', '2030-01-01T00:10:00Z');
    store.sandboxes.touch('a', '2030-01-01T00:05:00Z');
    expect(store.sandboxes.get('a').last_activity_at).toBe('2030-01-01T00:10:00.000Z');
  });

  it('marks a deleted sandbox, keeps its record and events, and hides it from default lists', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    store.sandboxes.insert(sandbox('b'));
    store.events.append({ sandbox_id: 'a', kind: 'action', payload: { action: 'run' } });
    const deleted = store.sandboxes.markDeleted('a');
    expect(deleted.state).toBe('deleted');
    expect(store.sandboxes.list().map((s) => s.id)).toEqual(['b']);
    expect(store.sandboxes.list({ includeDeleted: true }).map((s) => s.id)).toEqual(['a', 'b']);
    expect(store.sandboxes.list({ state: 'deleted' }).map((s) => s.id)).toEqual(['a']);
    expect(store.events.page('a').events).toHaveLength(1);
    expect(store.sandboxes.count()).toBe(1);
  });

  it('filters by state, labels and pool membership', () => {
    const store = openStore();
    let t = Date.parse('2030-01-01T00:00:00Z');
    const next = () => {
      t += 1000;
      return new Date(t);
    };
    store.sandboxes.insert(sandbox('r1', { created_at: next(), labels: { team: 'a', env: 'dev' } }));
    store.sandboxes.insert(sandbox('r2', { created_at: next(), labels: { team: 'b', env: 'dev' } }));
    store.sandboxes.insert(sandbox('p1', { created_at: next(), state: 'paused', labels: { team: 'a' } }));
    store.sandboxes.insert(sandbox('x1', { created_at: next(), labels: { 'a.b"c': 'd e', team: '1' } }));
    store.sandboxes.insert(sandbox('pool1', { created_at: next(), pool_image: 'img' }));
    const ids = (f: Parameters<typeof store.sandboxes.list>[0]) => store.sandboxes.list(f).map((s) => s.id);

    expect(ids({})).toEqual(['r1', 'r2', 'p1', 'x1', 'pool1']);
    expect(ids({ state: 'paused' })).toEqual(['p1']);
    expect(ids({ state: ['paused', 'running'], pooled: false })).toEqual(['r1', 'r2', 'p1', 'x1']);
    expect(ids({ state: [] })).toEqual([]);
    expect(ids({ labels: { team: 'a' } })).toEqual(['r1', 'p1']);
    expect(ids({ labels: { team: 'a', env: 'dev' } })).toEqual(['r1']);
    expect(ids({ labels: { env: 'dev' }, state: 'running' })).toEqual(['r1', 'r2']);
    expect(ids({ labels: { 'a.b"c': 'd e' } })).toEqual(['x1']);
    // a label value is matched as text: "1" is not the number 1, and a missing key never matches
    expect(ids({ labels: { team: '1' } })).toEqual(['x1']);
    expect(ids({ labels: { nope: 'a' } })).toEqual([]);
    expect(ids({ pooled: true })).toEqual(['pool1']);
    expect(store.sandboxes.count({ labels: { env: 'dev' } })).toBe(2);
  });

  it('lists expired and idle sandboxes against the clock', () => {
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const store = openStore({ now: () => t0 });
    const at = (s: number) => new Date(t0 + s * 1000);
    store.sandboxes.insert(sandbox('expired', { expires_at: at(-1) }));
    store.sandboxes.insert(sandbox('expired-paused', { state: 'paused', expires_at: at(0) }));
    store.sandboxes.insert(sandbox('expired-deleted', { state: 'deleted', expires_at: at(-5) }));
    store.sandboxes.insert(sandbox('alive', { expires_at: at(60) }));
    store.sandboxes.insert(sandbox('idle', { last_activity_at: at(-700), idle_timeout_seconds: 600 }));
    store.sandboxes.insert(sandbox('busy', { last_activity_at: at(-100), idle_timeout_seconds: 600 }));
    store.sandboxes.insert(sandbox('no-idle', { last_activity_at: at(-9999), idle_timeout_seconds: null }));
    store.sandboxes.insert(
      sandbox('idle-paused', { state: 'paused', last_activity_at: at(-9999), idle_timeout_seconds: 1 }),
    );
    store.sandboxes.insert(
      sandbox('pooled', { pool_image: 'img', last_activity_at: at(-9999), idle_timeout_seconds: 1 }),
    );

    expect(store.sandboxes.listExpired().map((s) => s.id)).toEqual(['expired', 'expired-paused']);
    expect(store.sandboxes.listIdle().map((s) => s.id)).toEqual(['idle']);
    expect(store.sandboxes.listIdle(at(600)).map((s) => s.id)).toEqual(['idle', 'busy']);
  });
});

describe('warm pool', () => {
  it('claims the oldest ready member of the image, once', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const store = openStore({ now: () => now });
    store.sandboxes.insert(sandbox('old', { pool_image: 'img', created_at: '2029-01-01T00:00:00Z' }));
    store.sandboxes.insert(sandbox('new', { pool_image: 'img', created_at: '2029-06-01T00:00:00Z' }));
    store.sandboxes.insert(sandbox('warming', { pool_image: 'img', state: 'starting' }));
    store.sandboxes.insert(sandbox('other', { pool_image: 'other-img' }));
    expect(store.sandboxes.countPooled('img')).toBe(3);

    const first = store.sandboxes.claimPooled('img', {
      labels: { owner: 'me' },
      expires_at: '2030-01-01T01:00:00Z',
      spec: { labels: { owner: 'me' } },
    });
    expect(first).toMatchObject({
      id: 'old',
      pool_image: null,
      from_pool: true,
      labels: { owner: 'me' },
      expires_at: '2030-01-01T01:00:00.000Z',
      last_activity_at: '2030-01-01T00:00:00.000Z',
      spec: { labels: { owner: 'me' } },
    });
    expect(store.sandboxes.claimPooled('img')?.id).toBe('new');
    expect(store.sandboxes.claimPooled('img')).toBeUndefined();
    expect(store.sandboxes.countPooled('img')).toBe(1);
    expect(store.sandboxes.get('other').pool_image).toBe('other-img');
    expect(store.sandboxes.list({ pooled: true }).map((s) => s.id)).toEqual(['warming', 'other']);
  });

  it('never hands one sandbox to two claimers in concurrent processes', async () => {
    const store = openStore();
    const size = 400;
    store.transaction(() => {
      for (let i = 0; i < size; i++) store.sandboxes.insert(sandbox(`pool-${i}`, { pool_image: 'img' }));
    });
    // Each child opens the store, says it is ready, and claims in a loop once told to go, so that all
    // of them are claiming at the same time.
    const source = `
      const [file] = process.argv.slice(2);
      const store = Store.open(file);
      const pause = new Int32Array(new SharedArrayBuffer(4));
      process.stderr.write('ready\\n');
      process.stdin.once('data', () => {
        const ids = [];
        for (;;) {
          const claimed = store.sandboxes.claimPooled('img', { labels: { pid: String(process.pid) } });
          if (!claimed) break;
          ids.push(claimed.id);
          // Pause between claims, as a real claimer would, so that waiting claimers get the lock too.
          Atomics.wait(pause, 0, 0, 1);
        }
        store.close();
        process.stdout.write(JSON.stringify(ids));
        process.exit(0);
      });
    `;
    const procs = Array.from({ length: 4 }, () => child(source, [file]));
    const done = Promise.all(procs.map(collect));
    await Promise.all(procs.map((p) => new Promise((resolve) => p.stderr?.once('data', resolve))));
    for (const p of procs) p.stdin?.write('go\n');
    const results = await done;
    const claimed: string[] = [];
    for (const r of results) {
      expect(r.stderr).toBe('ready\n');
      expect(r.code).toBe(0);
      claimed.push(...(JSON.parse(r.stdout) as string[]));
    }
    expect(claimed).toHaveLength(size);
    expect(new Set(claimed).size).toBe(size);
    expect(store.sandboxes.countPooled('img')).toBe(0);
    for (const s of store.sandboxes.list()) expect(s.from_pool).toBe(true);
    // the claimers really ran side by side: more than one of them got sandboxes
    expect(results.filter((r) => r.stdout !== '[]').length).toBeGreaterThan(1);
  }, 60_000);
});

describe('events', () => {
  it('finds actions that never got an observation, per sandbox', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    store.sandboxes.insert(sandbox('b'));
    const add = (id: string, kind: 'action' | 'observation' | 'lifecycle') =>
      store.events.append({ sandbox_id: id, kind, payload: {} });
    add('a', 'action');
    add('a', 'observation');
    add('a', 'action');
    add('a', 'action');
    add('a', 'lifecycle');
    add('b', 'action');
    add('b', 'observation');
    const open = store.events.unanswered();
    expect(open.map(({ sandboxId, count }) => ({ sandboxId, count }))).toEqual([
      { sandboxId: 'a', count: 2 },
    ]);
    expect(open[0]!.lastAt).toBeInstanceOf(Date);
    store.close();
  });

  it('appends with increasing seqs and pages per sandbox after a seq', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    store.sandboxes.insert(sandbox('b'));
    const seqs: number[] = [];
    for (let i = 0; i < 7; i++) {
      seqs.push(store.events.append({ sandbox_id: 'a', kind: 'action', payload: { i } }).seq);
      store.events.append({ sandbox_id: 'b', kind: 'action', payload: { i } });
    }
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);

    const p1 = store.events.page('a', 0, 3);
    expect(p1.events.map((e) => e.payload)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    expect(p1.next_after).toBe(seqs[2]);
    const p2 = store.events.page('a', p1.next_after, 3);
    expect(p2.events.map((e) => e.payload)).toEqual([{ i: 3 }, { i: 4 }, { i: 5 }]);
    const p3 = store.events.page('a', p2.next_after, 3);
    expect(p3.events.map((e) => e.payload)).toEqual([{ i: 6 }]);
    const p4 = store.events.page('a', p3.next_after, 3);
    expect(p4).toEqual({ events: [], next_after: p3.next_after });
    for (const e of [...p1.events, ...p2.events, ...p3.events]) expect(e.sandbox_id).toBe('a');

    expect(newestSeq(store, 'a')).toBe(seqs[6]);
    expect(store.events.tail('a', 2).map((e) => e.payload)).toEqual([{ i: 5 }, { i: 6 }]);
    expect(store.events.page('a', 0, 5000).events).toHaveLength(7);
  });

  it('returns events in the API shape and records activity for actions only', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a', { created_at: '2030-01-01T00:00:00Z' }));
    const action = store.events.append({
      sandbox_id: 'a',
      kind: 'action',
      at: '2030-01-01T00:01:00Z',
      payload: { action: 'run', args: { command: 'ls' } },
    });
    const observation = store.events.append({
      sandbox_id: 'a',
      kind: 'observation',
      at: new Date('2030-01-01T00:01:02Z'),
      payload: { observation: 'run', content: 'x' },
      duration_ms: 1234.5,
    });
    expect(SandboxEvent.parse(action)).toEqual(action);
    expect(observation).toMatchObject({
      kind: 'observation',
      at: '2030-01-01T00:01:02.000Z',
      duration_ms: 1234.5,
    });
    expect(action.duration_ms).toBeNull();
    expect(store.sandboxes.get('a').last_activity_at).toBe('2030-01-01T00:01:02.000Z');
    store.events.append({
      sandbox_id: 'a',
      kind: 'lifecycle',
      at: '2030-01-01T05:00:00Z',
      payload: { event: 'paused', reason: 'user' },
    });
    expect(store.sandboxes.get('a').last_activity_at).toBe('2030-01-01T00:01:02.000Z');
    expect(store.events.page('a').events).toEqual([
      action,
      observation,
      expect.objectContaining({ kind: 'lifecycle' }),
    ]);
  });

  it('rejects events of unknown sandboxes and bad input', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    expect(codeOf(() => store.events.append({ sandbox_id: 'nope', kind: 'action', payload: {} }))).toBe(
      'NOT_FOUND',
    );
    expect(codeOf(() => store.events.page('nope'))).toBe('NOT_FOUND');
    expect(codeOf(() => store.events.tail('nope'))).toBe('NOT_FOUND');
    expect(codeOf(() => store.events.append({ sandbox_id: 'a', kind: 'bogus' as never, payload: {} }))).toBe(
      'VALIDATION_FAILED',
    );
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(codeOf(() => store.events.append({ sandbox_id: 'a', kind: 'action', payload: circular }))).toBe(
      'VALIDATION_FAILED',
    );
    expect(codeOf(() => store.events.page('a', -1))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => store.events.page('a', 0, 0))).toBe('VALIDATION_FAILED');
    expect(newestSeq(store, 'a')).toBe(0);
  });

  it('cannot be changed or removed, even through SQL', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    store.events.append({ sandbox_id: 'a', kind: 'action', payload: {} });
    store.close();
    const raw = new Database(file);
    expect(() => raw.prepare("UPDATE events SET payload = '1'").run()).toThrow(/append-only/);
    expect(() => raw.prepare('DELETE FROM events').run()).toThrow(/append-only/);
    expect(() => raw.prepare('DELETE FROM sandboxes').run()).toThrow(/state to deleted/);
    raw.close();
  });

  it('survive close and reopen', () => {
    let store = openStore();
    store.sandboxes.insert(sandbox('a'));
    const appended = [1, 2, 3].map((n) =>
      store.events.append({ sandbox_id: 'a', kind: 'action', payload: { n } }),
    );
    store.close();
    store = openStore();
    expect(store.events.page('a').events).toEqual(appended);
    const more = store.events.append({ sandbox_id: 'a', kind: 'observation', payload: { n: 4 } });
    expect(more.seq).toBeGreaterThan(appended[2]!.seq);
  });

  it('are on disk once append returns, even if the process is killed right after', async () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    store.close();
    const proc = child(
      `
      const [file] = process.argv.slice(2);
      const store = Store.open(file);
      for (let i = 0; i < 5000; i++) {
        const e = store.events.append({ sandbox_id: 'a', kind: 'action', payload: { i, pad: 'x'.repeat(500) } });
        process.stdout.write(e.seq + '\\n');
      }
      setInterval(() => {}, 1000);
      `,
      [file],
    );
    const seen: number[] = [];
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exit = new Promise<NodeJS.Signals | null>((resolve) =>
      proc.on('exit', (_code, signal) => resolve(signal)),
    );
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      proc.on('exit', () => reject(new Error(`child exited before it was killed: ${stderr}`)));
      proc.stdout?.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        seen.push(...lines.map(Number));
        // Kill as soon as the 20th append has returned, while the child is still appending.
        if (seen.length >= 20 && !proc.killed) {
          proc.kill('SIGKILL');
          resolve();
        }
      });
    });
    expect(await exit).toBe('SIGKILL');

    const reopened = openStore();
    const stored = new Set(reopened.events.page('a', 0, 1000).events.map((e) => e.seq));
    for (const seq of seen) expect(stored.has(seq)).toBe(true);
  }, 60_000);
});

describe('failures', () => {
  it('reports a full database as NO_SPACE and keeps working', () => {
    const store = openStore({ maxSizeBytes: 256 * 1024 });
    store.sandboxes.insert(sandbox('a'));
    const big = 'x'.repeat(16 * 1024);
    let appended = 0;
    let error: unknown;
    for (let i = 0; i < 100 && !error; i++) {
      try {
        store.events.append({ sandbox_id: 'a', kind: 'observation', payload: { big, i } });
        appended++;
      } catch (err) {
        error = err;
      }
    }
    expect(error).toBeInstanceOf(BerthError);
    expect((error as BerthError).code).toBe('NO_SPACE');
    expect((error as BerthError).status).toBe(507);
    expect(appended).toBeGreaterThan(0);
    // reads still work, and so does a write that fits
    expect(store.events.page('a', 0, 1000).events).toHaveLength(appended);
    expect(store.sandboxes.update('a', { state: 'stopped' }).state).toBe('stopped');
    expect(codeOf(() => store.sandboxes.insert(sandbox('b', { spec: { labels: { big } } })))).toBe(
      'NO_SPACE',
    );
  });

  it('commits a transaction as a whole or not at all', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    const mind = new Error('changed my mind');
    expect(() =>
      store.transaction(() => {
        store.sandboxes.update('a', { state: 'stopped' });
        store.events.append({ sandbox_id: 'a', kind: 'lifecycle', payload: { event: 'stopped' } });
        throw mind;
      }),
    ).toThrow(mind);
    expect(store.sandboxes.get('a').state).toBe('running');
    expect(newestSeq(store, 'a')).toBe(0);

    const event = store.transaction(() => {
      store.sandboxes.update('a', { state: 'stopped' });
      return store.events.append({ sandbox_id: 'a', kind: 'lifecycle', payload: { event: 'stopped' } });
    });
    expect(store.sandboxes.get('a').state).toBe('stopped');
    expect(newestSeq(store, 'a')).toBe(event.seq);
  });
});
