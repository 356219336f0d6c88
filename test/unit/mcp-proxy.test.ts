/**
 * The MCP proxy's bounds, on the host: a stdio server that never answers `initialize` fails its start
 * within the start timeout and is killed with its process group; a child that grandchildren
 * outlive is ended with them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessTable } from '../../src/runtime-server/core/process/table.js';
import { parseServerList, shellSplit } from '../../src/runtime-server/mcp/config.js';
import { McpProxy } from '../../src/runtime-server/mcp/proxy.js';
import { eventually } from '../support/eventually.js';

const cwd = mkdtempSync(join(tmpdir(), 'berth-mcp-unit-'));
const proxies: McpProxy[] = [];
afterAll(async () => {
  await Promise.all(proxies.map((p) => p.dispose()));
  rmSync(cwd, { recursive: true, force: true });
});

function proxy(startTimeoutMs: number): McpProxy {
  const p = new McpProxy({
    processes: new ProcessTable(),
    cwd,
    logger: pino({ level: 'silent' }),
    startTimeoutMs,
  });
  proxies.push(p);
  return p;
}

/** Running, not a zombie (an orphan is reaped by whatever is PID 1 here, perhaps never). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

describe('McpProxy bounds', () => {
  it('a server that never answers initialize fails within the start timeout, and its group is killed', async () => {
    const p = proxy(800);
    // The grandchild writes its pid and sleeps: it must go too.
    const script = `const {spawn}=require('child_process');const g=spawn('sleep',['300'],{stdio:'ignore'});console.error('grandchild '+g.pid);setInterval(()=>{},1000)`;
    const result = await p.update(
      parseServerList([{ name: 'mute', command: process.execPath, args: ['-e', script] }]),
    );
    expect(result.router_error_log).toMatch(/^mute: did not answer initialize within 0.8 s/);
    const grandchild = Number(/grandchild (\d+)/.exec(result.router_error_log)?.[1]);
    expect(grandchild).toBeGreaterThan(0);
    expect(await eventually(() => !alive(grandchild))).toBe(true);
    expect(p.status()).toEqual([expect.objectContaining({ name: 'mute', state: 'failed' })]);
    // A failed server stays failed (no restart on each listing) until the next list.
    expect(await p.listTools()).toEqual([]);
  });

  it('duplicate names: the last entry wins, as in the reference', () => {
    const list = parseServerList([
      { name: 'a', command: 'one' },
      { name: 'a', command: 'two', args: null, env: null },
    ]);
    expect(list).toEqual([{ name: 'a', command: 'two', args: [], env: {} }]);
  });

  it('args and env also come as strings, as the reference validators take them', () => {
    expect(shellSplit(`--config "path with spaces" --debug 'a b' x\\ y "q\\"z" ''`)).toEqual([
      '--config',
      'path with spaces',
      '--debug',
      'a b',
      'x y',
      'q"z',
      '',
    ]);
    expect(
      parseServerList([{ name: 'a', command: 'npx', args: '-y mcp-remote https://x', env: 'A=1, B=b=2' }]),
    ).toEqual([
      { name: 'a', command: 'npx', args: ['-y', 'mcp-remote', 'https://x'], env: { A: '1', B: 'b=2' } },
    ]);
    expect(() => parseServerList([{ name: 'a', command: 'npx', args: '"open' }])).toThrow(
      /args: .*No closing quotation/,
    );
    expect(() => parseServerList([{ name: 'a', command: 'npx', env: 'NOEQ' }])).toThrow(/KEY=VALUE/);
  });
});
