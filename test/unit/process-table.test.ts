/**
 * The runtime server's process table, with real processes on this machine: many at once with their own
 * streams, the one kill path (group, grace, SIGKILL), exit statuses, tags, environment.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxEnvironment } from '../../src/runtime-server/core/process/environment.js';
import {
  COMMAND_OUTPUT,
  OutputBuffer,
  TERMINAL_SCROLLBACK,
} from '../../src/runtime-server/core/process/output-buffer.js';
import {
  KILL_GRACE_MS,
  type ManagedProcess,
  ProcessTable,
} from '../../src/runtime-server/core/process/table.js';
import { eventually } from '../support/eventually.js';

const cwd = mkdtempSync(join(tmpdir(), 'berth-proc-'));
const table = new ProcessTable();
afterAll(async () => {
  await table.dispose();
  rmSync(cwd, { recursive: true, force: true });
});

function bash(script: string, extra: Partial<Parameters<ProcessTable['spawn']>[0]> = {}): ManagedProcess {
  return table.spawn({
    kind: 'exec',
    command: '/bin/bash',
    args: ['-c', script],
    cwd,
    io: { type: 'pipes', stdin: false },
    output: COMMAND_OUTPUT,
    ...extra,
  });
}

function collect(p: ManagedProcess): Record<string, string> {
  const out: Record<string, string> = { stdout: '', stderr: '', pty: '' };
  p.on('data', (stream, chunk) => {
    out[stream] += chunk;
  });
  return out;
}

function running(pid: number): boolean {
  try {
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return state !== undefined && state !== 'Z';
  } catch {
    return false;
  }
}

describe('ProcessTable', () => {
  it('runs many processes at once, each with its own stdout and stderr, listed while they run', async () => {
    const procs = Array.from({ length: 8 }, (_, i) => bash(`echo out-${i}; echo err-${i} >&2; sleep 0.5`));
    const outs = procs.map(collect);
    expect(new Set(procs.map((p) => p.id)).size).toBe(8);
    // All eight at once: each sleeps after its output, so none has ended yet.
    expect(table.list('exec').map((p) => p.id)).toEqual(expect.arrayContaining(procs.map((p) => p.id)));
    expect(procs.every((p) => p.alive)).toBe(true);
    const statuses = await Promise.all(procs.map((p) => p.exited));
    for (const [i, s] of statuses.entries()) {
      expect(s).toEqual({ exitCode: 0, signal: null });
      expect(outs[i]).toMatchObject({ stdout: `out-${i}\n`, stderr: `err-${i}\n` });
    }
    // Gone from the table once exited; their status stays on the entry.
    expect(table.list('exec').filter((p) => procs.includes(p))).toEqual([]);
    expect(procs[0]!.exitStatus?.exitCode).toBe(0);
  });

  it('records id, pid, process group, user, cwd and env of each entry', async () => {
    const p = bash('echo "$BERTH_T"; ps -o pgid= $$; pwd', { env: { BERTH_T: 'seen' }, tag: 'info' });
    expect(table.byTag('info')).toBe(p);
    expect(table.byPid(p.pid)).toBe(p);
    const status = await p.exited;
    expect(status.exitCode).toBe(0);
    const [env, pgid, dir] = p
      .output!.take()
      .head.trim()
      .split('\n')
      .map((l) => l.trim());
    expect(env).toBe('seen');
    expect(Number(pgid)).toBe(p.pgid);
    expect(p.pgid).toBe(p.pid);
    expect(dir).toBe(cwd);
    expect(p.env.BERTH_T).toBe('seen');
    expect(p.uid).toBe(process.getuid!());
    expect(p.user).toBe(execFileSync('id', ['-un'], { encoding: 'utf8' }).trim());
  });

  it('refuses a second running process with the same tag', async () => {
    const p = bash('sleep 5', { tag: 'twice' });
    expect(() => bash('true', { tag: 'twice' })).toThrow(/already has the tag "twice"/);
    await p.terminate();
  });

  it('reports a signal as 128 + its number, and a failed start as an error', async () => {
    const p = bash('kill -USR1 $$');
    expect(await p.exited).toEqual({ exitCode: 128 + 10, signal: 'SIGUSR1' });
    const missing = table.spawn({
      kind: 'exec',
      command: join(cwd, 'no-such-program'),
      args: [],
      cwd,
      io: { type: 'pipes', stdin: false },
    });
    await expect(missing.started()).rejects.toThrow(/ENOENT/);
    expect((await missing.exited).error).toMatch(/ENOENT/);
    expect(table.get(missing.id)).toBeUndefined();
  });

  it('terminate signals the whole group, and SIGKILLs what ignores the polite signal after the grace', async () => {
    // The leader ignores SIGTERM, and so does a child in its group.
    const p = bash(`trap '' TERM; sh -c "trap '' TERM; sleep 60" & echo $!; sleep 60`);
    const out = collect(p);
    expect(await eventually(() => /^\d+\n/.test(out.stdout ?? ''))).toBe(true);
    const child = Number(out.stdout?.trim());
    expect(running(child)).toBe(true);
    const sent = Date.now();
    const status = await p.terminate('SIGTERM');
    expect(status.signal).toBe('SIGKILL');
    expect(Date.now() - sent).toBeGreaterThanOrEqual(KILL_GRACE_MS - 50);
    expect(await eventually(() => !running(child))).toBe(true);
  });

  it('terminate also ends group members that outlive a leader who obeyed', async () => {
    const p = bash(`sh -c "trap '' TERM HUP; sleep 60" & echo $!; sleep 60`, { output: undefined });
    let first = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      first += d;
    });
    expect(await eventually(() => /^\d+\n/.test(first))).toBe(true);
    const child = Number(first.trim());
    expect((await p.terminate('SIGTERM')).signal).toBe('SIGTERM');
    expect(await eventually(() => !running(child))).toBe(true);
  });

  it('gives a PTY process input, resize and its output, and pipes processes stdin and EOF', async () => {
    const t = table.spawn({
      kind: 'terminal',
      command: '/bin/bash',
      args: ['--norc', '-i'],
      cwd,
      io: { type: 'pty', cols: 80, rows: 24, term: 'xterm' },
      output: TERMINAL_SCROLLBACK,
    });
    const out = collect(t);
    t.resize(123, 45);
    t.write('stty size; exit 7\r');
    expect((await t.exited).exitCode).toBe(7);
    expect(out.pty).toContain('45 123');
    expect(t.output!.replay()).toBe(out.pty);

    const cat = table.spawn({
      kind: 'exec',
      command: '/bin/cat',
      args: [],
      cwd,
      io: { type: 'pipes', stdin: true },
      output: COMMAND_OUTPUT,
    });
    const catOut = collect(cat);
    cat.write('hello ');
    cat.write(Buffer.from('bytes\n'));
    cat.closeStdin();
    expect((await cat.exited).exitCode).toBe(0);
    expect(catOut.stdout).toBe('hello bytes\n');
  });

  it('disposes of every process it holds', async () => {
    const own = new ProcessTable();
    const a = own.spawn({
      kind: 'exec',
      command: 'sleep',
      args: ['60'],
      cwd,
      io: { type: 'pipes', stdin: false },
    });
    const b = own.spawn({
      kind: 'terminal',
      command: '/bin/bash',
      args: ['--norc'],
      cwd,
      io: { type: 'pty', cols: 80, rows: 24, term: 'xterm' },
    });
    await own.dispose();
    expect(a.alive || b.alive).toBe(false);
    expect(own.list()).toEqual([]);
  });
});

describe('SandboxEnvironment', () => {
  it('gives every later process the set variables, records them in .bashrc and its file, and reads them back', async () => {
    const home = mkdtempSync(join(tmpdir(), 'berth-home-'));
    try {
      const env = new SandboxEnvironment({ home, base: { PATH: process.env.PATH, KEEP: 'base' } });
      env.set({ GREETING: "it's", OTHER: 'x' });
      env.set({ GREETING: 'second' });
      expect(env.forProcess({ OTHER: null, EXTRA: 'y' })).toEqual({
        PATH: process.env.PATH,
        KEEP: 'base',
        GREETING: 'second',
        EXTRA: 'y',
      });
      expect(env.forProcess({}, ['KEEP', 'MISSING'])).toEqual({ KEEP: 'base' });
      const rc = readFileSync(join(home, '.bashrc'), 'utf8');
      expect(rc).toBe(`export OTHER=$'x'\nexport GREETING=$'second'\n`);
      const sourced = execFileSync(
        '/bin/bash',
        ['-c', `. ${join(home, '.bashrc')}; echo "$GREETING $OTHER"`],
        {
          encoding: 'utf8',
        },
      );
      expect(sourced).toBe('second x\n');
      expect(new SandboxEnvironment({ home, base: {} }).variables).toEqual({
        GREETING: 'second',
        OTHER: 'x',
      });
      // A value with newlines and quotes stays on one .bashrc line, and replacing it leaves nothing behind.
      const tricky = "two\nlines 'q' \\ $x\t!";
      env.set({ MULTI: tricky });
      env.set({ MULTI: 'plain' });
      env.set({ MULTI: tricky });
      const lines = readFileSync(join(home, '.bashrc'), 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      const back = execFileSync('/bin/bash', ['-c', `. ${join(home, '.bashrc')}; printf %s "$MULTI"`], {
        encoding: 'utf8',
      });
      expect(back).toBe(tricky);
      const table = new ProcessTable(env);
      const p = table.spawn({
        kind: 'exec',
        command: '/bin/bash',
        args: ['-c', 'echo "$GREETING"'],
        cwd: home,
        io: { type: 'pipes', stdin: false },
        output: COMMAND_OUTPUT,
      });
      await p.exited;
      expect(p.output!.take().head).toBe('second\n');
      const quoted = execFileSync(
        '/bin/bash',
        ['-c', `${SandboxEnvironment.exportCommand({ Q: "a'b $c" })}; echo "$Q"`],
        {
          encoding: 'utf8',
        },
      );
      expect(quoted).toBe("a'b $c\n");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('OutputBuffer', () => {
  it('keeps head and tail, counts what it dropped, and replays the contiguous end', () => {
    const b = new OutputBuffer({ headChars: 4, tailChars: 6 });
    b.append('abcd');
    b.append('ef');
    expect(b.peek()).toEqual({ head: 'abcd', tail: 'ef', dropped: 0 });
    expect(b.replay()).toBe('abcdef');
    for (const c of 'ghijklmnopqrstuvwxyz') b.append(c);
    expect(b.peek()).toEqual({ head: 'abcd', tail: 'uvwxyz', dropped: 16 });
    expect(b.replay()).toBe('uvwxyz');
    expect(b.take().dropped).toBe(16);
    expect(b.isEmpty).toBe(true);
    expect(b.peek()).toEqual({ head: '', tail: '', dropped: 0 });
  });

  it('as scrollback (no head) keeps only the last window, and memory stays bounded under a flood', () => {
    const b = new OutputBuffer(TERMINAL_SCROLLBACK);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 4096; i++) b.append(line); // 4 MiB
    const { head, tail, dropped } = b.peek();
    expect(head).toBe('');
    expect(tail.length).toBe(TERMINAL_SCROLLBACK.tailChars);
    expect(dropped).toBe(4096 * 1024 - TERMINAL_SCROLLBACK.tailChars);
  });
});
