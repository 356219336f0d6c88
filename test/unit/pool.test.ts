/**
 * The warm pool's rules against a fake backend and a real SQLite store: filled to its size, refilled
 * after a claim, one failed start ends a refill (no tight loop), a dispose mid-start leaves nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WarmPool, type WarmPoolDeps } from '../../src/sandboxes/pool.js';
import type { SandboxEndpoint, SandboxSpec } from '../../src/sandboxes/types.js';
import { Store } from '../../src/store/index.js';
import { eventually } from '../support/eventually.js';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'berth-pool-'));
  store = Store.open(path.join(dir, 'berth.db'));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function fake(over: Partial<WarmPoolDeps> = {}) {
  const started: string[] = [];
  const removed: string[] = [];
  const remembered: string[] = [];
  let n = 0;
  const deps: WarmPoolDeps = {
    store,
    logger: pino({ level: 'silent' }),
    size: 2,
    runtime: {
      start: async (spec: SandboxSpec): Promise<SandboxEndpoint> => {
        started.push(spec.id);
        return {
          id: spec.id,
          containerId: `c-${spec.id}`,
          url: `http://x/${spec.id}`,
          sessionApiKey: 'k',
          ports: { runtime: 1, app: [] },
        };
      },
      remove: async (id: string) => {
        removed.push(id);
      },
    },
    defaultImage: async () => 'img:1',
    usable: () => true,
    newId: () => `pool${++n}`,
    specFor: (id) => ({ id }) as SandboxSpec,
    onStarted: (id) => remembered.push(id),
    ...over,
  };
  return { pool: new WarmPool(deps), started, removed, remembered };
}

describe('WarmPool', () => {
  it('fills to its size for the default image, and again after a claim', async () => {
    const { pool, started, remembered } = fake();
    await pool.refill();
    expect(started).toEqual(['pool1', 'pool2']);
    expect(remembered).toEqual(['pool1', 'pool2']);
    expect(pool.size()).toBe(2);
    const member = store.sandboxes.get('pool1');
    expect(member).toMatchObject({ state: 'running', pool_image: 'img:1', container_id: 'c-pool1' });
    // Pool members are not sandboxes anyone listed.
    expect(store.sandboxes.list({ pooled: false }).map((s) => s.id)).toEqual([]);
    const claimed = store.sandboxes.claimPooled('img:1', { last_activity_at: new Date() });
    expect(claimed?.pool_image).toBeNull();
    expect(pool.size()).toBe(1);
    pool.refillSoon('img:1');
    expect(await eventually(() => pool.size() === 2, 5_000)).toBe(true);
    expect(started).toHaveLength(3);
  });

  it('does nothing with size 0 or when no create could use a member', async () => {
    const none = fake({ size: 0 });
    await none.pool.refill();
    const unusable = fake({ usable: () => false });
    await unusable.pool.refill();
    expect([...none.started, ...unusable.started]).toEqual([]);
  });

  it('one failed start ends the refill: the record says why and is deleted, its container removed', async () => {
    let calls = 0;
    const { pool, removed } = fake({
      runtime: {
        start: async () => {
          calls++;
          throw new Error('no space left');
        },
        remove: async (id: string) => {
          removed.push(id);
        },
      },
    });
    await pool.refill();
    expect(calls).toBe(1);
    expect(store.sandboxes.get('pool1')).toMatchObject({
      state: 'deleted',
      error: 'no space left',
      pool_image: null,
    });
    expect(removed).toEqual(['pool1']);
    expect(pool.size()).toBe(0);
  });

  it('two refills at once start no more than the size; a dispose mid-start removes what started', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const started: string[] = [];
    const { pool, removed } = fake({
      runtime: {
        start: async (spec: SandboxSpec) => {
          started.push(spec.id);
          await gate;
          return {
            id: spec.id,
            containerId: 'c',
            url: 'http://x',
            sessionApiKey: 'k',
            ports: { runtime: 1, app: [] },
          };
        },
        remove: async (id: string) => {
          removed.push(id);
        },
      },
    });
    const a = pool.refill();
    const b = pool.refill();
    await b;
    expect(await eventually(() => started.length === 1, 2_000)).toBe(true);
    pool.dispose();
    release();
    await a;
    expect(started).toEqual(['pool1']);
    expect(removed).toEqual(['pool1']);
  });
});
