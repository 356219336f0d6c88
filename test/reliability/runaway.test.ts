/**
 * Runaway work inside a sandbox, on the real engine: a fork bomb that fills the pids limit (its jobs
 * in process groups of their own, their parents gone), and a memory hog past the memory limit.
 * Afterwards the sandbox must be usable again: by `reset` after the bomb, by itself after the hog.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { api, startInProcess } from '../integration/control-plane-helpers.js';
import { engineAvailable } from '../integration/docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: runaway suite (${unavailable})`);

describe.skipIf(unavailable !== undefined)('runaway processes', () => {
  let cp: RunningControlPlane & { apiKey: string };
  const call = (method: string, path: string, body?: unknown) => api(cp.url, cp.apiKey, method, path, body);
  const run = (id: string, command: string, timeout = 20) =>
    call('POST', `/api/sandboxes/${id}/execute_action`, {
      action: { action: 'run', args: { command }, timeout },
    });

  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 0 });
  });
  afterAll(async () => {
    if (!cp) return;
    for (const s of cp.manager.list({})) await cp.manager.delete(s.id).catch(() => undefined);
    await cp.close();
    await cp.manager['runtime'].reap(new Set());
  });

  it('a fork bomb at the pids limit: reset ends it and the sandbox works again, files kept', {
    timeout: 120_000,
  }, async () => {
    const s = (await call('POST', '/api/sandboxes', { limits: { pids: 128 } })).json;
    await run(s.id, 'echo kept > ~/file && cd /tmp');
    await run(s.id, 'bomb() { bomb | bomb & }; bomb', 5);
    // The sandbox is full: its pids cgroup is at the limit (the engine's own count; a probe command
    // could slip into a pid a dying bomb freed a moment before, so the count is what is asserted).
    const pids = () =>
      Number(
        execFileSync('docker', ['stats', '--no-stream', '--format', '{{.PIDs}}', `berth-sandbox-${s.id}`], {
          encoding: 'utf8',
        }).trim(),
      );
    let full = 0;
    for (let i = 0; i < 20 && full < 120; i++) full = Math.max(full, pids());
    expect(full).toBeGreaterThanOrEqual(120);
    const reset = await call('POST', `/api/sandboxes/${s.id}/reset`);
    expect(reset.status).toBe(200);
    expect(reset.json.state).toBe('running');
    const events = (await call('GET', `/api/sandboxes/${s.id}/events?limit=1000`)).json.events;
    const last = events.filter((e: any) => e.kind === 'lifecycle').at(-1).payload;
    expect(last.event).toBe('reset');
    expect(last.reason).toMatch(/ended \d+ processes; fresh shell/);
    const after = await run(s.id, 'cat ~/file; echo "$PWD"; ps -e --no-headers | wc -l');
    expect(after.status).toBe(200);
    const [file, cwd, count] = after.json.content.split('\n');
    expect(file).toBe('kept');
    expect(cwd).toBe('/tmp'); // a fresh shell, started where the last one was
    // init, the runtime server, the shell and this pipeline: nothing of the bomb.
    expect(Number(count)).toBeLessThan(12);
  });

  it('the reset action frees a queue held by a running bomb, through execute_action, at once', {
    timeout: 120_000,
  }, async () => {
    const s = (await call('POST', '/api/sandboxes', { limits: { pids: 128 } })).json;
    // A bomb in the foreground: this action holds the runtime server's queue until its timeout.
    const held = run(s.id, 'bomb() { bomb | bomb & }; bomb; sleep 600', 300);
    await new Promise((r) => setTimeout(r, 2000));
    const reset = await call('POST', `/api/sandboxes/${s.id}/execute_action`, {
      action: { action: 'reset', args: {} },
    });
    expect(reset.status, reset.text).toBe(200);
    expect(reset.json.observation).toBe('reset');
    expect(reset.json.content).toMatch(/^Reset: ended \d+ processes; a fresh shell is ready\.$/);
    expect(reset.json.extras.killed).toBeGreaterThan(10);
    // The held action ends (its shell is gone) and the sandbox takes new work.
    expect((await held).status).toBe(200);
    const after = await run(s.id, 'echo usable');
    expect(after.json.content).toBe('usable');
    // Recorded like any action: the reset and its observation are a pair in the event log.
    const events = (await call('GET', `/api/sandboxes/${s.id}/events?limit=1000`)).json.events;
    const kinds = events
      .filter((e: any) => e.kind !== 'lifecycle')
      .map((e: any) => e.payload?.action?.action ?? e.payload?.observation);
    expect(kinds).toContain('reset');
  });

  it('a memory hog past the limit is stopped and the sandbox keeps working', {
    timeout: 120_000,
  }, async () => {
    const s = (await call('POST', '/api/sandboxes', { limits: { memory_mb: 256 } })).json;
    const hog = await run(s.id, "python3 -c 'x = bytearray(1 << 30); print(len(x))'", 60);
    expect(hog.status).toBe(200);
    expect(hog.json.extras.metadata.exit_code).not.toBe(0);
    const after = await run(s.id, 'echo alive');
    expect(after.json.content).toBe('alive');
    expect((await call('GET', `/api/sandboxes/${s.id}`)).json.state).toBe('running');
  });
});
