/** The bounded event log on real database files: the per-event cap, retention, compaction, migration. */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandboxEvent } from '../../src/protocol/api.js';
import {
  capPayload,
  DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  MIGRATIONS,
  migrate,
  type NewSandbox,
  type RetentionPolicy,
  Store,
} from '../../src/store/index.js';

let dir: string;
let file: string;
const open: Store[] = [];

function openStore(options?: Parameters<typeof Store.open>[1]): Store {
  const store = Store.open(file, options);
  open.push(store);
  return store;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-eventlog-'));
  file = path.join(dir, 'berth.db');
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
    spec: {},
    ...extra,
  };
}

const MB = 1024 * 1024;
const NONE: RetentionPolicy = { maxAgeMs: 0, maxSandboxBytes: 0, maxTotalBytes: 0 };
const bigText = (bytes: number, seed = 'x') => seed.repeat(bytes);
const stored = (raw: Database.Database) =>
  raw.prepare('SELECT coalesce(sum(octet_length(payload)), 0) FROM events').pluck().get() as number;
const fileBytes = () => statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
const kinds = (store: Store, id: string) =>
  store.events
    .page(id, 0, 1000)
    .events.map((e) => e.kind[0])
    .join('');

/** Appends action/observation pairs (and single actions for 'A', observations for 'O'). */
function log(store: Store, id: string, pattern: string, payload: unknown = {}, at?: number) {
  for (const c of pattern) {
    const kind = c === 'A' ? 'action' : c === 'O' ? 'observation' : 'lifecycle';
    store.events.append({ sandbox_id: id, kind, payload, ...(at === undefined ? {} : { at: new Date(at) }) });
  }
}

describe('the per-event cap', () => {
  it('stores a 1 MB observation cut, as valid JSON of the same shape, with its size and hash', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    const obs = {
      observation: 'read',
      content: bigText(MB),
      extras: { path: '/workspace/big.txt' },
      message: 'ok',
    };
    const whole = JSON.stringify(obs);
    const e = store.events.append({ sandbox_id: 'a', kind: 'observation', payload: obs });

    expect(SandboxEvent.parse(e)).toEqual(e);
    expect(e.truncated).toEqual({
      bytes: Buffer.byteLength(whole),
      sha256: createHash('sha256').update(whole).digest('hex'),
      fields: ['content'],
    });
    const p = e.payload as typeof obs;
    expect(p).toMatchObject({ observation: 'read', extras: { path: '/workspace/big.txt' }, message: 'ok' });
    expect(p.content).toMatch(/^x+\n\[\.\.\. \d+ more characters not kept in the event log\]$/);
    expect(p.content.length).toBeGreaterThan(DEFAULT_MAX_EVENT_PAYLOAD_BYTES - 1024);
    expect(store.events.page('a').events).toEqual([e]);
    store.close();

    const raw = new Database(file, { readonly: true });
    expect(stored(raw)).toBeLessThanOrEqual(DEFAULT_MAX_EVENT_PAYLOAD_BYTES);
    raw.close();
  });

  it('leaves a payload within the cap untouched and without a truncated field', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    const action = { action: { action: 'write', args: { path: 'a.txt', content: bigText(60 * 1024) } } };
    const e = store.events.append({ sandbox_id: 'a', kind: 'action', payload: action });
    expect(e.payload).toEqual(action);
    expect('truncated' in e).toBe(false);
    expect(store.events.page('a').events[0]).not.toHaveProperty('truncated');
  });

  it('stores a 1 MB write once, cut, and never as a second copy', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    for (let i = 0; i < 20; i++) {
      log(store, 'a', 'A', {
        action: { action: 'write', args: { path: 'w.txt', content: bigText(MB, String(i % 10)) } },
      });
      log(store, 'a', 'O', { observation: 'write', content: '', extras: { path: '/workspace/w.txt' } });
    }
    const usage = store.events.usage('a');
    expect(usage.events).toBe(40);
    // One capped copy per action, a small observation, nothing else.
    expect(usage.bytes).toBeLessThan(20 * (DEFAULT_MAX_EVENT_PAYLOAD_BYTES + 200));
    expect(store.events.usage()).toEqual(usage);
    const raw = new Database(file, { readonly: true });
    expect(stored(raw)).toBe(usage.bytes);
    raw.close();
    // The whole file: well under one uncapped write per action.
    expect(fileBytes()).toBeLessThan(5 * MB);
  });

  it('is configurable, and 0 keeps everything whole', () => {
    const small = openStore({ maxEventPayloadBytes: 4096 });
    small.sandboxes.insert(sandbox('a'));
    const e = small.events.append({ sandbox_id: 'a', kind: 'action', payload: { s: bigText(10_000) } });
    expect(Buffer.byteLength(JSON.stringify(e.payload))).toBeLessThanOrEqual(4096);
    small.close();
    const whole = openStore({ maxEventPayloadBytes: 0 });
    const w = whole.events.append({ sandbox_id: 'a', kind: 'action', payload: { s: bigText(MB) } });
    expect(w.payload).toEqual({ s: bigText(MB) });
    whole.close();
    expect(() => openStore({ maxEventPayloadBytes: 100 })).toThrow(/at least 1024/);
  });

  it('cuts many long strings alike and keeps short ones; falls back to the start of the text', () => {
    const value = { a: bigText(50_000), b: bigText(50_000, 'y'), name: 'run', n: [1, 2, 3] };
    const json = JSON.stringify(value);
    const c = capPayload(value, json, 16 * 1024);
    expect(c.bytes).toBeLessThanOrEqual(16 * 1024);
    expect(c.truncated?.fields).toEqual(['a', 'b']);
    const v = JSON.parse(c.json);
    expect(v).toMatchObject({ name: 'run', n: [1, 2, 3] });
    expect(v.a.length).toBe(v.b.length);
    // Multi-byte text and a cut between surrogate halves still make valid UTF-8 JSON.
    const emoji = { s: '😀'.repeat(40_000) };
    const ce = capPayload(emoji, JSON.stringify(emoji), 8192);
    expect(ce.bytes).toBeLessThanOrEqual(8192);
    expect(JSON.parse(ce.json).s).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    // Thousands of small fields: nothing to cut, so the start of the JSON text, as a string.
    const many = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i]));
    const cm = capPayload(many, JSON.stringify(many), 4096);
    expect(cm.bytes).toBeLessThanOrEqual(4096);
    expect(JSON.parse(cm.json).truncated_json).toMatch(/^\{"k0":0,"k1":1,/);
    expect(cm.truncated?.fields).toEqual(['']);
  });
});

