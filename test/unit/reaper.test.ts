/**
 * The reaper's rules against a fake backend and a real SQLite store: lifetimes, idle limits, work in
 * flight, records that changed while a pass ran, unowned containers, and its own timer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ON_TIMEOUT_LABEL, Reaper, type ReaperDeps } from '../../src/sandboxes/reaper.js';
import { type NewSandbox, Store } from '../../src/store/index.js';
import { eventually } from '../support/eventually.js';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-reaper-'));
  store = Store.open(path.join(dir, 'berth.db'));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const ago = (s: number) => new Date(Date.now() - s * 1000);
const sandbox = (id: string, extra: Partial<NewSandbox> = {}): NewSandbox => ({
  id,
  state: 'running',
  image: 'berth-runtime:abc',
  session_api_key: `key-${id}`,
  spec: {},
  url: `http://127.0.0.1:40000/${id}`,
  ...extra,
});

/** A fake backend and manager: records what the reaper asked for; deletes mark the record deleted. */
function fake(over: Partial<ReaperDeps> = {}) {
  const deleted: Array<[string, string]> = [];
  const paused: Array<[string, string]> = [];
  const reapedWith: Set<string>[] = [];
  const deps: ReaperDeps = {
    store,
    logger: pino({ level: 'silent' }),
    runtime: {
      reap: async (owned) => {
        reapedWith.push(new Set(owned));
        return ['orphan'];
      },
    },
    isStarting: () => false,
    isBusy: () => false,
    delete: async (id, reason) => {
      deleted.push([id, reason]);
      store.sandboxes.markDeleted(id);
    },
    pause: async (id, reason) => {
      paused.push([id, reason]);
      store.sandboxes.update(id, { state: 'paused', expires_at: null });
    },
    ...over,
  };
  return { reaper: new Reaper(deps), deleted, paused, reapedWith };
}

