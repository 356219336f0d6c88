/**
 * The reaper's rules on the real engine, with two control planes (two data directories, so two
 * owners) on one engine: a container is kept while a live record of its own instance owns it, and
 * for good when its sandbox was deleted with keep_alive; a container of its own instance that no
 * record owns is removed; another instance's containers are never touched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { api, startInProcess } from '../integration/control-plane-helpers.js';
import { engine, engineAvailable, specFor } from '../integration/docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: reaper suite (${unavailable})`);

type Cp = RunningControlPlane & { apiKey: string };

describe.skipIf(unavailable !== undefined)('the reaper', () => {
  let a: Cp;
  let b: Cp;
  const reap = (cp: Cp) => cp.manager.reap();
  const exists = async (name: string) => (await engine.containers.find(name)) !== undefined;

  beforeAll(async () => {
    // Reaper passes only when the test asks for them.
    const env = { BERTH_REAPER_INTERVAL_SECONDS: '3600' };
    [a, b] = await Promise.all([startInProcess({ poolSize: 0, env }), startInProcess({ poolSize: 0, env })]);
  });
  afterAll(async () => {
    for (const cp of [a, b]) {
      if (!cp) continue;
      await cp.close();
      await cp.manager['runtime'].reap(new Set());
    }
  });

  it('keeps owned and kept containers, removes unowned ones of its own, never touches another instance', async () => {
    const owned = (await api(a.url, a.apiKey, 'POST', '/api/sandboxes', {})).json;
    const kept = (await api(a.url, a.apiKey, 'POST', '/api/sandboxes', { keep_alive: true })).json;
    expect((await api(a.url, a.apiKey, 'DELETE', `/api/sandboxes/${kept.id}`)).status).toBe(204);
    const other = (await api(b.url, b.apiKey, 'POST', '/api/sandboxes', {})).json;
    // A container with A's owner label that no record of A knows (as a crash between start and
    // record would leave).
    const stray = await specFor();
    await a.manager['runtime'].start(stray);

    for (let i = 0; i < 3; i++) await Promise.all([reap(a), reap(b)]);

    expect(await exists(`berth-sandbox-${owned.id}`)).toBe(true);
    expect(await exists(`berth-sandbox-${kept.id}`)).toBe(true);
    expect(await exists(`berth-sandbox-${other.id}`)).toBe(true);
    expect(await exists(`berth-sandbox-${stray.id}`)).toBe(false);
    await engine.containers.remove(`berth-sandbox-${kept.id}`);
  });
});