describe('retention', () => {
  const DAY = 24 * 3600 * 1000;

  it('removes events older than the age limit, with the answers of the actions it removes', () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const store = openStore({ now: () => now });
    store.sandboxes.insert(sandbox('a'));
    log(store, 'a', 'AOAO', {}, now - 40 * DAY);
    log(store, 'a', 'L', {}, now - 35 * DAY);
    log(store, 'a', 'A', {}, now - 31 * DAY);
    log(store, 'a', 'O', {}, now - 29 * DAY); // answers an action that is over the limit
    log(store, 'a', 'AO', {}, now - DAY);
    const r = store.prune({ ...NONE, maxAgeMs: 30 * DAY });
    // The action 31 days old goes with the observation that answers it, though that is younger.
    expect(r).toMatchObject({ deleted: 7, complete: true });
    expect(kinds(store, 'a')).toBe('ao');
    now += 30 * DAY;
    store.prune({ ...NONE, maxAgeMs: 30 * DAY });
    expect(kinds(store, 'a')).toBe('');
    expect(store.events.usage('a')).toEqual({ events: 0, bytes: 0 });
  });

  it('keeps each sandbox to its size, oldest first', () => {
    const store = openStore();
    for (const id of ['a', 'b']) store.sandboxes.insert(sandbox(id));
    const chunk = { content: bigText(10_000) };
    for (let i = 0; i < 10; i++) log(store, 'a', 'AO', { ...chunk, i });
    log(store, 'b', 'AO', chunk);
    const before = store.events.usage('b');
    store.prune({ ...NONE, maxSandboxBytes: 50_000 });
    const a = store.events.page('a', 0, 1000).events;
    expect(store.events.usage('a').bytes).toBeLessThanOrEqual(50_000);
    // The newest pairs are what is left.
    expect(a.map((e) => (e.payload as { i: number }).i)).toEqual([8, 8, 9, 9]);
    expect(store.events.usage('b')).toEqual(before);
  });

  it('keeps all logs to the total size: deleted sandboxes first, then the oldest of any', () => {
    const store = openStore();
    for (const id of ['old', 'gone', 'new']) store.sandboxes.insert(sandbox(id));
    const chunk = { content: bigText(10_000) };
    log(store, 'old', 'AOAO', chunk);
    log(store, 'gone', 'AOAO', chunk);
    log(store, 'new', 'AOAO', chunk);
    log(store, 'old', 'AO', chunk);
    store.sandboxes.update('gone', { state: 'deleted' });
    const total = store.events.usage().bytes;
    const each = total / 14;
    // Room for 8 events: the deleted sandbox's 4 go, then the oldest 2 of 'old'.
    store.prune({ ...NONE, maxTotalBytes: Math.ceil(8 * each) + 10 });
    expect(kinds(store, 'gone')).toBe('');
    expect(kinds(store, 'old')).toBe('aoao');
    expect(kinds(store, 'new')).toBe('aoao');
    // Then across sandboxes by age: 'old' has the oldest left.
    store.prune({ ...NONE, maxTotalBytes: Math.ceil(5 * each) });
    expect(kinds(store, 'old')).toBe('ao');
    expect(kinds(store, 'new')).toBe('ao');
    expect(store.events.usage().bytes).toBeLessThanOrEqual(Math.ceil(5 * each));
  });

  it('never removes an action that has no observation yet, so unanswered() stays right', () => {
    const store = openStore();
    for (const id of ['a', 'b']) store.sandboxes.insert(sandbox(id));
    log(store, 'a', 'AOAOA', { content: bigText(10_000) }); // the last one still in flight
    log(store, 'b', 'AAOOAAO', { content: bigText(10_000) }); // concurrent actions, one in flight
    const expected = [
      { sandboxId: 'a', count: 1 },
      { sandboxId: 'b', count: 1 },
    ];
    const open = () => store.events.unanswered().map(({ sandboxId, count }) => ({ sandboxId, count }));
    expect(open()).toEqual(expected);
    store.prune({ maxAgeMs: 0, maxSandboxBytes: 1, maxTotalBytes: 1 });
    expect(kinds(store, 'a')).toBe('a');
    // A prefix is cut only where every action in it is answered: after AAOO, not inside it.
    expect(kinds(store, 'b')).toBe('aao');
    expect(open()).toEqual(expected);
    // Answered (as after a crash: an INTERRUPTED observation), it can go.
    log(store, 'a', 'O');
    log(store, 'b', 'O');
    expect(open()).toEqual([]);
    store.prune({ maxAgeMs: 0, maxSandboxBytes: 1, maxTotalBytes: 1 });
    expect(kinds(store, 'a') + kinds(store, 'b')).toBe('');
    expect(open()).toEqual([]);
  });

  it('works within its time budget and finishes on later passes', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    store.transaction(() => {
      for (let i = 0; i < 5000; i++) log(store, 'a', 'AO', { i });
    });
    const first = store.prune({ ...NONE, maxSandboxBytes: 1 }, 0);
    expect(first.complete).toBe(false);
    let passes = 1;
    while (!store.prune({ ...NONE, maxSandboxBytes: 1 }).complete) passes++;
    expect(store.events.usage('a').events).toBe(0);
    expect(passes).toBeLessThan(20);
  });

  it('still refuses any other removal, and any change', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    log(store, 'a', 'AO');
    store.close();
    const raw = new Database(file);
    expect(() => raw.prepare('DELETE FROM events').run()).toThrow(/append-only/);
    expect(() => raw.prepare("UPDATE events SET payload = '1'").run()).toThrow(/append-only/);
    raw.close();
  });
});