describe('Reaper', () => {
  it('ends sandboxes past their lifetime or idle limit, and nothing else', async () => {
    store.sandboxes.insert(sandbox('expired', { expires_at: ago(1) }));
    store.sandboxes.insert(sandbox('alive', { expires_at: ago(-3600) }));
    store.sandboxes.insert(sandbox('idle', { last_activity_at: ago(700), idle_timeout_seconds: 600 }));
    store.sandboxes.insert(sandbox('active', { last_activity_at: ago(10), idle_timeout_seconds: 600 }));
    store.sandboxes.insert(
      sandbox('never-idle', { last_activity_at: ago(99_999), idle_timeout_seconds: null }),
    );
    const { reaper, deleted } = fake();
    await reaper.pass();
    expect(deleted).toEqual([
      ['expired', 'lifetime ended'],
      ['idle', 'idle'],
    ]);
    expect(store.sandboxes.get('alive').state).toBe('running');
  });

  it('leaves a sandbox starting or with work in flight, however long it has been idle', async () => {
    store.sandboxes.insert(sandbox('starting', { expires_at: ago(5) }));
    store.sandboxes.insert(sandbox('busy', { last_activity_at: ago(9_000), idle_timeout_seconds: 60 }));
    const { reaper, deleted } = fake({
      isStarting: (id) => id === 'starting',
      isBusy: (id) => id === 'busy',
    });
    await reaper.pass();
    expect(deleted).toEqual([]);
  });

  it('skips a record extended, or active again, while the pass awaited earlier deletes', async () => {
    store.sandboxes.insert(sandbox('first', { expires_at: ago(30) }));
    store.sandboxes.insert(sandbox('extended', { expires_at: ago(20) }));
    store.sandboxes.insert(sandbox('a-idle', { last_activity_at: ago(900), idle_timeout_seconds: 60 }));
    store.sandboxes.insert(sandbox('b-touched', { last_activity_at: ago(800), idle_timeout_seconds: 60 }));
    const deleted: string[] = [];
    const { reaper } = fake({
      delete: async (id) => {
        deleted.push(id);
        store.sandboxes.markDeleted(id);
        // While this delete ran, a user extended one and used another.
        if (id === 'first') store.sandboxes.update('extended', { expires_at: ago(-3600) });
        if (id === 'a-idle') store.sandboxes.touch('b-touched');
      },
    });
    await reaper.pass();
    expect(deleted).toEqual(['first', 'a-idle']);
    expect(store.sandboxes.get('extended').state).toBe('running');
    expect(store.sandboxes.get('b-touched').state).toBe('running');
  });

  it('lets the backend remove containers no live record owns, keeping those deleted with keep_alive', async () => {
    store.sandboxes.insert(sandbox('live'));
    store.sandboxes.insert(sandbox('kept'));
    store.sandboxes.update('kept', { keep_alive: true });
    store.sandboxes.markDeleted('kept');
    store.sandboxes.insert(sandbox('gone'));
    store.sandboxes.markDeleted('gone');
    const { reaper, reapedWith } = fake();
    await reaper.pass();
    expect([...(reapedWith[0] ?? [])].sort()).toEqual(['kept', 'live']);
  });

  it('a failing delete or backend does not stop the pass', async () => {
    store.sandboxes.insert(sandbox('x', { expires_at: ago(2) }));
    store.sandboxes.insert(sandbox('y', { expires_at: ago(1) }));
    const tried: string[] = [];
    const { reaper } = fake({
      delete: async (id) => {
        tried.push(id);
        throw new Error('engine down');
      },
      runtime: {
        reap: async () => {
          throw new Error('engine down');
        },
      },
    });
    await expect(reaper.pass()).resolves.toBeUndefined();
    expect(tried.sort()).toEqual(['x', 'y']);
  });

  it('runs on its own timer with the other upkeep, until stopped', async () => {
    let ticks = 0;
    const { reaper, reapedWith } = fake();
    reaper.start(20, () => {
      ticks++;
    });
    expect(await eventually(() => ticks >= 3 && reapedWith.length >= 3, 5_000)).toBe(true);
    reaper.stop();
    const after = ticks;
    await new Promise((r) => setTimeout(r, 100));
    expect(ticks).toBe(after);
  });

  it('pauses, not deletes, a sandbox that asked for it when its lifetime ends', async () => {
    store.sandboxes.insert(
      sandbox('pause-me', { expires_at: ago(1), labels: { [ON_TIMEOUT_LABEL]: 'pause' } }),
    );
    store.sandboxes.insert(sandbox('delete-me', { expires_at: ago(1) }));
    const { reaper, deleted, paused } = fake();
    await reaper.pass();
    expect(paused).toEqual([['pause-me', 'lifetime ended (on_timeout: pause)']]);
    expect(deleted).toEqual([['delete-me', 'lifetime ended']]);
    // Its lifetime is over: a later pass leaves it paused.
    await reaper.pass();
    expect(paused).toHaveLength(1);
  });

  it('ends a lifetime at its moment, not at the next tick of a slow timer', async () => {
    const { reaper, deleted } = fake();
    // A tick every 10 minutes: only the lifetime timer can end this one within the test.
    reaper.start(600_000);
    try {
      const at = Date.now() + 300;
      store.sandboxes.insert(sandbox('short', { expires_at: new Date(at) }));
      reaper.lifetimesChanged();
      expect(await eventually(() => deleted.length === 1, 5_000)).toBe(true);
      expect(deleted[0]).toEqual(['short', 'lifetime ended']);
      // An extension moves the moment: the next one waits for its new end.
      store.sandboxes.insert(sandbox('moved', { expires_at: new Date(Date.now() + 200) }));
      store.sandboxes.update('moved', { expires_at: new Date(Date.now() + 3_600_000) });
      reaper.lifetimesChanged();
      await new Promise((r) => setTimeout(r, 400));
      expect(deleted).toHaveLength(1);
    } finally {
      reaper.stop();
    }
  });

  it('does not spin on a lifetime it has to leave (a sandbox still starting): passes are a second apart', async () => {
    let passes = 0;
    const { reaper, deleted } = fake({ isStarting: () => true });
    const listExpired = store.sandboxes.listExpired.bind(store.sandboxes);
    store.sandboxes.listExpired = (now: Date) => {
      passes++;
      return listExpired(now);
    };
    reaper.start(600_000);
    try {
      store.sandboxes.insert(sandbox('starting', { expires_at: ago(1) }));
      reaper.lifetimesChanged();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(deleted).toEqual([]);
      // The first pass at once and one retry a second later; a loop would be thousands.
      expect(passes).toBeGreaterThanOrEqual(1);
      expect(passes).toBeLessThanOrEqual(3);
    } finally {
      reaper.stop();
    }
  });
});
