/** The `berth` CLI against a real control plane: create --json, ls, exec exit codes, pause, rm. */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildControlPlane, startChild } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const unavailable = await engineAvailable();

describe.skipIf(unavailable !== undefined)('berth CLI', () => {
  let cp: ChildControlPlane;
  // tsx by its path: the working directory may be outside this checkout.
  const tsx = pathToFileURL(resolve(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  /** The CLI as a child process of its own (for stdin, signals and commands that keep running). */
  const cli = (args: string[]) =>
    spawn(process.execPath, ['--import', tsx, resolve(ROOT, 'src/cli/main.ts'), ...args], {
      env: { ...process.env, BERTH_URL: cp.url, BERTH_API_KEY: cp.apiKey },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  const berth = (...args: string[]) => berthIn(ROOT, ...args);
  const berthIn = async (cwd: string, ...args: string[]) => {
    try {
      const r = await run(process.execPath, ['--import', tsx, resolve(ROOT, 'src/cli/main.ts'), ...args], {
        cwd,
        env: { ...process.env, BERTH_URL: cp.url, BERTH_API_KEY: cp.apiKey },
        timeout: 120_000,
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  const tmp = mkdtempSync(join(tmpdir(), 'berth-cli-'));
  beforeAll(async () => {
    cp = await startChild({ env: { BERTH_ALLOWED_MOUNT_ROOTS: tmp } });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('create --json gives id, url and session_api_key; exec prints output and exits with the exit code', async () => {
    const created = await berth('sandbox', 'create', '--json', '--label', 'cli=yes', '-e', 'WHO=cli');
    expect(created.code).toBe(0);
    const s = JSON.parse(created.stdout);
    expect(s.id).toMatch(/^[0-9a-f]{12}$/);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(typeof s.session_api_key).toBe('string');

    const hello = await berth('exec', s.id, '--', 'sh', '-c', 'echo hello $WHO');
    expect(hello.code).toBe(0);
    expect(hello.stdout).toBe('hello cli\n');
    const failing = await berth('exec', s.id, '--', 'sh', '-c', 'echo oops >&2; exit 3');
    expect(failing.code).toBe(3);
    expect(failing.stderr).toBe('oops\n');
    expect(failing.stdout).toBe('');

    const ls = await berth('sandbox', 'ls', '--json', '--label', 'cli=yes');
    expect(JSON.parse(ls.stdout).map((x: { id: string }) => x.id)).toEqual([s.id]);
    const table = await berth('sandbox', 'ls');
    expect(table.stdout).toMatch(/^ID\s+STATE\s+IMAGE/);
    expect(table.stdout).toContain(s.id);

    expect((await berth('sandbox', 'pause', s.id)).stdout).toBe(`${s.id} paused\n`);
    expect((await berth('sandbox', 'resume', s.id)).stdout).toBe(`${s.id} running\n`);
    expect((await berth('sandbox', 'rm', s.id)).stdout).toBe(`${s.id} deleted\n`);
  });

  it('--workspace is a directory relative to the current one, which must exist unless --mkdir; --user picks the agent', async () => {
    const missing = await berthIn(tmp, 'sandbox', 'create', '--workspace', 'not-there');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `no such directory (${join(tmp, 'not-there')}); create it, or add --mkdir`,
    );
    expect(existsSync(join(tmp, 'not-there'))).toBe(false);
    const made = await berthIn(
      tmp,
      'sandbox',
      'create',
      '--json',
      '--workspace',
      'ws',
      '--mkdir',
      '--user',
      'agent:1000',
    );
    expect(made.code, made.stderr).toBe(0);
    const s = JSON.parse(made.stdout);
    expect(s.workspace).toBe(join(tmp, 'ws'));
    const who = await berth('exec', s.id, '--', 'sh', '-c', 'whoami; pwd');
    expect(who.stdout).toBe('agent\n/workspace\n');
    await berth('sandbox', 'rm', s.id);
    writeFileSync(join(tmp, 'a-file'), '');
    const notDir = await berthIn(tmp, 'sandbox', 'create', '--workspace', 'a-file');
    expect(notDir.code).toBe(1);
    expect(notDir.stderr).toContain('is not a directory');
  });

  it('exec is docker exec: argv as given, streams apart, whole output, flags, Ctrl-C 130, --timeout 124', async () => {
    const s = JSON.parse((await berth('sandbox', 'create', '--json')).stdout) as { id: string };
    // Words are not joined into a shell line: quotes, $ and * reach the program as they are.
    const words = await berth('exec', s.id, 'printf', '%s|', 'a b', "'q'", '$HOME', '*');
    expect(words.stdout).toBe("a b|'q'|$HOME|*|");
    // Options after the command are the command's (ls -la, not berth's -l).
    expect((await berth('exec', s.id, 'sh', '-c', 'echo "$0 $1"', '-x', '--json')).stdout).toBe(
      '-x --json\n',
    );
    const long = await berth('exec', s.id, 'seq', '1', '30000');
    expect(long.stdout).toBe(`${Array.from({ length: 30000 }, (_, i) => i + 1).join('\n')}\n`);
    const flags = await berth(
      'exec',
      '-w',
      '/tmp',
      '-e',
      'A=1',
      '-e',
      'B=two words',
      s.id,
      'sh',
      '-c',
      'pwd; echo "$A $B"',
    );
    expect(flags.stdout).toBe('/tmp\n1 two words\n');
    // -t: a PTY in the sandbox (its output one stream), without a terminal here.
    const tty = await berth('exec', '-t', s.id, 'sh', '-c', 'tty; echo err >&2');
    expect(tty.stdout).toMatch(/^\/dev\/pts\/\d+\r?\nerr\r?\n$/);
    const root = await berth('exec', '-u', 'root', s.id, 'id', '-u');
    expect(root.stdout, root.stderr).toBe('0\n');
    // A directory only root may enter (the server's own user may not): entered as root.
    const rootHome = await berth('exec', '-u', 'root', '-w', '/root', s.id, 'pwd');
    expect(rootHome.stdout, rootHome.stderr).toBe('/root\n');
    // Through sudo the group is root's: a timeout still ends it (signals go through sudo too).
    const rootMarker = `berth-root-${Date.now()}`;
    const rootTimed = await berth(
      'exec',
      '-u',
      'root',
      '--timeout',
      '1',
      s.id,
      'sh',
      '-c',
      `sleep 64 # ${rootMarker}`,
    );
    expect(rootTimed.code).toBe(124);
    const rootLeft = await berth(
      'exec',
      s.id,
      'sh',
      '-c',
      `pgrep -f "[${rootMarker[0]}]${rootMarker.slice(1)}" || echo none`,
    );
    expect(rootLeft.stdout).toBe('none\n');
    const secret = await berth(
      'exec',
      '-u',
      'root',
      '-e',
      'TOKEN=s3cret',
      s.id,
      'sh',
      '-c',
      'echo "$TOKEN"; ps -eo args',
    );
    expect(secret.stdout.split('\n')[0]).toBe('s3cret');
    expect(secret.stdout.split('\n').slice(1).join('\n')).not.toContain('s3cret');
    // The agent's shell does not see an exec's cd or export, nor an exec the shell's.
    await berth('exec', s.id, 'sh', '-c', 'cd /; export LEAK=1');
    expect((await berth('exec', s.id, 'sh', '-c', 'pwd; echo "[$LEAK]"')).stdout).toBe('/workspace\n[]\n');
    const json = await berth('exec', '--json', s.id, 'sh', '-c', 'echo o; echo e >&2; exit 4');
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout)).toEqual({
      exit_code: 4,
      signal: null,
      timed_out: false,
      stdout: 'o\n',
      stderr: 'e\n',
    });

    const timed = await berth('exec', '--timeout', '1', s.id, 'sleep', '30');
    expect(timed.code).toBe(124);
    expect(timed.stderr).toContain('did not finish in 1 s');

    // -i: this process's stdin reaches the command, and its end is EOF there.
    const cat = cli(['exec', '-i', s.id, 'wc', '-c']);
    cat.stdin.end('twelve bytes');
    let catOut = '';
    cat.stdout.on('data', (d) => {
      catOut += d;
    });
    expect(await new Promise((r) => cat.once('close', r))).toBe(0);
    expect(catOut.trim()).toBe('12');

    // Ctrl-C: the remote process group gets SIGINT, the CLI exits 130, and nothing is left running.
    const marker = `berth-cli-${Date.now()}`;
    const sleeper = cli(['exec', s.id, 'sh', '-c', `echo started; sleep 60 # ${marker}`]);
    let started = '';
    sleeper.stdout.on('data', (d) => {
      started += d;
    });
    for (let i = 0; i < 200 && !started.includes('started'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(started).toContain('started');
    sleeper.kill('SIGINT');
    expect(await new Promise((r) => sleeper.once('close', r))).toBe(130);
    const left = await berth(
      'exec',
      s.id,
      'sh',
      '-c',
      `pgrep -f "[${marker[0]}]${marker.slice(1)}" || echo none`,
    );
    expect(left.stdout).toBe('none\n');

    expect((await berth('--version')).stdout).toBe(
      `${JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')).version}\n`,
    );
    await berth('sandbox', 'rm', s.id);
  }, 180_000);

  it('sandbox get, logs (-n, -f) and events (--json, -f) show what the sandbox did', async () => {
    const s = JSON.parse((await berth('sandbox', 'create', '--json')).stdout) as { id: string };
    const got = await berth('sandbox', 'get', s.id, '--json');
    expect(JSON.parse(got.stdout)).toMatchObject({ id: s.id, state: 'running' });
    expect((await berth('sandbox', 'get', s.id)).stdout).toMatch(
      new RegExp(`^ID\\s+STATE[\\s\\S]*${s.id}\\s+running`),
    );

    const logs = await berth('logs', s.id);
    expect(logs.stdout).toContain('runtime server listening');
    expect((await berth('logs', '-n', '1', s.id)).stdout.trim().split('\n')).toHaveLength(1);

    const waitFor = async (get: () => string, text: string) => {
      for (let i = 0; i < 300 && !get().includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      expect(get()).toContain(text);
    };
    // Following: whatever the container's main process writes arrives as it is written.
    const follow = cli(['logs', '-f', '-n', '0', s.id]);
    let followed = '';
    follow.stdout.on('data', (d) => {
      followed += d;
    });
    const events = cli(['events', '-f', '--json', s.id]);
    let evs = '';
    events.stdout.on('data', (d) => {
      evs += d;
    });
    await waitFor(() => evs, '"created"');
    await berth('sandbox', 'pause', s.id);
    await berth('sandbox', 'resume', s.id);
    await waitFor(() => evs, '"resumed"');
    const lines = evs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; payload: { event?: string } });
    expect(lines.filter((e) => e.kind === 'lifecycle').map((e) => e.payload.event)).toEqual(
      expect.arrayContaining(['created', 'paused', 'resumed']),
    );
    // As root from outside: the sandbox user may not write to the (privilege-dropped) PID 1's stdout.
    execFileSync('docker', [
      'exec',
      `berth-sandbox-${s.id}`,
      'sh',
      '-c',
      'echo followed-line > /proc/1/fd/1',
    ]);
    await waitFor(() => followed, 'followed-line');
    for (const child of [follow, events]) {
      child.kill('SIGINT');
      expect(await new Promise((r) => child.once('close', r))).toBe(0);
    }
    const plain = await berth('events', s.id);
    expect(plain.stdout).toMatch(/^\s+\d+ {2}\S+ {2}lifecycle {3}created/m);
    await berth('sandbox', 'rm', s.id);
  });

  it('cp copies files and directories both ways, like docker cp', async () => {
    const s = JSON.parse((await berth('sandbox', 'create', '--json')).stdout) as { id: string };
    const src = mkdtempSync(join(tmpdir(), 'berth-cp-src-'));
    mkdirSync(join(src, 'tree', 'sub'), { recursive: true });
    writeFileSync(join(src, 'tree', 'a.txt'), 'alpha\n');
    writeFileSync(join(src, 'tree', 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255]));
    writeFileSync(join(src, 'one.zip'), 'not really a zip');
    // In: a file to a new name, a file into a directory, a directory into a directory, a .zip kept as a file.
    expect((await berth('cp', join(src, 'tree', 'a.txt'), `${s.id}:/tmp/renamed.txt`)).code).toBe(0);
    expect((await berth('cp', join(src, 'tree', 'a.txt'), `${s.id}:/tmp/`)).code).toBe(0);
    const dirIn = await berth('cp', join(src, 'tree'), `${s.id}:/tmp`);
    expect(dirIn.code, dirIn.stderr).toBe(0);
    expect((await berth('cp', join(src, 'one.zip'), `${s.id}:/tmp/one.zip`)).code).toBe(0);
    const seen = await berth(
      'exec',
      s.id,
      'sh',
      '-c',
      'cat /tmp/renamed.txt /tmp/a.txt /tmp/tree/a.txt; od -An -tu1 /tmp/tree/sub/b.bin; cat /tmp/one.zip',
    );
    expect(seen.stdout).toBe('alpha\nalpha\nalpha\n   0   1   2 255\nnot really a zip');
    // Out: a file to a new name, a directory to a new name, a directory into an existing directory.
    const dst = mkdtempSync(join(tmpdir(), 'berth-cp-dst-'));
    expect((await berth('cp', `${s.id}:/tmp/renamed.txt`, join(dst, 'r.txt'))).code).toBe(0);
    expect(readFileSync(join(dst, 'r.txt'), 'utf8')).toBe('alpha\n');
    expect((await berth('cp', `${s.id}:/tmp/tree`, join(dst, 'copy'))).code).toBe(0);
    expect(readFileSync(join(dst, 'copy', 'sub', 'b.bin'))).toEqual(Buffer.from([0, 1, 2, 255]));
    expect((await berth('cp', `${s.id}:/tmp/tree`, dst)).code).toBe(0);
    expect(readFileSync(join(dst, 'tree', 'a.txt'), 'utf8')).toBe('alpha\n');
    const bad = await berth('cp', join(src, 'tree'), join(dst, 'x'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('exactly one of SRC and DST');
    const missing = await berth('cp', `${s.id}:/no/such/file`, dst);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NOT_FOUND');
    await berth('sandbox', 'rm', s.id);
  });

  it('errors say what to do and exit non-zero', async () => {
    const missing = await berth('exec', '000000000000', '--', 'true');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/sandbox 000000000000 not found.*berth sandbox ls.*NOT_FOUND/);
    const badKey = await run(
      process.execPath,
      ['--import', 'tsx', resolve(ROOT, 'src/cli/main.ts'), 'sandbox', 'ls'],
      {
        cwd: ROOT,
        env: { ...process.env, BERTH_URL: cp.url, BERTH_API_KEY: 'wrong' },
      },
    ).catch((e: { code: number; stderr: string }) => e);
    expect((badKey as { code: number }).code).toBe(1);
    expect((badKey as { stderr: string }).stderr).toContain('BERTH_API_KEY');
    // A port nothing listens on: bind one, then let it go.
    const free = await new Promise<number>((res) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        srv.close(() => res(port));
      });
    });
    const down = await run(
      process.execPath,
      ['--import', 'tsx', resolve(ROOT, 'src/cli/main.ts'), 'sandbox', 'ls'],
      {
        cwd: ROOT,
        env: { ...process.env, BERTH_URL: `http://127.0.0.1:${free}`, BERTH_API_KEY: '' },
      },
    ).catch((e: { code: number; stderr: string }) => e);
    expect((down as { stderr: string }).stderr).toContain('berth up');
  });
});
