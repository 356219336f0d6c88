/**
 * Contract: /berth/exec, one fresh process per WebSocket, like `docker exec`: argv exactly, stdout and
 * stderr apart and whole, exit codes, stdin, signals, timeouts, a PTY, and nothing shared with the
 * agent's shell.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ExecServerMessage } from '../../src/protocol/api.js';
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

interface Outcome {
  stdout: Buffer;
  stderr: Buffer;
  pty: string;
  exit?: Extract<ExecServerMessage, { type: 'exit' }>;
  started?: { id: string; pid: number };
  errors: { code: string; message: string }[];
}

/** Opens an exec socket, sends `frames` (the first is the start), and collects until the socket closes. */
function exec(
  start: Record<string, unknown>,
  during: (ws: WebSocket, o: Outcome) => void | Promise<void> = () => undefined,
): Promise<Outcome> {
  const ws = new WebSocket(`${target.url.replace(/^http/, 'ws')}/berth/exec`, {
    headers: { 'X-Session-API-Key': target.key },
  });
  const o: Outcome = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), pty: '', errors: [] };
  return new Promise((resolve, reject) => {
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'start', ...start }));
      Promise.resolve(during(ws, o)).catch(reject);
    });
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as ExecServerMessage;
      if (m.type === 'stdout' || m.type === 'stderr')
        o[m.type] = Buffer.concat([o[m.type], Buffer.from(m.data, 'base64')]);
      else if (m.type === 'pty') o.pty += Buffer.from(m.data, 'base64').toString('utf8');
      else if (m.type === 'exit') o.exit = m;
      else if (m.type === 'started') o.started = { id: m.id, pid: m.pid };
      else if (m.type === 'error') o.errors.push(m);
    });
    ws.on('close', () => resolve(o));
    ws.on('error', reject);
  });
}

