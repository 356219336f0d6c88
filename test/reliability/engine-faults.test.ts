/**
 * Faults done to sandboxes behind Berth's back, on the real engine: `docker pause`/`unpause`,
 * `docker kill`, kill -9 of the runtime server inside the container, `docker rm -f`. Each shows in
 * the sandbox's state and event log within moments (the control plane follows the engine's event
 * stream); a paused sandbox refuses actions at once; an exited one starts again for the next action
 * with its files kept.
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { api, startInProcess } from '../integration/control-plane-helpers.js';
import { engineAvailable } from '../integration/docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: engine fault suite (${unavailable})`);

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();

describe.skipIf(unavailable !== undefined)('faults done outside Berth', () => {
  let cp: RunningControlPlane & { apiKey: string };
  const call = (method: string, path: string, body?: unknown) => api(cp.url, cp.apiKey, method, path, body);
  const run = (id: string, command: string) =>
    call('POST', `/api/sandboxes/${id}/execute_action`, {
      action: { action: 'run', args: { command }, timeout: 30 },
    });
  const stateOf = async (id: string) => (await call('GET', `/api/sandboxes/${id}`)).json;
  /** Polls until the sandbox is in `state` (bounded: 15 s). */
  const waitFor = async (id: string, state: string) => {
    const deadline = Date.now() + 15_000;
    let last = await stateOf(id);
    while (last.state !== state && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      last = await stateOf(id);
    }
    expect(last.state).toBe(state);
    return last;
  };
  const lifecycle = async (id: string) =>
    (await call('GET', `/api/sandboxes/${id}/events?limit=1000`)).json.events
      .filter((e: any) => e.kind === 'lifecycle')
      .map((e: any) => `${e.payload.event}: ${e.payload.reason}`);
  const created: string[] = [];
  const create = async () => {
    const res = await call('POST', '/api/sandboxes', {});
    expect(res.status).toBe(201);
    created.push(res.json.id);
    return res.json.id as string;
  };

  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 0 });
  });
  afterAll(async () => {
    if (!cp) return;
    for (const id of created) await call('DELETE', `/api/sandboxes/${id}`);
    await cp.close();
    await cp.manager['runtime'].reap(new Set());
  });

  it('docker pause and unpause show in the state; a paused sandbox refuses actions at once', async () => {
    const id = await create();
    docker('pause', `berth-sandbox-${id}`);
    await waitFor(id, 'paused');
    const refused = await run(id, 'echo hi');
    expect(refused.status).toBe(409);
    expect(refused.json.code).toBe('CONFLICT');
    docker('unpause', `berth-sandbox-${id}`);
    await waitFor(id, 'running');
    expect((await run(id, 'echo hi')).json.content).toBe('hi');
    expect(await lifecycle(id)).toEqual(
      expect.arrayContaining([
        'paused: paused outside Berth (docker pause)',
        'resumed: unpaused outside Berth (docker unpause)',
      ]),
    );
  });

  it('docker kill: exited with the reason; the next action starts it again, files kept', async () => {
    const id = await create();
    expect((await run(id, 'echo kept > /tmp/file; export GONE=1')).status).toBe(200);
    docker('kill', `berth-sandbox-${id}`);
    const exited = await waitFor(id, 'exited');
    expect(exited.error).toContain('killed');
    const again = await run(id, 'cat /tmp/file; echo "[$GONE]"');
    expect(again.status).toBe(200);
    expect(again.json.content).toBe('kept\n[]');
    expect((await stateOf(id)).state).toBe('running');
    const events = await lifecycle(id);
    expect(events.some((e: string) => e.startsWith('exited: container exited: killed'))).toBe(true);
    expect(events).toContain('resumed: started again for an action');
  });

  it('kill -9 of the runtime server inside: the engine starts it again in the same container', async () => {
    const id = await create();
    await run(id, 'echo still > ~/mark');
    // The server is the child of the container's init; killing it ends the container, and its
    // restart policy starts the same container again.
    const pids = docker('exec', `berth-sandbox-${id}`, 'sh', '-c', 'pgrep -f runtime-server.mjs | head -n 1');
    expect(pids).toMatch(/^\d+$/);
    docker('exec', `berth-sandbox-${id}`, 'kill', '-9', pids);
    const deadline = Date.now() + 30_000;
    let events: string[] = [];
    while (Date.now() < deadline) {
      events = await lifecycle(id);
      if (events.some((e: string) => e.startsWith('resumed: container started again'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(events).toContainEqual(expect.stringMatching(/^exited: container exited: killed/));
    expect(events).toContainEqual(expect.stringMatching(/^resumed: container started again/));
    expect((await stateOf(id)).state).toBe('running');
    expect((await run(id, 'cat ~/mark')).json.content).toBe('still');
  });

  it('a container that will not start again ends in error after 3 tries in a row, with the reason', async () => {
    const id = await create();
    docker('kill', `berth-sandbox-${id}`);
    await waitFor(id, 'exited');
    // Too little memory for the runtime server to come up: every start fails.
    docker('update', '--memory', '8m', '--memory-swap', '8m', `berth-sandbox-${id}`);
    for (let i = 1; i <= 3; i++) {
      const res = await call('POST', `/api/sandboxes/${id}/resume`);
      expect(res.status, `attempt ${i}`).toBe(503);
      expect(res.json.code).toBe('UNAVAILABLE');
    }
    const broken = await waitFor(id, 'error');
    expect(broken.error).toContain('failed to start again');
    const events = await lifecycle(id);
    expect(events.filter((e: string) => e.startsWith('start_failed'))).toHaveLength(2);
    expect(events.at(-1)).toMatch(/^failed: did not start again 3 time\(s\) in a row/);
  });

  it('a stopped sandbox whose host port another process took: resume is a 503 naming the port, never "broken"', async () => {
    const id = await create();
    expect((await call('POST', `/api/sandboxes/${id}/stop`)).status).toBe(200);
    await waitFor(id, 'stopped');
    // A stopped container binds nothing, so a process of our own can listen on its published port.
    const bindings = JSON.parse(
      docker('inspect', '--format', '{{json .HostConfig.PortBindings}}', `berth-sandbox-${id}`),
    );
    const port = Number((Object.values(bindings)[0] as { HostPort: string }[] | undefined)?.[0]?.HostPort);
    expect(port).toBeGreaterThan(0);
    const squatter = createServer();
    await new Promise<void>((resolve, reject) => {
      squatter.once('error', reject);
      squatter.listen(port, '127.0.0.1', resolve);
    });
    try {
      // More tries than it takes to count a container as broken: the host's trouble is not counted.
      for (let i = 1; i <= 4; i++) {
        const res = await call('POST', `/api/sandboxes/${id}/resume`);
        expect(res.status, `attempt ${i}`).toBe(503);
        expect(res.json.code).toBe('UNAVAILABLE');
        expect(res.json.message).toContain(`host port ${port} is in use`);
      }
      expect((await stateOf(id)).state).toBe('stopped');
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    const resumed = await call('POST', `/api/sandboxes/${id}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.json.state).toBe('running');
    expect((await run(id, 'echo back')).json.content).toBe('back');
    expect(await lifecycle(id)).toContainEqual(expect.stringMatching(/^start_failed: not counted/));
  });

  it('docker rm -f: vanished, and actions say so with 404', async () => {
    const id = await create();
    docker('rm', '-f', `berth-sandbox-${id}`);
    const gone = await waitFor(id, 'vanished');
    expect(gone.error).toContain('no longer exists');
    expect((await run(id, 'true')).status).toBe(404);
  });
});
