/**
 * Differential: MCP through OpenHands' own MCP client (openhands.mcp.client.MCPClient, the one the
 * app uses for `{runtime_url}/mcp/sse`), against the reference server and against Berth's, with the
 * same stdio servers pushed by POST /update_mcp_server. Tool names (prefixed or not), call results
 * and the update's reply must agree.
 *
 * Opt-in like the rest of test/oracle:
 *   scripts/oracle/setup.sh && BERTH_ORACLE=1 npx vitest run test/oracle/mcp.test.ts
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RuntimeTarget, startHostTarget } from '../contract/harness.js';
import { ORACLE_VENV, oracleUnavailableReason, startOracleTarget } from './oracle.js';

const UNAVAILABLE = oracleUnavailableReason();
if (UNAVAILABLE) console.log(`test/oracle skipped (oracle mcp): ${UNAVAILABLE}`);
const run = promisify(execFile);

/** A stdio MCP server with two tools, `add` and `echo`. */
const SERVER = String.raw`
let buf = '';
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    if (m.method === 'initialize') send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 't', version: '1' } } });
    else if (m.method === 'tools/list') send({ jsonrpc: '2.0', id: m.id, result: { tools: [
      { name: 'add', description: 'a + b', inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] } },
      { name: 'echo', description: 'echo', inputSchema: { type: 'object', properties: { text: { type: 'string' } } } } ] } });
    else if (m.method === 'tools/call') send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: m.params.name === 'add' ? String(m.params.arguments.a + m.params.arguments.b) : (process.argv[2] + ':' + m.params.arguments.text) }] } });
    else if (m.id !== undefined) send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no ' + m.method } });
  }
});
process.stdin.on('end', () => process.exit(0));
`;

/** Lists the tools and calls each given one, as the app does (a session per operation). */
const CLIENT = `
import asyncio, json, sys
from openhands.core.config.mcp_config import MCPSSEServerConfig
from openhands.mcp.client import MCPClient

async def main(url, key, calls):
    c = MCPClient()
    await c.connect_http(MCPSSEServerConfig(url=url + '/mcp/sse', api_key=key), conversation_id='c1')
    out = {'tools': sorted(t.name for t in c.tools), 'calls': []}
    for name, args in calls:
        r = await c.call_tool(name, args)
        out['calls'].append({'isError': r.isError, 'text': [p.text for p in r.content]})
    print('RESULT ' + json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
`;

let scratch: string;
let berth: RuntimeTarget;
let reference: RuntimeTarget;

async function update(target: RuntimeTarget, body: unknown) {
  const r = await fetch(`${target.url}/update_mcp_server`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'X-Session-API-Key': target.key },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

async function viaOpenHandsClient(target: RuntimeTarget, calls: [string, Record<string, unknown>][]) {
  const { stdout } = await run(
    join(ORACLE_VENV, 'bin/python'),
    [join(scratch, 'client.py'), target.url, target.key, JSON.stringify(calls)],
    { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`no result from the OpenHands client: ${stdout.slice(-2000)}`);
  return JSON.parse(line.slice('RESULT '.length)) as unknown;
}

function servers(...names: string[]) {
  return names.map((name) => ({
    name,
    command: process.execPath,
    args: [join(scratch, 'server.cjs'), name],
    env: {},
  }));
}

describe('MCP through OpenHands’ client: Berth against the reference', () => {
  if (UNAVAILABLE) {
    it.skip(`SKIPPED: ${UNAVAILABLE}`, () => {});
    return;
  }

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-oracle-mcp-'));
    writeFileSync(join(scratch, 'server.cjs'), SERVER);
    writeFileSync(join(scratch, 'client.py'), CLIENT);
    [berth, reference] = await Promise.all([startHostTarget(), startOracleTarget({ plugins: [] })]);
  });
  afterAll(async () => {
    await Promise.allSettled([berth?.close(), reference?.close()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('two servers: the same reply, tools named <server>_<tool>, the same results', async () => {
    const list = servers('alpha', 'beta');
    const [b, r] = await Promise.all([update(berth, list), update(reference, list)]);
    expect(b).toEqual(r);
    expect(b).toEqual({
      status: 200,
      json: { detail: 'MCP server updated successfully', router_error_log: '' },
    });
    const calls: [string, Record<string, unknown>][] = [
      ['alpha_add', { a: 1, b: 1 }],
      ['beta_echo', { text: 'x' }],
    ];
    const [bOut, rOut] = await Promise.all([
      viaOpenHandsClient(berth, calls),
      viaOpenHandsClient(reference, calls),
    ]);
    expect(bOut).toEqual(rOut);
    expect(bOut).toMatchObject({
      tools: ['alpha_add', 'alpha_echo', 'beta_add', 'beta_echo'],
      calls: [{ text: ['2'] }, { text: ['beta:x'] }],
    });
  });

  it('a later list: Berth serves it (one server, names unprefixed); the reference keeps serving the first', async () => {
    const list = servers('solo');
    const [b, r] = await Promise.all([update(berth, list), update(reference, list)]);
    expect(b).toEqual(r);
    const calls: [string, Record<string, unknown>][] = [
      ['add', { a: 2, b: 3 }],
      ['echo', { text: 'hi' }],
    ];
    const bOut = await viaOpenHandsClient(berth, calls);
    expect(bOut).toEqual({
      tools: ['add', 'echo'],
      calls: [
        { isError: false, text: ['5'] },
        { isError: false, text: ['solo:hi'] },
      ],
    });
    // The reference's bug: every update mounts a new proxy at /mcp after the first one, which keeps
    // answering (MCPProxyManager.mount_to_app's `'/mcp' in app.routes` never matches a route), so the
    // app's /mcp/sse still lists the first list's tools.
    const rOut = await viaOpenHandsClient(reference, []);
    expect(rOut).toMatchObject({ tools: ['alpha_add', 'alpha_echo', 'beta_add', 'beta_echo'] });
  });

  it('GET /vscode/connection_token without the vscode plugin: {"token": null} on both', async () => {
    const get = async (t: RuntimeTarget) =>
      (await fetch(`${t.url}/vscode/connection_token`, { headers: { 'X-Session-API-Key': t.key } })).json();
    expect(await get(berth)).toEqual(await get(reference));
    expect(await get(berth)).toEqual({ token: null });
  });
});