/** Whether, within a few seconds, no process in the sandbox has `marker` in its command line. */
async function noneLeft(marker: string): Promise<boolean> {
  // [b]erth: the pattern does not match the command line of the sh that runs pgrep.
  const pattern = `[${marker[0]}]${marker.slice(1)}`;
  for (let i = 0; i < 100; i++) {
    const out = (await exec({ argv: ['sh', '-c', `pgrep -f "${pattern}" || echo none`] })).stdout.toString();
    if (out === 'none\n') return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

const send = (ws: WebSocket, m: Record<string, unknown>) => ws.send(JSON.stringify(m));
const waitFor = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(cond()).toBe(true);
};

describe('/berth/exec', () => {
  it('keeps argv exactly, stdout and stderr apart, and gives the exit code', async () => {
    const o = await exec({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
    expect(o.started?.pid).toBeGreaterThan(0);
    expect(o.stdout.toString()).toBe('out\n');
    expect(o.stderr.toString()).toBe('err\n');
    expect(o.exit).toEqual({ type: 'exit', exit_code: 3, signal: null, timed_out: false });
    const words = await exec({ argv: ['printf', '%s|', 'a b', "'q'", '$HOME', '*', ''] });
    expect(words.stdout.toString()).toBe("a b|'q'|$HOME|*||");
  });

  it('gives the whole output, however long', async () => {
    const o = await exec({ argv: ['seq', '1', '30000'] });
    const expected = `${Array.from({ length: 30000 }, (_, i) => i + 1).join('\n')}\n`;
    expect(o.stdout.toString()).toBe(expected);
    expect(o.exit?.exit_code).toBe(0);
  });

  it("shares no cwd and no variables with the agent's shell, either way", async () => {
    await c.run('cd /tmp && export BERTH_LEAK=from-shell');
    const o = await exec({ argv: ['sh', '-c', 'pwd; echo "[$BERTH_LEAK]"; cd /; export BERTH_BACK=1'] });
    expect(o.stdout.toString()).toBe(`${target.workspace}\n[]\n`);
    expect((await c.run('pwd; echo "[$BERTH_BACK]"')).content).toBe('/tmp\n[]');
    await c.run(`cd ${target.workspace}`);
    const own = await exec({ argv: ['sh', '-c', 'pwd; echo "$A"'], cwd: '/tmp', env: { A: 'set' } });
    expect(own.stdout.toString()).toBe('/tmp\nset\n');
  });

  it('passes stdin byte for byte, and EOF on close_stdin', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 0x41]);
    const o = await exec({ argv: ['cat'], stdin: true }, (ws) => {
      send(ws, { type: 'input', data: bytes.toString('base64') });
      send(ws, { type: 'close_stdin' });
    });
    expect(o.stdout.equals(bytes)).toBe(true);
    expect(o.exit?.exit_code).toBe(0);
    // Without stdin: true, stdin is /dev/null.
    expect((await exec({ argv: ['cat'] })).exit?.exit_code).toBe(0);
  });

  it('kill with SIGINT ends the process group; a timeout ends it and says so', async () => {
    const marker = `berth-exec-${Date.now()}`;
    const o = await exec(
      { argv: ['sh', '-c', `sleep 60 & echo started; exec sleep 61 # ${marker}`] },
      async (ws, out) => {
        await waitFor(() => out.stdout.toString().includes('started'));
        send(ws, { type: 'kill', signal: 'SIGINT' });
      },
    );
    expect(o.exit).toMatchObject({ exit_code: 130, signal: 'SIGINT', timed_out: false });
    const timed = await exec({ argv: ['sleep', '30'], timeout_ms: 300 });
    expect(timed.exit).toMatchObject({ signal: 'SIGTERM', timed_out: true });
    expect(await noneLeft(marker)).toBe(true);
  });

  it('closing the socket before the exit ends the process', async () => {
    const marker = `berth-gone-${Date.now()}`;
    await exec({ argv: ['sh', '-c', `echo up; exec sleep 62 # ${marker}`] }, async (ws, out) => {
      await waitFor(() => out.stdout.toString().includes('up'));
      ws.close();
    });
    expect(await noneLeft(marker)).toBe(true);
  });

  it('survives input to a program that closed its stdin, and ends children left holding the output', async () => {
    const closed = await exec(
      { argv: ['sh', '-c', 'exec 0<&-; sleep 0.5; echo still-here'], stdin: true },
      async (ws) => {
        for (let i = 0; i < 20; i++) {
          send(ws, { type: 'input', data: Buffer.alloc(64 * 1024, 120).toString('base64') });
          await new Promise((r) => setTimeout(r, 20));
        }
      },
    );
    expect(closed.stdout.toString()).toBe('still-here\n');
    expect(closed.exit?.exit_code).toBe(0);
    expect((await exec({ argv: ['echo', 'server-alive'] })).stdout.toString()).toBe('server-alive\n');

    // The leader exits at once; its background child keeps the pipes (so no exit frame yet). Closing
    // the socket must still end the child.
    const marker = `berth-linger-${Date.now()}`;
    await exec({ argv: ['sh', '-c', `sh -c 'sleep 63 # ${marker}' & echo forked`] }, async (ws, out) => {
      await waitFor(() => out.stdout.toString().includes('forked'));
      ws.close();
    });
    expect(await noneLeft(marker)).toBe(true);
  });

  it('a missing working directory is said as such, and a too-long timeout is refused', async () => {
    const o = await exec({ argv: ['true'], cwd: '/no/such/dir' });
    expect(o.errors[0]?.message).toContain('the working directory /no/such/dir does not exist');
    expect(o.started).toBeUndefined();
    const long = await exec({ argv: ['true'], timeout_ms: 2 ** 31 });
    expect(long.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('runs on a PTY of the size asked for, with resize', async () => {
    const o = await exec(
      { argv: ['sh', '-c', 'stty size; read x; stty size; tty'], pty: { cols: 100, rows: 40 } },
      async (ws, out) => {
        await waitFor(() => out.pty.includes('40 100'));
        send(ws, { type: 'resize', cols: 90, rows: 20 });
        send(ws, { type: 'input', data: Buffer.from('go\r').toString('base64') });
      },
    );
    expect(o.pty).toMatch(/40 100[\s\S]*20 90[\s\S]*\/dev\/pts\/\d+/);
    expect(o.exit?.exit_code).toBe(0);
  });

  it('a program that does not exist exits 127 with the reason; bad frames get VALIDATION_FAILED', async () => {
    const o = await exec({ argv: ['/no/such/program'] });
    expect(o.exit?.exit_code).toBe(127);
    expect(o.stderr.toString()).toMatch(/ENOENT/);
    expect(o.started).toBeUndefined();
    const bad = await exec({ argv: [] });
    expect(bad.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(bad.exit).toBeUndefined();
    const hostile = await exec({ argv: ['true'], env: { 'A=B': 'x' } });
    expect(hostile.errors[0]).toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
