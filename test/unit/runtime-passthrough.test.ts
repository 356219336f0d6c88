/**
 * The control plane's pass-through to a sandbox's runtime server (/api/sandboxes/{id}/runtime/*):
 * what it forwards and what it must never forward. The "runtime server" here is a loopback HTTP
 * server that records what reaches it (a fake sandbox, for the logic); the same route against real
 * sandboxes is in test/integration/openhands-remote-api.test.ts and auth-bypass.test.ts.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildControlPlane, type ControlPlane } from '../../src/api/server.js';
import type { SandboxEndpoint, SandboxRuntime, SandboxSpec } from '../../src/sandboxes/types.js';
import { Store } from '../../src/store/store.js';
import { testManagerSettings } from '../support/manager-settings.js';

const KEY = 'api-key-of-the-control-plane';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

class LoopbackRuntime implements SandboxRuntime {
  constructor(private readonly url: string) {}
  async start(spec: SandboxSpec): Promise<SandboxEndpoint> {
    return {
      id: spec.id,
      containerId: `c-${spec.id}`,
      url: this.url,
      sessionApiKey: spec.sessionApiKey,
      ports: { runtime: 1, app: [] },
    };
  }
  async attach(): Promise<SandboxEndpoint> {
    throw new Error('not used');
  }
  async state() {
    return 'running' as const;
  }
  async pause() {}
  async resume() {}
  async stop() {}
  async restart(): Promise<SandboxEndpoint> {
    throw new Error('not used');
  }
  async remove() {}
  async logs(): Promise<never> {
    throw new Error('not used');
  }
  async list() {
    return [];
  }
  async reap() {
    return [];
  }
}

describe('runtime pass-through', () => {
  let upstream: Server;
  let seen: Seen[];
  let cp: ControlPlane;
  let base: string;
  let sandbox: { id: string; session_api_key: string };

  beforeAll(async () => {
    seen = [];
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks),
        });
        if (req.url?.startsWith('/events')) {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          res.write('event: endpoint\ndata: first\n\n');
          return; // never ends, like an MCP event stream
        }
        res.writeHead(207, { 'content-type': 'application/octet-stream', 'x-internal': 'secret' });
        res.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    cp = await buildControlPlane({
      store: Store.open(':memory:'),
      runtime: new LoopbackRuntime(url),
      apiKeys: [KEY],
      logger: pino({ level: 'silent' }),
      settings: testManagerSettings({ defaultImage: async () => 'img', startTimeoutMs: 5_000 }),
    });
    await cp.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(cp.app.server.address() as AddressInfo).port}`;
    const res = await fetch(`${base}/api/sandboxes`, {
      method: 'POST',
      headers: { 'X-API-Key': KEY, 'content-type': 'application/json' },
      body: '{}',
    });
    sandbox = (await res.json()) as typeof sandbox;
  });
  afterAll(async () => {
    await cp?.close();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
  });

  it("forwards method, path, query and body unchanged, with the sandbox's own session key and nothing of the caller's credentials", async () => {
    seen.length = 0;
    const body = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    const res = await fetch(
      `${base}/api/sandboxes/${sandbox.id}/runtime/upload_file?destination=/tmp&recursive=false`,
      {
        method: 'PUT',
        headers: {
          'X-API-Key': KEY,
          Authorization: `Bearer ${KEY}`,
          Cookie: `session=${KEY}`,
          'X-Session-API-Key': sandbox.session_api_key,
          'X-Forwarded-For': '10.0.0.1',
          'content-type': 'application/octet-stream',
        },
        body,
      },
    );
    expect(res.status).toBe(207);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
    // Only content headers come back; the server's own do not.
    expect(res.headers.get('x-internal')).toBeNull();
    const [req] = seen;
    expect(req?.method).toBe('PUT');
    expect(req?.url).toBe('/upload_file?destination=/tmp&recursive=false');
    expect(req?.body).toEqual(body);
    expect(req?.headers['x-session-api-key']).toBe(sandbox.session_api_key);
    const all = JSON.stringify(req?.headers);
    expect(all).not.toContain(KEY);
    expect(req?.headers.authorization).toBeUndefined();
    expect(req?.headers.cookie).toBeUndefined();
    expect(req?.headers['x-api-key']).toBeUndefined();
    expect(req?.headers['x-forwarded-for']).toBeUndefined();
    expect(req?.headers['x-forwarded-prefix']).toBe(`/api/sandboxes/${sandbox.id}/runtime`);
  });

  it('takes the session key alone, or the API key alone, and nothing else', async () => {
    const url = `${base}/api/sandboxes/${sandbox.id}/runtime/alive`;
    expect((await fetch(url, { headers: { 'X-Session-API-Key': sandbox.session_api_key } })).status).toBe(
      207,
    );
    expect((await fetch(url, { headers: { 'X-API-Key': KEY } })).status).toBe(207);
    expect((await fetch(url)).status).toBe(401);
    expect(
      (await fetch(url, { headers: { 'X-Session-API-Key': `${sandbox.session_api_key}x` } })).status,
    ).toBe(401);
    // An unknown sandbox with a session key looks like a wrong key; with the API key it is a 404.
    const other = `${base}/api/sandboxes/ffffffffffffffff/runtime/alive`;
    expect((await fetch(other, { headers: { 'X-Session-API-Key': sandbox.session_api_key } })).status).toBe(
      401,
    );
    expect((await fetch(other, { headers: { 'X-API-Key': KEY } })).status).toBe(404);
  });

  it('streams an event stream as it comes, without waiting for its end', async () => {
    const ac = new AbortController();
    const res = await fetch(`${base}/api/sandboxes/${sandbox.id}/runtime/events`, {
      headers: { 'X-Session-API-Key': sandbox.session_api_key, accept: 'text/event-stream' },
      signal: ac.signal,
    });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(Buffer.from(value!).toString()).toContain('data: first');
    ac.abort();
  });
});
