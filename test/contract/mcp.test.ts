/**
 * Contract: MCP and VS Code routes. The test writes a small stdio MCP server of its own (plain Node,
 * no packages) into the workspace, registers it with POST /update_mcp_server as the app does, and
 * lists and calls its tools through /mcp/sse with the MCP SDK's client, as OpenHands' host does.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { RuntimeClient, type RuntimeTarget, startRuntimeTarget } from './harness.js';

let target: RuntimeTarget;
let c: RuntimeClient;
let script: string;
let sandboxUid: number;

/** A stdio MCP server: whoami (its uid and pid), add, and fail (a tool error). */
const SERVER_SOURCE = String.raw`
const label = process.argv[2] || 'test';
let buf = '';
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
const text = (t, isError) => ({ content: [{ type: 'text', text: t }], ...(isError ? { isError: true } : {}) });
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line.trim()) handle(JSON.parse(line));
  }
});
process.stdin.on('end', () => process.exit(0));
console.error('stdio test server ' + label + ' up');
function handle(m) {
  if (m.method === 'initialize') {
    send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: label, version: '1' } } });
  } else if (m.method === 'tools/list') {
    send({ jsonrpc: '2.0', id: m.id, result: { tools: [
      { name: 'whoami', description: 'uid and pid of this server', inputSchema: { type: 'object', properties: {} } },
      { name: 'add', description: 'a + b', inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] } },
      { name: 'fail', description: 'always fails', inputSchema: { type: 'object', properties: {} } },
    ] } });
  } else if (m.method === 'tools/call') {
    const a = m.params.arguments || {};
    const r = m.params.name === 'whoami' ? text(JSON.stringify({ uid: process.getuid(), pid: process.pid, label, env: process.env.MCP_TEST_VAR || null, key: process.env.SESSION_API_KEY || null }))
      : m.params.name === 'add' ? text(String(a.a + a.b))
      : text('it failed', true);
    send({ jsonrpc: '2.0', id: m.id, result: r });
  } else if (m.id !== undefined) {
    send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found: ' + m.method } });
  }
}
`;

function server(name: string, extra: Record<string, unknown> = {}) {
  return { name, command: 'node', args: [script, name], env: {}, ...extra };
}

async function update(list: unknown) {
  return c.request('POST', '/update_mcp_server', list);
}

/** An MCP client on the sandbox's SSE endpoint, as OpenHands makes one (the key as a header). */
async function connect(): Promise<Client> {
  const transport = new SSEClientTransport(new URL(`${target.url}/mcp/sse`), {
    requestInit: { headers: { 'X-Session-API-Key': target.key, Authorization: `Bearer ${target.key}` } },
  });
  const client = new Client({ name: 'berth-contract-test', version: '1' });
  await client.connect(transport);
  return client;
}

async function withClient<T>(use: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect();
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}

function textOf(result: unknown): string {
  const content = (result as { content: { type: string; text: string }[] }).content;
  return content.map((p) => p.text).join('');
}

async function whoami(client: Client, tool = 'whoami') {
  return JSON.parse(textOf(await client.callTool({ name: tool, arguments: {} }))) as {
    uid: number;
    pid: number;
    label: string;
    env: string | null;
    key: string | null;
  };
}

async function alive(pid: number): Promise<boolean> {
  const obs = await c.run(`kill -0 ${pid} 2>/dev/null && echo ALIVE || echo GONE`);
  return obs.content.includes('ALIVE');
}

beforeAll(async () => {
  target = await startRuntimeTarget();
  c = new RuntimeClient(target);
  script = `${target.workspace}/.mcp-test-server.cjs`;
  const write = await c.act('write', { path: script, content: SERVER_SOURCE });
  expect(write.observation).toBe('write');
  sandboxUid = Number((await c.run('id -u')).content.trim().split('\n')[0]);
});
afterAll(async () => {
  await update([]).catch(() => undefined);
  await target?.close();
});

