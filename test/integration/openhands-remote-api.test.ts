/**
 * OpenHands' remote runtime API (/openhands) on a real control plane and Docker engine, driven over
 * HTTP the way OpenHands' RemoteRuntime drives it (X-API-Key, the routes and fields of
 * ../shared/reference/openhands-remote-api.md). The real OpenHands client is in openhands-client.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { DEFAULT_BASE_IMAGE } from '../../src/config/docker.js';
import { startInProcess } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const unavailable = await engineAvailable();

const COMMAND = [
  '/openhands/micromamba/bin/micromamba',
  'run',
  '-n',
  'openhands',
  'poetry',
  'run',
  'python',
  '-u',
  '-m',
  'openhands.runtime.action_execution_server',
  '60000',
  '--working-dir',
  '/workspace',
  '--plugins',
  'agent_skills',
  'jupyter',
  '--username',
  'openhands',
  '--user-id',
  '1000',
  '--no-enable-browser',
];

async function tarGz(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  for (const [name, text] of Object.entries(files)) p.entry({ name }, text);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}

describe.skipIf(unavailable !== undefined)("OpenHands' remote runtime API", () => {
  let cp: RunningControlPlane & { apiKey: string };
  let runtimeImage: string;
  const started: string[] = [];
  const madeTags: string[] = [];

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${cp.url}/openhands${path}`, {
      method,
      headers: {
        'X-API-Key': cp.apiKey,
        ...(body !== undefined && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const start = async (session: string, extra: Record<string, unknown> = {}) => {
    const r = await api('POST', '/start', {
      image: runtimeImage,
      command: COMMAND,
      working_dir: '/openhands/code/',
      environment: { GREETING: 'hello from openhands' },
      session_id: session,
      resource_factor: 1,
      ...extra,
    });
    if (r.json?.runtime_id) started.push(r.json.runtime_id);
    return r;
  };
  const action = async (url: string, key: string, command: string) => {
    const res = await fetch(`${url}/execute_action`, {
      method: 'POST',
      headers: { 'X-Session-API-Key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ action: { action: 'run', args: { command }, timeout: 60 } }),
    });
    return {
      status: res.status,
      obs: (await res.json()) as { content: string; extras: Record<string, unknown> },
    };
  };

  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 0 });
    runtimeImage = await cp.manager['settings'].defaultImage();
  }, 180_000);
  afterAll(async () => {
    if (!cp) return;
    for (const id of started) await cp.manager.delete(id).catch(() => undefined);
    await cp.close();
    // Only the names this suite gave; the image itself is the cached runtime image.
    if (madeTags.length) spawnSync('docker', ['rmi', ...madeTags], { stdio: 'ignore' });
  });

  it('refuses calls without the API key, with a FastAPI-style body', async () => {
    for (const headers of [{ 'X-API-Key': '' }, { 'X-API-Key': 'wrong' }]) {
      const r = await api('GET', '/sessions/some-session', undefined, headers);
      expect(r.status).toBe(401);
      expect(r.json.detail).toMatch(/API key/);
    }
  });

  it('answers 404 {"detail"} for a session without a runtime, and for a runtime that does not exist', async () => {
    const s = await api('GET', '/sessions/no-such-session');
    expect(s.status).toBe(404);
    expect(typeof s.json.detail).toBe('string');
    const r = await api('GET', '/runtime/0123456789abcdef');
    expect(r.status).toBe(404);
    expect(typeof r.json.detail).toBe('string');
  });

  it("starts a runtime with the command's user, working dir and environment; its url needs only the session key", async () => {
    const r = await start('conv-start');
    expect(r.status).toBe(201);
    const rt = r.json;
    expect(rt).toMatchObject({ session_id: 'conv-start', status: 'running', pod_status: 'ready' });
    expect(rt.url).toBe(`${cp.url}/api/sandboxes/${rt.runtime_id}/runtime`);
    expect(Object.values(rt.work_hosts)).toHaveLength(2);

    const alive = await fetch(`${rt.url}/alive`, { headers: { 'X-Session-API-Key': rt.session_api_key } });
    expect(alive.status).toBe(200);
    const noKey = await fetch(`${rt.url}/alive`);
    expect(noKey.status).toBe(401);
    const wrongKey = await fetch(`${rt.url}/alive`, { headers: { 'X-Session-API-Key': 'nope' } });
    expect(wrongKey.status).toBe(401);

    const { status, obs } = await action(rt.url, rt.session_api_key, 'echo "$GREETING"; id -un; id -u; pwd');
    expect(status).toBe(200);
    expect(obs.content.split('\n').slice(0, 4)).toEqual([
      'hello from openhands',
      'openhands',
      '1000',
      '/workspace',
    ]);
    // Recorded in the sandbox's event log like any action through the control plane.
    const events = (await (
      await fetch(`${cp.url}/api/sandboxes/${rt.runtime_id}/events`, {
        headers: { Authorization: `Bearer ${cp.apiKey}` },
      })
    ).json()) as { events: Array<{ kind: string }> };
    expect(events.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['action', 'observation']));

    const session = await api('GET', '/sessions/conv-start');
    expect(session.json).toMatchObject({ runtime_id: rt.runtime_id, status: 'running' });
    const list = await api('GET', '/list');
    expect(list.json.runtimes.map((x: { runtime_id: string }) => x.runtime_id)).toContain(rt.runtime_id);
  });

  it('a repeated start of a running session returns the same runtime', async () => {
    const a = await start('conv-twice');
    const b = await start('conv-twice');
    expect(b.status).toBe(201);
    expect(b.json.runtime_id).toBe(a.json.runtime_id);
  });

  it('pause keeps processes; /sessions says paused; the url answers 503 until /resume', async () => {
    const rt = (await start('conv-pause')).json;
    await action(rt.url, rt.session_api_key, 'sleep 600 & echo $! > /tmp/bg.pid');
    expect((await api('POST', '/pause', { runtime_id: rt.runtime_id })).status).toBe(200);
    expect((await api('GET', '/sessions/conv-pause')).json.status).toBe('paused');
    expect((await api('GET', `/runtime/${rt.runtime_id}`)).json.pod_status).toBe('paused');
    const during = await fetch(`${rt.url}/alive`, { headers: { 'X-Session-API-Key': rt.session_api_key } });
    expect(during.status).toBe(503);
    expect((await api('POST', '/resume', { runtime_id: rt.runtime_id })).status).toBe(200);
    // A second resume of a running runtime is not an error (OpenHands resumes after any 503).
    expect((await api('POST', '/resume', { runtime_id: rt.runtime_id })).status).toBe(200);
    const { obs } = await action(
      rt.url,
      rt.session_api_key,
      'kill -0 "$(cat /tmp/bg.pid)" && echo still-there',
    );
    expect(obs.content).toContain('still-there');
  });

  it('stop removes the runtime; a new start for the session makes a new one', async () => {
    const first = (await start('conv-stop')).json;
    expect((await api('POST', '/stop', { runtime_id: first.runtime_id })).status).toBe(200);
    expect((await api('GET', '/sessions/conv-stop')).status).toBe(404);
    expect((await api('GET', `/runtime/${first.runtime_id}`)).status).toBe(404);
    const second = await start('conv-stop');
    expect(second.status).toBe(201);
    expect(second.json.runtime_id).not.toBe(first.runtime_id);
  });

  it('starts on any glibc image by adding the runtime layer to it', async () => {
    const r = await start('conv-base-image', { image: DEFAULT_BASE_IMAGE });
    expect(r.status).toBe(201);
    expect(r.json.image).toMatch(/^berth-runtime:/);
    const { obs } = await action(r.json.url, r.json.session_api_key, 'echo layered');
    expect(obs.content).toContain('layered');
  });

  it('refuses bad starts with a detail: a missing image, a bad user id, a runtime class the policy does not allow, a factor above the limits', async () => {
    const missing = await start('conv-bad-1', { image: 'no-such-image:never' });
    expect(missing.status).toBe(404);
    expect(missing.json.detail).toMatch(/never pulls/);
    const badUid = await start('conv-bad-2', { command: ['x', '--user-id', 'abc'] });
    expect(badUid.status).toBe(400);
    const sysbox = await start('conv-bad-3', { runtime_class: 'sysbox-runc' });
    expect(sysbox.status).toBe(403);
    expect(sysbox.json.code).toBe('RUNTIME_NOT_ALLOWED');
    const unknown = await start('conv-bad-4', { runtime_class: 'kata' });
    expect(unknown.status).toBe(400);
    const big = await start('conv-bad-5', { resource_factor: 8 });
    expect(big.status).toBe(403);
    expect(big.json.code).toBe('LIMIT_NOT_ALLOWED');
    const env = await start('conv-bad-6', { environment: { 'NOT A NAME': 'x' } });
    expect(env.status).toBe(400);
    for (const s of ['conv-bad-1', 'conv-bad-2', 'conv-bad-3', 'conv-bad-4', 'conv-bad-5', 'conv-bad-6']) {
      expect((await api('GET', `/sessions/${s}`)).status).toBe(404);
    }
  });

  it("runs OpenHands' build flow: registry_prefix, image_exists, build (runtime layer on the FROM base), build_status", async () => {
    const prefix = (await api('GET', '/registry_prefix')).json.registry_prefix as string;
    const target = `${prefix}/runtime:oh_v0.62.0_test${Date.now()}`;
    const lockTag = `${prefix}/runtime:oh_v0.62.0_lock${Date.now()}`;
    expect((await api('GET', `/image_exists?image=${encodeURIComponent(target)}`)).json).toEqual({
      exists: false,
      image: null,
    });
    const context = await tarGz({
      Dockerfile: `ARG BASE=${DEFAULT_BASE_IMAGE}\nFROM \${BASE} AS base\nRUN curl https://example.invalid/install.sh | sh\n`,
      'code/openhands/__init__.py': '',
    });
    const form = new FormData();
    form.append('context', new Blob([context.toString('base64')]), 'context.tar.gz');
    form.append('target_image', target);
    form.append('tags', lockTag);
    const build = await api('POST', '/build', form);
    expect(build.status).toBe(202);
    let status: { status: string; image: string; error?: string } = { status: 'RUNNING', image: '' };
    for (let i = 0; i < 120 && status.status === 'RUNNING'; i++) {
      await new Promise((r) => setTimeout(r, 500));
      status = (await api('GET', `/build_status?build_id=${build.json.build_id}`)).json;
    }
    expect(status).toEqual({ status: 'SUCCESS', image: target });
    for (const name of [target, lockTag]) {
      const exists = (await api('GET', `/image_exists?image=${encodeURIComponent(name)}`)).json;
      expect(exists.exists).toBe(true);
      expect(exists.image.image_size_bytes).toBeGreaterThan(0);
      expect(typeof exists.image.upload_time).toBe('string');
    }
    const rt = await start('conv-built', { image: target });
    expect(rt.status).toBe(201);
    expect(rt.json.image).toBe(target);
    madeTags.push(target, lockTag);
  });

  it('refuses a build context that is not a tar, or has no FROM, and an unknown build id', async () => {
    const notTar = new FormData();
    notTar.append('context', new Blob([Buffer.from('not an archive').toString('base64')]), 'context.tar.gz');
    notTar.append('target_image', 'berth.local/openhands/runtime:x');
    expect((await api('POST', '/build', notTar)).status).toBe(400);
    const noFrom = new FormData();
    noFrom.append(
      'context',
      new Blob([(await tarGz({ Dockerfile: 'RUN true\n' })).toString('base64')]),
      'c.tgz',
    );
    noFrom.append('target_image', 'berth.local/openhands/runtime:y');
    const r = await api('POST', '/build', noFrom);
    expect(r.status).toBe(400);
    expect(r.json.detail).toMatch(/FROM/);
    expect((await api('GET', '/build_status?build_id=build-nope')).status).toBe(404);
  });
});