describe('the file', () => {
  it('shrinks once retention has removed events', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    for (let i = 0; i < 200; i++) log(store, 'a', 'AO', { content: bigText(MB, String(i % 10)) });
    store.compact();
    const full = statSync(file).size;
    expect(full).toBeGreaterThan(200 * DEFAULT_MAX_EVENT_PAYLOAD_BYTES);
    const r = store.prune({ ...NONE, maxSandboxBytes: 2 * DEFAULT_MAX_EVENT_PAYLOAD_BYTES });
    expect(r.freedPages).toBeGreaterThan(0);
    expect(statSync(file).size).toBeLessThan(full / 10);
    expect(statSync(`${file}-wal`).size).toBe(0);
  });

  it('upgrades a database of the first schema: sizes counted, open actions kept, converted to incremental vacuum', () => {
    // A file as the previous Berth left it: schema 1, no auto_vacuum, 1 MB payloads stored whole.
    const raw = new Database(file);
    raw.pragma('journal_mode = WAL');
    migrate(
      raw,
      MIGRATIONS.filter((m) => m.version === 1),
    );
    raw
      .prepare(
        "INSERT INTO sandboxes (id, state, image, session_api_key, created_at, last_activity_at) VALUES (?, 'running', 'i', 'k', 0, 0)",
      )
      .run('a');
    const insert = raw.prepare('INSERT INTO events (sandbox_id, kind, at, payload) VALUES (?, ?, ?, ?)');
    const big = JSON.stringify({ content: bigText(MB) });
    for (let i = 0; i < 30; i++) {
      insert.run('a', 'action', Date.now(), big);
      insert.run('a', 'observation', Date.now(), '{}');
    }
    insert.run('a', 'action', Date.now(), '{"in":"flight"}');
    const legacyBytes = stored(raw);
    expect(raw.pragma('auto_vacuum', { simple: true })).toBe(0);
    raw.close();

    const store = openStore();
    expect(store.schemaVersion).toBe(MIGRATIONS.at(-1)?.version);
    expect(store.events.usage('a')).toEqual({ events: 61, bytes: legacyBytes });
    expect(store.events.unanswered().map((u) => u.count)).toEqual([1]);
    // New events are capped and counted alongside.
    log(store, 'a', 'O', { content: bigText(MB) });
    expect(store.events.usage('a').bytes).toBeLessThan(legacyBytes + DEFAULT_MAX_EVENT_PAYLOAD_BYTES + 1);
    expect(store.events.unanswered()).toEqual([]);

    store.compact();
    const full = statSync(file).size;
    store.prune({ ...NONE, maxSandboxBytes: 4 * MB });
    expect(store.events.usage('a').bytes).toBeLessThanOrEqual(4 * MB);
    expect(statSync(file).size).toBeLessThan(full / 4);
    store.close();
    const after = new Database(file, { readonly: true });
    expect(after.pragma('auto_vacuum', { simple: true })).toBe(2);
    after.close();
  });

  it('answers the hot path and the start from indexes, whatever the log size', () => {
    const store = openStore();
    store.sandboxes.insert(sandbox('a'));
    log(store, 'a', 'AO');
    store.close();
    const raw = new Database(file, { readonly: true });
    const plan = (sql: string) =>
      (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>)
        .map((r) => r.detail)
        .join('; ');
    // Paging, the tail and the newest seq go by (sandbox_id, seq); the unanswered check reads the counts.
    expect(plan("SELECT * FROM events WHERE sandbox_id = 'a' AND seq > 0 ORDER BY seq LIMIT 10")).toMatch(
      /SEARCH events USING INDEX events_by_sandbox/,
    );
    expect(plan("SELECT max(seq) FROM events WHERE sandbox_id = 'a'")).toMatch(/events_by_sandbox/);
    const open = plan(
      `SELECT t.sandbox_id, t.open, (SELECT max(at) FROM events e WHERE e.sandbox_id = t.sandbox_id
         AND e.kind IN ('action', 'observation')) FROM event_totals t WHERE t.open > 0`,
    );
    expect(open).not.toMatch(/SCAN events/);
    // The insert's trigger updates one row of the counts by its key.
    expect(plan("UPDATE event_totals SET events = events - 1 WHERE sandbox_id = 'a'")).toMatch(
      /SEARCH event_totals/,
    );
    raw.close();
  });
});