describe('VS Code', () => {
  it('GET /vscode/connection_token answers {"token": null}: no VS Code server in the sandbox', async () => {
    const r = await c.request('GET', '/vscode/connection_token');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ token: null });
  });
});

describe('MCP: POST /update_mcp_server and /mcp/sse', () => {
  it('every MCP route needs the session key', async () => {
    for (const [method, path] of [
      ['POST', '/update_mcp_server'],
      ['GET', '/mcp/sse'],
      ['POST', '/mcp/messages?session_id=x'],
      ['GET', '/vscode/connection_token'],
    ] as const) {
      const r = await fetch(target.url + path, {
        method,
        headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
        body: method === 'POST' ? '[]' : undefined,
      });
      expect(r.status, path).toBe(401);
      expect(await r.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    }
    const wrong = new SSEClientTransport(new URL(`${target.url}/mcp/sse`), {
      requestInit: { headers: { 'X-Session-API-Key': 'nope' } },
    });
    await expect(new Client({ name: 't', version: '1' }).connect(wrong)).rejects.toThrow();
  });

  it('a body that is not a list of stdio servers is a 400 VALIDATION_FAILED', async () => {
    const bad: [unknown, RegExp][] = [
      [{ name: 'x', command: 'node' }, /must be a list/],
      [JSON.stringify('just text'), /must be a list/],
      [[{ name: 'x' }], /command/],
      [[{ name: 'bad name', command: 'node' }], /letters, numbers, hyphens, and underscores/],
      [[{ name: '', command: 'node' }], /cannot be empty/],
      [[{ name: 'x', command: 'node server.js' }], /single executable/],
      [[{ name: 'x', command: 'node', args: [1] }], /args/],
      [[{ name: 'x', command: 'node', env: { A: 1 } }], /env/],
      [[{ name: 'x', command: 'node', args: ['a\u0000b'] }], /NUL/],
      [Array.from({ length: 100 }, (_, i) => server(`s${i}`)), /at most|too big|32/i],
    ];
    for (const [body, message] of bad) {
      const r = await update(body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.json.code).toBe('VALIDATION_FAILED');
      expect(r.json.message).toMatch(message);
    }
    const notJson = await c.request('POST', '/update_mcp_server', '[{', {
      'content-type': 'application/json',
    });
    expect(notJson.status).toBe(400);
    // The server is unharmed.
    expect((await c.request('GET', '/alive')).json).toEqual({ status: 'ok' });
  });

  it('serves a registered stdio server: its tools listed, calls answered, run as the sandbox user', async () => {
    const r = await update([server('solo', { env: { MCP_TEST_VAR: 'hello' } })]);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ detail: 'MCP server updated successfully', router_error_log: '' });
    await withClient(async (client) => {
      const { tools } = await client.listTools();
      // One server: its tools keep their own names (FastMCP prefixes only when there are several).
      expect(tools.map((t) => t.name).sort()).toEqual(['add', 'fail', 'whoami']);
      expect(tools.find((t) => t.name === 'add')?.inputSchema).toMatchObject({ required: ['a', 'b'] });
      const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
      expect(textOf(sum)).toBe('42');
      const failed = await client.callTool({ name: 'fail', arguments: {} });
      expect(failed.isError).toBe(true);
      expect(textOf(failed)).toBe('it failed');
      const me = await whoami(client);
      expect(me.uid).toBe(sandboxUid);
      expect(me.label).toBe('solo');
      expect(me.env).toBe('hello');
      // Its environment is the configuration's and a few basics: never the session key.
      expect(me.key).toBeNull();
      expect(await alive(me.pid)).toBe(true);
      await expect(client.callTool({ name: 'nope', arguments: {} })).rejects.toThrow(/Unknown tool/);
    });
  });

  it('a call in a new session needs no listing first (the app lists and calls in separate sessions)', async () => {
    const first = await withClient((client) => whoami(client));
    const second = await withClient((client) => whoami(client));
    expect(second.pid).toBe(first.pid);
  });

  it('a new list ends the children it replaces, keeps unchanged ones, and prefixes names when several', async () => {
    const before = await withClient((client) => whoami(client));
    const r = await update([server('alpha'), server('beta')]);
    expect(r.status).toBe(200);
    expect(r.json.router_error_log).toBe('');
    expect(await eventually(async () => !(await alive(before.pid)))).toBe(true);
    const [alpha, beta] = await withClient(async (client) => {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        'alpha_add',
        'alpha_fail',
        'alpha_whoami',
        'beta_add',
        'beta_fail',
        'beta_whoami',
      ]);
      expect(textOf(await client.callTool({ name: 'beta_add', arguments: { a: 1, b: 1 } }))).toBe('2');
      return [await whoami(client, 'alpha_whoami'), await whoami(client, 'beta_whoami')];
    });
    expect(alpha.label).toBe('alpha');
    expect(beta.label).toBe('beta');
    expect(alpha.pid).not.toBe(beta.pid);

    // The app sends the union of old and new servers: unchanged ones keep running.
    const again = await update([server('alpha'), server('beta', { env: { MCP_TEST_VAR: 'changed' } })]);
    expect(again.status).toBe(200);
    const [alpha2, beta2] = await withClient(async (client) => [
      await whoami(client, 'alpha_whoami'),
      await whoami(client, 'beta_whoami'),
    ]);
    expect(alpha2.pid).toBe(alpha.pid);
    expect(beta2.pid).not.toBe(beta.pid);
    expect(beta2.env).toBe('changed');
    expect(await eventually(async () => !(await alive(beta.pid)))).toBe(true);
  });

  it('servers that cannot start are reported in router_error_log; the others are served', async () => {
    const r = await update([
      server('good'),
      { name: 'missing', command: 'no-such-mcp-server-binary', args: [] },
      { name: 'quitter', command: 'node', args: ['-e', 'console.error("bye"); process.exit(3)'] },
    ]);
    expect(r.status).toBe(200);
    expect(r.json.detail).toBe('MCP server updated successfully');
    const log: string = r.json.router_error_log;
    expect(log).toMatch(/^missing: command not found: no-such-mcp-server-binary/m);
    expect(log).toMatch(/^quitter: .*(exited|closed)/m);
    expect(log).toContain('bye');
    expect(log).not.toMatch(/^good/m);
    await withClient(async (client) => {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['good_add', 'good_fail', 'good_whoami']);
    });
  });

  it('a reset ends the children; they start again on next use', async () => {
    await update([server('solo')]);
    const before = await withClient((client) => whoami(client));
    const reset = await c.request('POST', '/berth/reset');
    expect(reset.status).toBe(200);
    expect(await eventually(async () => !(await alive(before.pid)))).toBe(true);
    const after = await withClient((client) => whoami(client));
    expect(after.pid).not.toBe(before.pid);
    expect(after.uid).toBe(sandboxUid);
  });

  it('an empty list ends every child and serves no tools', async () => {
    const before = await withClient((client) => whoami(client));
    const r = await update([]);
    expect(r.json).toEqual({ detail: 'MCP server updated successfully', router_error_log: '' });
    expect(await eventually(async () => !(await alive(before.pid)))).toBe(true);
    await withClient(async (client) => {
      expect((await client.listTools()).tools).toEqual([]);
    });
  });

  it('a message for an unknown session is a 404, one that is not JSON-RPC a 400', async () => {
    const unknown = await c.request('POST', '/mcp/messages?session_id=nope', {
      jsonrpc: '2.0',
      id: 1,
      method: 'ping',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.json.code).toBe('NOT_FOUND');
    const missing = await c.request('POST', '/mcp/messages', { jsonrpc: '2.0', id: 1, method: 'ping' });
    expect(missing.status).toBe(400);
  });
});
