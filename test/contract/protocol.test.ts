/** Contract: endpoints, auth, bad requests, errors inside actions, and concurrency. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spellings } from '../support/path-spellings.js';
import { rawRequest } from '../support/raw-http.js';
import { RuntimeClient, type RuntimeTarget, startRuntimeTarget } from './harness.js';

let target: RuntimeTarget;
let c: RuntimeClient;

beforeAll(async () => {
  target = await startRuntimeTarget();
  c = new RuntimeClient(target);
});
afterAll(async () => {
  await target?.close();
});

describe('endpoints and auth', () => {
  it('/alive and /server_info need no key', async () => {
    const alive = await fetch(`${target.url}/alive`);
    expect(alive.status).toBe(200);
    expect(await alive.json()).toEqual({ status: 'ok' });
    const info = await fetch(`${target.url}/server_info`);
    expect(info.status).toBe(200);
    const body = (await info.json()) as any;
    expect(body.uptime).toBeGreaterThan(0);
    expect(body.idle_time).toBeGreaterThanOrEqual(0);
    for (const k of ['cpu_percent', 'memory', 'disk', 'io']) expect(body.resources).toHaveProperty(k);
    expect(body.resources.memory.rss).toBeGreaterThan(0);
    expect(body.resources.disk.total).toBeGreaterThan(0);
  });

  it('every other endpoint needs the key: missing or wrong gives 401 JSON', async () => {
    const body = JSON.stringify({ action: { action: 'run', args: { command: 'true' } } });
    const missing = await fetch(`${target.url}/execute_action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    const wrong = await fetch(`${target.url}/execute_action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Session-API-Key': 'nope' },
      body,
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ code: 'UNAUTHORIZED', message: 'Invalid API Key' });
    for (const [method, path] of [
      ['POST', '/list_files'],
      ['GET', '/download_files?path=/tmp'],
      ['POST', '/upload_file?destination=/tmp'],
    ] as const) {
      const r = await fetch(target.url + path, { method });
      expect(r.status, path).toBe(401);
    }
  });
});

describe('the session key cannot be walked around', () => {
  it('every spelling of a protected path, with no, a wrong or an empty key, is 401', async () => {
    const leaks: string[] = [];
    for (const [method, path] of [
      ['POST', '/execute_action'],
      ['POST', '/list_files'],
      ['GET', '/download_files'],
      ['POST', '/upload_file'],
    ] as const) {
      for (const spelled of spellings(path)) {
        const keys: Record<string, string>[] = [
          {},
          { 'X-Session-API-Key': 'wrong' },
          { 'X-Session-API-Key': '' },
        ];
        for (const headers of keys) {
          const body = method === 'POST' ? '{"action":{"action":"run","args":{"command":"id"}}}' : '';
          const all = method === 'POST' ? { ...headers, 'Content-Type': 'application/json' } : headers;
          const r = await rawRequest(target.url, method, spelled, all, body);
          if (r.status !== 401) leaks.push(`${method} ${spelled} ${JSON.stringify(headers)} -> ${r.status}`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });
});

describe('bad requests get 4xx JSON errors that name the problem', () => {
  it('malformed JSON', async () => {
    const r = await c.request('POST', '/execute_action', '{"action": {', {});
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('INVALID_JSON');
  });

  it("browse actions get the reference's no-browser error observation (200), as with --no-enable-browser", async () => {
    for (const action of [
      { action: 'browse', args: { url: 'http://127.0.0.1:1/' } },
      { action: 'browse_interactive', args: { browser_actions: 'goto("http://127.0.0.1:1/")' } },
    ]) {
      const r = await c.request('POST', '/execute_action', { action });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({
        observation: 'error',
        content: 'Browser functionality is not supported or disabled.',
      });
    }
  });

  it('unknown action type', async () => {
    const r = await c.request('POST', '/execute_action', { action: { action: 'teleport', args: {} } });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('UNKNOWN_ACTION');
    expect(r.json.message).toContain('teleport');
    const think = await c.request('POST', '/execute_action', { action: { action: 'think', args: {} } });
    expect(think.status).toBe(400);
    expect(think.json.message).toContain('think');
  });

  it('missing and wrongly typed fields are named', async () => {
    const missing = await c.request('POST', '/execute_action', { action: { action: 'run', args: {} } });
    expect(missing.status).toBe(400);
    expect(missing.json.code).toBe('VALIDATION_FAILED');
    expect(missing.json.message).toContain('action.args.command');
    const wrong = await c.request('POST', '/execute_action', {
      action: { action: 'run', args: { command: 'true', is_input: 'yes' } },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.json.message).toContain('action.args.is_input');
    const noAction = await c.request('POST', '/execute_action', { nothing: 1 });
    expect(noAction.status).toBe(400);
    expect(noAction.json.message).toContain('body.action');
    const badTimeout = await c.request('POST', '/execute_action', {
      action: { action: 'run', args: { command: 'true' }, timeout: 'soon' },
    });
    expect(badTimeout.status).toBe(400);
    expect(badTimeout.json.message).toContain('timeout');
  });

  it('a body over the limit gets 413', async () => {
    const huge = JSON.stringify({
      action: { action: 'write', args: { path: 'x', content: 'a'.repeat(65 * 1024 * 1024) } },
    });
    const r = await c.oversized('/execute_action', huge);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('an unknown route is a 404 JSON error', async () => {
    const r = await c.request('GET', '/nope');
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('NOT_FOUND');
  });

  it('the server keeps serving after all of that', async () => {
    expect((await c.run('echo still-here')).content).toBe('still-here');
  });
});

describe('actions run one at a time; the rest is answered meanwhile', () => {
  it('alive, server_info, list_files and download_files answer while a command runs', async () => {
    const long = c.run('sleep 6; echo slept', { blocking: true }, 30);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const [alive, info, list, dl] = await Promise.all([
      c.request('GET', '/alive'),
      c.request('GET', '/server_info'),
      c.request('POST', '/list_files', {}),
      fetch(`${target.url}/download_files?path=${encodeURIComponent(target.workspace)}`, {
        headers: c.headers(),
      }),
    ]);
    const elapsed = Date.now() - t0;
    expect(alive.status).toBe(200);
    expect(info.status).toBe(200);
    expect(list.status).toBe(200);
    expect(dl.status).toBe(200);
    await dl.arrayBuffer();
    // Served without waiting for the 6 s command (a logical check, not a benchmark).
    expect(elapsed).toBeLessThan(5000);
    expect((await long).content).toBe('slept');
  });

  it('a second action waits for the first instead of interleaving', async () => {
    const first = c.run('sleep 1; echo first', { blocking: true }, 30);
    const second = c.run('echo second');
    const [a, b] = await Promise.all([first, second]);
    expect(a.content).toBe('first');
    expect(b.content).toBe('second');
  });
});
