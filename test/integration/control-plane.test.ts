/** The control plane end to end on real Docker: API, auth, events, lifetimes, pool, restart, bad input. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RunningControlPlane } from '../../src/api/start.js';
import { loadControlPlaneConfig } from '../../src/config/control-plane.js';
import { BerthClient } from '../../src/sdk/client.js';
import { NotFoundError } from '../../src/sdk/errors.js';
import { RuntimeServerClient } from '../../src/sdk/runtime-client.js';
import { postOversized } from '../support/oversized.js';
import { api, startChild, startInProcess } from './control-plane-helpers.js';
import { engine, engineAvailable } from './docker-target.js';

const unavailable = await engineAvailable();
const ROOT = resolve(import.meta.dirname, '../..');

describe.skipIf(unavailable !== undefined)('control plane', () => {
  let cp: RunningControlPlane & { apiKey: string };
  let sdk: BerthClient;
  // key null: send no key at all.
  const call = (method: string, path: string, body?: unknown, key: string | null = cp.apiKey) =>
    api(cp.url, key ?? undefined, method, path, body);

  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 1 });
    sdk = new BerthClient({ url: cp.url, apiKey: cp.apiKey });
  });
  afterAll(async () => {
    if (!cp) return;
    for (const s of await sdk.sandboxes.list().catch(() => []))
      await sdk.sandboxes.delete(s.id).catch(() => undefined);
    for (const r of cp.manager.list({})) await cp.manager.delete(r.id).catch(() => undefined);
    await cp.close();
    // Warm-pool members too: every container of this instance.
    await cp.manager['runtime'].reap(new Set());
  });

  it('health and the committed OpenAPI document need no key; metrics do', async () => {
    const health = await call('GET', '/health', undefined, null);
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'ok', docker: 'ok' });
    expect((await fetch(`${cp.url}/metrics`)).status).toBe(401);
    const metrics = await fetch(`${cp.url}/metrics`, {
      headers: { authorization: `Bearer ${cp.apiKey}` },
    }).then((r) => r.text());
    expect(metrics).toContain('berth_sandboxes{state="running"}');
    expect(metrics).toContain('berth_action_duration_seconds_bucket');
    expect(metrics).toContain('berth_pool_size');
    const served = await call('GET', '/openapi.json', undefined, null);
    const committed = JSON.parse(readFileSync(resolve(ROOT, 'openapi.json'), 'utf8'));
    expect(served.json).toEqual(committed);
  });

  it('every /api route needs the bearer key', async () => {
    expect((await call('GET', '/api/sandboxes', undefined, null)).status).toBe(401);
    const wrong = await call('GET', '/api/sandboxes', undefined, 'nope');
    expect(wrong.status).toBe(401);
    expect(wrong.json.code).toBe('UNAUTHORIZED');
    expect((await call('GET', '/api/sandboxes')).status).toBe(200);
  });

  it('create returns id, url and session key; the runtime server answers directly too', async () => {
    const created = await call('POST', '/api/sandboxes', { labels: { team: 'a' } });
    expect(created.status).toBe(201);
    const s = created.json;
    expect(s.id).toMatch(/^[0-9a-f]{12}$/);
    expect(s.state).toBe('running');
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.session_api_key.length).toBeGreaterThan(16);
    const direct = new RuntimeServerClient(s.url, s.session_api_key);
    expect((await direct.alive()).status).toBe('ok');
    const obs = await direct.executeAction({ action: { action: 'run', args: { command: 'echo direct' } } });
    expect(obs.content).toBe('direct');
    direct.close();

    expect((await call('GET', `/api/sandboxes/${s.id}`)).json.id).toBe(s.id);
    const byLabel = await call('GET', '/api/sandboxes?label=team=a');
    expect(byLabel.json.sandboxes.map((x: { id: string }) => x.id)).toEqual([s.id]);
    expect((await call('GET', '/api/sandboxes?label=team=b')).json.sandboxes).toEqual([]);
    expect((await call('GET', '/api/sandboxes?state=paused')).json.sandboxes).toEqual([]);
    await sdk.sandboxes.delete(s.id);
  });

  it('actions are proxied and every action and observation lands in the event log, live on the WebSocket', async () => {
    const s = await sdk.sandboxes.create({});
    const seen: any[] = [];
    const ws = new WebSocket(`${cp.url.replace('http', 'ws')}/api/sandboxes/${s.id}/events/stream?after=0`, {
      headers: { authorization: `Bearer ${cp.apiKey}` },
    });
    ws.on('message', (d) => seen.push(JSON.parse(d.toString())));
    await new Promise((r) => ws.once('open', r));
    const obs = await sdk.sandbox(s.id).run('echo via-proxy && exit 3', {});
    expect(obs.content).toBe('via-proxy');
    expect((obs.extras as any).metadata.exit_code).toBe(3);
    const page = await sdk.sandbox(s.id).events();
    const kinds = page.events.map((e) => e.kind);
    expect(kinds).toContain('lifecycle');
    const action = page.events.find((e) => e.kind === 'action');
    const observation = page.events.find((e) => e.kind === 'observation');
    expect((action!.payload as any).action.args.command).toBe('echo via-proxy && exit 3');
    expect((observation!.payload as any).content).toBe('via-proxy');
    expect(observation?.duration_ms).toBeGreaterThan(0);
    // Paging by seq.
    const after = await sdk.sandbox(s.id).events(action!.seq);
    expect(after.events[0]?.seq).toBeGreaterThan(action!.seq);
    for (let i = 0; i < 50 && !seen.some((e) => e.kind === 'observation'); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((e) => e.kind)).toEqual(expect.arrayContaining(['lifecycle', 'action', 'observation']));
    ws.close();
    await sdk.sandboxes.delete(s.id);
  });

  it('a 1 MB write is written whole and recorded capped, with its size and hash', async () => {
    const s = await sdk.sandboxes.create({});
    const content = 'berth '.repeat(Math.ceil((1024 * 1024) / 6)).slice(0, 1024 * 1024);
    const body = { action: { action: 'write', args: { path: '/workspace/big.txt', content } } };
    const res = await call('POST', `/api/sandboxes/${s.id}/execute_action`, body);
    expect(res.status).toBe(200);
    expect(res.json.observation).toBe('write');
    // The sandbox got every byte (the reference's write adds a newline).
    expect((await sdk.sandbox(s.id).run('wc -c < /workspace/big.txt')).content).toBe(String(1024 * 1024 + 1));
    const events = (await call('GET', `/api/sandboxes/${s.id}/events?limit=1000`)).json.events as any[];
    const action = events.find((e) => e.kind === 'action');
    const whole = JSON.stringify(body);
    expect(action.truncated).toEqual({
      bytes: Buffer.byteLength(whole),
      sha256: createHash('sha256').update(whole).digest('hex'),
      fields: ['action.args.content'],
    });
    expect(action.payload.action).toMatchObject({ action: 'write', args: { path: '/workspace/big.txt' } });
    expect(Buffer.byteLength(JSON.stringify(action.payload))).toBeLessThanOrEqual(64 * 1024);
    expect(action.payload.action.args.content).toMatch(/more characters not kept in the event log\]$/);
    // The observation is small and kept whole.
    const observation = events.find((e) => e.kind === 'observation');
    expect(observation.truncated).toBeUndefined();
    expect(observation.payload).toEqual(res.json);
    await sdk.sandboxes.delete(s.id);
  });

  it('files: upload, list and download through the control plane', async () => {
    const s = await sdk.sandboxes.create({});
    const sb = sdk.sandbox(s.id);
    await sb.upload('/workspace/up', 'hello.txt', new TextEncoder().encode('uploaded bytes'));
    expect(await sb.listFiles('/workspace/up')).toEqual(['hello.txt']);
    const zip = await sb.download('/workspace/up/hello.txt');
    expect(Buffer.from(zip.subarray(0, 2)).toString()).toBe('PK');
    expect(Buffer.from(zip).includes(Buffer.from('hello.txt'))).toBe(true);
    await sdk.sandboxes.delete(s.id);
  });

  it('pause, resume, stop and start; env vars added through the API survive a stop, with the new value', async () => {
    const s = await sdk.sandboxes.create({});
    const sb = sdk.sandbox(s.id);
    await sdk.sandboxes.setEnv(s.id, { GREETING: 'first' });
    await sdk.sandboxes.setEnv(s.id, { GREETING: 'second' });
    expect((await sb.run('echo $GREETING')).content).toBe('second');
    await sb.run('cd /tmp');
    expect((await sdk.sandboxes.pause(s.id)).state).toBe('paused');
    await expect(sb.run('true')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await sdk.sandboxes.resume(s.id)).state).toBe('running');
    expect((await sb.run('pwd')).content).toBe('/tmp');
    expect((await sdk.sandboxes.stop(s.id)).state).toBe('stopped');
    expect((await sdk.sandboxes.resume(s.id)).state).toBe('running');
    expect((await sb.run('echo $GREETING')).content).toBe('second');
    const events = (await sb.events(0, 1000)).events
      .filter((e) => e.kind === 'lifecycle')
      .map((e) => (e.payload as any).event);
    expect(events).toEqual(expect.arrayContaining(['created', 'paused', 'resumed', 'stopped', 'env_added']));
    // Resuming what is running is a conflict, not a silent 200...
    const again = await call('POST', `/api/sandboxes/${s.id}/resume`);
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('CONFLICT');
    // ...unless it was paused behind Berth's back: then resume really unpauses it.
    execFileSync('docker', ['pause', `berth-sandbox-${s.id}`]);
    const outside = await call('POST', `/api/sandboxes/${s.id}/resume`);
    expect(outside.status).toBe(200);
    expect((await engine.containers.inspect(`berth-sandbox-${s.id}`)).state).toBe('running');
    expect((await sb.run('echo back')).content).toBe('back');
    await sdk.sandboxes.delete(s.id);
    const del = (await sb.events(0, 1000)).events.at(-1)?.payload as any;
    expect(del).toEqual({ event: 'deleted', reason: 'requested' });
    expect(await cp.manager['runtime'].state(s.id)).toBe('missing');
  });

  it('the warm pool serves creates that need no bind mount, and refills', async () => {
    for (let i = 0; i < 100 && cp.manager.poolSize() < 1; i++) await new Promise((r) => setTimeout(r, 100));
    const s = await sdk.sandboxes.create({ env: { FROM_POOL: 'yes' } });
    expect(s.from_pool).toBe(true);
    expect((await sdk.sandbox(s.id).run('echo $FROM_POOL')).content).toBe('yes');
    for (let i = 0; i < 100 && cp.manager.poolSize() < 1; i++) await new Promise((r) => setTimeout(r, 100));
    expect(cp.manager.poolSize()).toBe(1);
    // Pool members are not listed as sandboxes.
    expect((await sdk.sandboxes.list()).map((x) => x.id)).toEqual([s.id]);
    await sdk.sandboxes.delete(s.id);
  });

  it('lifetimes end, can be extended, and idle reaping waits for running commands', async () => {
    const short = await sdk.sandboxes.create({ timeout_seconds: 2 });
    // Long enough to be extended before it ends even when a create takes seconds under load.
    const extended = await sdk.sandboxes.create({ timeout_seconds: 6 });
    await sdk.sandboxes.extendTimeout(extended.id, 600);
    const idle = await sdk.sandboxes.create({ idle_timeout_seconds: 2 });
    // A command longer than the idle limit keeps it alive.
    await sdk.sandbox(idle.id).run('sleep 4', { timeoutSeconds: 30 });
    expect((await sdk.sandboxes.get(idle.id)).state).toBe('running');
    // The reaper runs every second; give it time under load, then check.
    for (let i = 0; i < 150; i++) {
      const states = await Promise.all(
        [short.id, idle.id].map(async (id) => (await sdk.sandboxes.get(id)).state),
      );
      if (states.every((st) => st === 'deleted')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await sdk.sandboxes.get(short.id)).state).toBe('deleted');
    expect((await sdk.sandboxes.get(extended.id)).state).toBe('running');
    expect((await sdk.sandboxes.get(idle.id)).state).toBe('deleted');
    const reasons = (await sdk.sandbox(idle.id).events(0, 1000)).events.map((e) => (e.payload as any).reason);
    expect(reasons).toContain('idle');
    const lifetime = (await sdk.sandbox(short.id).events(0, 1000)).events.map(
      (e) => (e.payload as any).reason,
    );
    expect(lifetime).toContain('lifetime ended');
    await sdk.sandboxes.delete(extended.id);
  });

  it('bad input: unknown sandbox 404, invalid options 400 naming the field, 413, malformed JSON', async () => {
    const missing = await call('GET', '/api/sandboxes/000000000000');
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe('NOT_FOUND');
    await expect(sdk.sandboxes.get('000000000000')).rejects.toBeInstanceOf(NotFoundError);
    const badCpu = await call('POST', '/api/sandboxes', { limits: { cpus: -1 } });
    expect(badCpu.status).toBe(400);
    expect(badCpu.json.code).toBe('VALIDATION_FAILED');
    expect(badCpu.json.message).toContain('limits.cpus');
    const unknown = await call('POST', '/api/sandboxes', { colour: 'blue' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.message).toContain('colour');
    const badVolume = await call('POST', '/api/sandboxes', { volumes: ['nocolon'] });
    expect(badVolume.status).toBe(400);
    expect(badVolume.json.message).toContain('nocolon');
    const malformed = await call('POST', '/api/sandboxes', '{"image": ');
    expect(malformed.status).toBe(400);
    expect(malformed.json.code).toBe('INVALID_JSON');
    const huge = await postOversized(
      `${cp.url}/api/sandboxes`,
      { authorization: `Bearer ${cp.apiKey}`, 'content-type': 'application/json' },
      JSON.stringify({ image: 'x'.repeat(65 * 1024 * 1024) }),
    );
    expect(huge.status).toBe(413);
    const badAction = await call('POST', '/api/sandboxes/000000000000/execute_action', { nope: 1 });
    expect(badAction.status).toBe(400);
  });

  it('the reaper leaves keep_alive containers alone after delete, and removes the others', async () => {
    const kept = await call('POST', '/api/sandboxes', { keep_alive: true, labels: { reap: 'kept' } });
    const keptByQuery = await call('POST', '/api/sandboxes', { labels: { reap: 'kept-by-query' } });
    const gone = await call('POST', '/api/sandboxes', { labels: { reap: 'gone' } });
    for (const s of [kept, keptByQuery, gone]) expect(s.status).toBe(201);
    expect((await call('DELETE', `/api/sandboxes/${kept.json.id}`)).status).toBe(204);
    expect((await call('DELETE', `/api/sandboxes/${keptByQuery.json.id}?keep=true`)).status).toBe(204);
    expect((await call('DELETE', `/api/sandboxes/${gone.json.id}`)).status).toBe(204);
    const containerOf = (id: string) => engine.containers.find(`berth-sandbox-${id}`);
    try {
      expect(await containerOf(gone.json.id)).toBeUndefined();
      // Several reaper passes (one a second in this suite) later, the kept ones are still there.
      const passes = (cp.manager as unknown as { reap(): Promise<void> }).reap.bind(cp.manager);
      for (let i = 0; i < 3; i++) await passes();
      expect((await containerOf(kept.json.id))?.state).toBe('running');
      expect((await containerOf(keptByQuery.json.id))?.state).toBe('running');
    } finally {
      for (const s of [kept, keptByQuery])
        await engine.containers.remove(`berth-sandbox-${s.json.id}`).catch(() => undefined);
    }
  });

  it('a sandbox whose container died is reported, not hung on', async () => {
    const s = await sdk.sandboxes.create({});
    await engine.containers.remove(s.container_id!);
    // Usually the engine's event has already marked it vanished (404); if the action is first, the
    // failed call finds out (503). Either way it answers at once and the state says vanished.
    const err = await sdk
      .sandbox(s.id)
      .run('true')
      .then(
        () => undefined,
        (e: { code?: string }) => e,
      );
    expect(['NOT_FOUND', 'UNAVAILABLE']).toContain(err?.code);
    expect((await sdk.sandboxes.get(s.id)).state).toBe('vanished');
  });
});

describe.skipIf(unavailable !== undefined)('control plane restart', () => {
  it('after kill -9, running sandboxes are re-attached, vanished ones marked, and no event is lost', async () => {
    const first = await startChild({});
    const sdk1 = new BerthClient({ url: first.url, apiKey: first.apiKey });
    const keep = await sdk1.sandboxes.create({});
    const lose = await sdk1.sandboxes.create({});
    await sdk1.sandbox(keep.id).run('cd /tmp && export KEPT=1');
    const before = (await sdk1.sandbox(keep.id).events(0, 1000)).events;
    // Five actions in flight when the process dies: one running, four queued behind it (they finish
    // in the sandbox meanwhile, about 10 s, before the shell is free for the checks below).
    const inFlight = Array.from({ length: 5 }, (_, i) =>
      sdk1
        .sandbox(keep.id)
        .run(`sleep 2; echo ${i}`, { timeoutSeconds: 60 })
        .catch(() => undefined),
    );
    const recorded = async () =>
      (await sdk1.sandbox(keep.id).events(0, 1000)).events.filter((e) => e.kind === 'action').length;
    const deadline = Date.now() + 20_000;
    while ((await recorded()) < before.filter((e) => e.kind === 'action').length + 5 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await first.kill9();
    await Promise.all(inFlight);
    await engine.containers.remove(lose.container_id!);

    const second = await startChild({ dataDir: first.dataDir, apiKey: first.apiKey });
    try {
      const sdk2 = new BerthClient({ url: second.url, apiKey: second.apiKey });
      expect((await sdk2.sandboxes.get(keep.id)).state).toBe('running');
      expect((await sdk2.sandboxes.get(lose.id)).state).toBe('vanished');
      const after = (await sdk2.sandbox(keep.id).events(0, 1000)).events;
      expect(after.slice(0, before.length)).toEqual(before);
      // Every action has its observation: the five cut short are answered INTERRUPTED.
      const pairs = after.filter((e) => e.kind !== 'lifecycle');
      expect(pairs.filter((e) => e.kind === 'action').length).toBe(
        pairs.filter((e) => e.kind === 'observation').length,
      );
      const interrupted = pairs.filter((e) => (e.payload as any)?.error?.code === 'INTERRUPTED');
      expect(interrupted).toHaveLength(5);
      // The shell survived with its state, and new actions are recorded.
      expect((await sdk2.sandbox(keep.id).run('pwd; echo $KEPT')).content).toBe('/tmp\n1');
      await sdk2.sandboxes.delete(keep.id);
    } finally {
      await second.stop();
      const { DockerSandboxRuntime } = await import('../../src/docker/sandbox-runtime.js');
      const { instanceOwner } = await import('../../src/api/start.js');
      const { PortAllocator } = await import('../../src/docker/ports.js');
      const { pino } = await import('pino');
      await new DockerSandboxRuntime({
        engine,
        ports: new PortAllocator({ lockDir: loadControlPlaneConfig().sandbox.port_lock_dir }),
        logger: pino({ level: 'silent' }),
        owner: instanceOwner(first.dataDir),
        reach: { kind: 'host-ports' },
      }).reap(new Set());
    }
  }, 120_000);
});
