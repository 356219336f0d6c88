/**
 * The official `e2b` SDK (npm), unchanged, against a real control plane and real sandboxes: pointed at
 * Berth by its own environment variables only (E2B_API_KEY, E2B_API_URL, E2B_SANDBOX_URL), as a user
 * moving from E2B would. Every test asserts what the SDK returns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type E2bTarget, startForE2b } from './control-plane-helpers.js';
import { engineAvailable } from './docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: E2B SDK suite (${unavailable})`);

// Imported after the check so a machine without the engine still loads this file.
const { CommandExitError, NotFoundError, Sandbox, TimeoutError } = await import('e2b');
type E2bSandbox = InstanceType<typeof Sandbox>;

describe.skipIf(unavailable !== undefined)('the e2b SDK against Berth', () => {
  let target: E2bTarget;
  let cp: E2bTarget['cp'];
  let sbx: E2bSandbox;
  const saved = { ...process.env };

  beforeAll(async () => {
    target = await startForE2b();
    cp = target.cp;
    // What docs/e2b.md tells users to set; nothing else changes in their code.
    Object.assign(process.env, target.env);
    sbx = await Sandbox.create({ metadata: { suite: 'e2b-sdk' } });
  }, 120_000);

  afterAll(async () => {
    process.env = saved;
    await target?.close();
  });

  it('runs a command: stdout, stderr and the exit code apart; a failure is CommandExitError', async () => {
    const ok = await sbx.commands.run('echo out; echo err >&2');
    expect(ok).toMatchObject({ exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
    const failed = await sbx.commands.run('echo partial; exit 7').catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(CommandExitError);
    expect(failed).toMatchObject({ exitCode: 7, stdout: 'partial\n' });
    // envs and cwd, and the process is not the agent's shell: nothing leaks between runs.
    const env = await sbx.commands.run('cd /tmp; export LEAK=1; echo "$GREETING $PWD"', {
      envs: { GREETING: 'hello' },
      cwd: '/',
    });
    expect(env.stdout).toBe('hello /tmp\n');
    expect((await sbx.commands.run('echo "[$LEAK]"; pwd')).stdout).toMatch(/^\[\]\n\//);
  });

  it('streams output as it is produced (the command waits for what its first line makes happen)', async () => {
    const seen: string[] = [];
    const marker = `/tmp/go-${Date.now()}`;
    // The command ends only once the client has seen its first line and answered: without streaming
    // the first line would come with the end, which never comes (the run would time out).
    const result = await sbx.commands.run(
      `echo first; while [ ! -e ${marker} ]; do sleep 0.05; done; echo second`,
      {
        timeoutMs: 30_000,
        onStdout: (line) => {
          seen.push(line);
          if (line.includes('first')) void sbx.files.write(marker, 'go');
        },
      },
    );
    expect(result.stdout).toBe('first\nsecond\n');
    expect(seen.join('')).toBe('first\nsecond\n');
  });

  it('background commands: a handle, listed, a second client connects and sees the output; kill', async () => {
    const marker = `/tmp/bg-${Date.now()}`;
    const bg = await sbx.commands.run(`while [ ! -e ${marker} ]; do sleep 0.05; done; echo from-bg`, {
      background: true,
    });
    expect(bg.pid).toBeGreaterThan(0);
    expect((await sbx.commands.list()).map((p) => p.pid)).toContain(bg.pid);
    const other = await Sandbox.connect(sbx.sandboxId);
    const attached = await other.commands.connect(bg.pid);
    await sbx.files.write(marker, 'go');
    const done = await attached.wait();
    expect(done.stdout).toContain('from-bg');

    const sleeper = await sbx.commands.run('sleep 300', { background: true });
    expect(await sbx.commands.kill(sleeper.pid)).toBe(true);
    const killed = await sleeper.wait().catch((e: unknown) => e);
    expect(killed).toBeInstanceOf(CommandExitError);
    expect((await sbx.commands.list()).map((p) => p.pid)).not.toContain(sleeper.pid);
    expect(await sbx.commands.kill(sleeper.pid)).toBe(false);
  });

  it('stdin: sent, then closed', async () => {
    const cat = await sbx.commands.run('cat', { background: true, stdin: true });
    await sbx.commands.sendStdin(cat.pid, 'hello stdin\n');
    await sbx.commands.closeStdin(cat.pid);
    expect((await cat.wait()).stdout).toBe('hello stdin\n');
  });

  it('a PTY: input, output, resize, kill', async () => {
    let output = '';
    const decoder = new TextDecoder();
    const term = await sbx.pty.create({
      cols: 80,
      rows: 24,
      onData: (d) => {
        output += decoder.decode(d);
      },
    });
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 });
    await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; echo pty-$((6*7))\n'));
    const deadline = Date.now() + 15_000;
    while (!output.includes('pty-42') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(output).toContain('pty-42');
    expect(output).toContain('30 100');
    expect(await sbx.pty.kill(term.pid)).toBe(true);
  });

  it('files: write, read (text and bytes), list, stat, rename, remove; a missing file is NotFoundError', async () => {
    const info = await sbx.files.write('/tmp/js/a/hello.txt', 'hello from js');
    expect(info.path).toBe('/tmp/js/a/hello.txt');
    expect(await sbx.files.read('/tmp/js/a/hello.txt')).toBe('hello from js');
    await sbx.files.write([
      { path: '/tmp/js/b.bin', data: new Uint8Array([0, 1, 255]).buffer },
      { path: '/tmp/js/c.txt', data: 'c' },
    ]);
    expect([...(await sbx.files.read('/tmp/js/b.bin', { format: 'bytes' }))]).toEqual([0, 1, 255]);
    expect((await sbx.files.list('/tmp/js')).map((e) => e.name).sort()).toEqual(['a', 'b.bin', 'c.txt']);
    expect((await sbx.files.getInfo('/tmp/js/a')).type).toBe('dir');
    await sbx.files.rename('/tmp/js/c.txt', '/tmp/js/a/c2.txt');
    expect(await sbx.files.exists('/tmp/js/c.txt')).toBe(false);
    await sbx.files.remove('/tmp/js/a');
    expect(await sbx.files.exists('/tmp/js/a/c2.txt')).toBe(false);
    const missing = await sbx.files.read('/tmp/js/none').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
  });

  it('watchDir reports a write as it happens; signed upload and download URLs work without a header', async () => {
    await sbx.files.makeDir('/tmp/jsw');
    const seen: string[] = [];
    const watch = await sbx.files.watchDir('/tmp/jsw', (e) => {
      seen.push(e.name);
    });
    await sbx.files.write('/tmp/jsw/new.txt', 'x');
    const deadline = Date.now() + 10_000;
    while (!seen.includes('new.txt') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await watch.stop();
    expect(seen).toContain('new.txt');

    const form = new FormData();
    form.append('file', new Blob(['signed body']), 'signed.txt');
    const up = await fetch(await sbx.uploadUrl('/tmp/jsw/signed.txt'), { method: 'POST', body: form });
    expect(up.status).toBe(200);
    const down = await fetch(await sbx.downloadUrl('/tmp/jsw/signed.txt'));
    expect(await down.text()).toBe('signed body');
    // A URL whose signature was made for another path is refused.
    const forged = (await sbx.downloadUrl('/tmp/jsw/signed.txt')).replace('signed.txt', 'other.txt');
    expect((await fetch(forged)).status).toBe(401);
  });

  it('isRunning, getInfo and list with a metadata filter, in E2B shapes', async () => {
    expect(await sbx.isRunning()).toBe(true);
    const info = await sbx.getInfo();
    expect(info).toMatchObject({ sandboxId: sbx.sandboxId, templateId: 'base', state: 'running' });
    expect(info.metadata).toEqual({ suite: 'e2b-sdk' });
    const page = await Sandbox.list({ query: { metadata: { suite: 'e2b-sdk' } } }).nextItems();
    expect(page.map((s) => s.sandboxId)).toEqual([sbx.sandboxId]);
    expect(await Sandbox.list({ query: { metadata: { suite: 'nothing-has-this' } } }).nextItems()).toEqual(
      [],
    );
  });

  it('getMetrics: CPU and memory from the engine against the sandbox limits, disk from inside', async () => {
    // Memory the sandbox holds while the sample is taken.
    const hog = await sbx.commands.run('python3 -c "b = bytearray(96 << 20); import time; time.sleep(30)"', {
      background: true,
    });
    await new Promise((r) => setTimeout(r, 1000));
    const [m] = await sbx.getMetrics();
    await hog.kill();
    expect(m).toBeDefined();
    expect(m!.timestamp).toBeInstanceOf(Date);
    expect(m!.cpuCount).toBeGreaterThanOrEqual(1);
    expect(m!.cpuUsedPct).toBeGreaterThanOrEqual(0);
    expect(m!.memUsed).toBeGreaterThan(96 << 20);
    expect(m!.memTotal).toBeGreaterThanOrEqual(m!.memUsed);
    expect(m!.diskTotal).toBeGreaterThan(m!.diskUsed);
    expect(m!.diskUsed).toBeGreaterThan(0);
  });

  it('a command past its timeoutMs ends with TimeoutError and is killed; user root and the default user', async () => {
    const marker = `slow-${Date.now()}`;
    const err = await sbx.commands
      .run(`sleep 30; echo ${marker}`, { timeoutMs: 500 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    const deadline = Date.now() + 10_000;
    let left = true;
    while (left && Date.now() < deadline) {
      left = (await sbx.commands.list()).some(
        (p) => p.cmd.includes(marker) || p.args.join(' ').includes(marker),
      );
      if (left) await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe(false);
    expect((await sbx.commands.run('id -u', { user: 'root' })).stdout).toBe('0\n');
    // Root's home, where the sandbox user may not go, is root's default cwd as in E2B.
    expect((await sbx.commands.run('pwd', { user: 'root' })).stdout).toBe('/root\n');
    const mine = await sbx.commands.run('id -u');
    expect(Number(mine.stdout)).toBeGreaterThan(0);
    // Files written by the default user are its own (as root through envd: docs/e2b.md, differences).
    await sbx.files.write('/tmp/owned-by-user', 'u');
    expect((await sbx.commands.run('stat -c %u /tmp/owned-by-user')).stdout).toBe(mine.stdout);
  });

  it('a command whose output outruns the client delivers all of it (its pipes wait for the client)', async () => {
    const r = await sbx.commands.run("head -c 20000000 /dev/zero | tr '\\0' x; echo; echo end >&2", {
      timeoutMs: 120_000,
    });
    expect(r.stdout.length).toBe(20_000_001);
    expect(r.stdout.startsWith('xxxx')).toBe(true);
    expect(r.stderr).toBe('end\n');
  });

  it('reads a file as a stream', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024);
    await sbx.files.write('/tmp/stream.txt', big);
    const stream = await sbx.files.read('/tmp/stream.txt', { format: 'stream' });
    let size = 0;
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) size += chunk.length;
    expect(size).toBe(big.length);
  });

  it('an agent-style loop of 50 mixed calls, each answer checked', async () => {
    await sbx.files.makeDir('/tmp/agent');
    for (let i = 0; i < 50; i++) {
      const file = `/tmp/agent/step-${i % 10}.txt`;
      switch (i % 5) {
        case 0:
          expect((await sbx.files.write(file, `step ${i}`)).path).toBe(file);
          break;
        case 1:
          await sbx.files.write(file, `step ${i}`);
          expect(await sbx.files.read(file)).toBe(`step ${i}`);
          break;
        case 2:
          expect((await sbx.commands.run(`echo $((${i} * 2))`)).stdout).toBe(`${i * 2}\n`);
          break;
        case 3:
          expect((await sbx.files.list('/tmp/agent')).length).toBeGreaterThan(0);
          break;
        case 4: {
          const r = await sbx.commands
            .run(`cat ${file} 2>/dev/null || echo none; exit ${i % 3}`)
            .catch((e: unknown) => e);
          expect((r as { exitCode: number }).exitCode).toBe(i % 3);
          break;
        }
      }
    }
  });

  it('one sandbox driven by both protocols at once: an OpenHands action and E2B calls see each other', async () => {
    const bg = await sbx.commands.run('sleep 120', { background: true });
    const action = {
      action: {
        action: 'run',
        args: { command: 'echo from-openhands > /tmp/both.txt; echo done', blocking: true },
      },
    };
    const res = await api(
      cp.url,
      cp.apiKey,
      'POST',
      `/api/sandboxes/${sbx.sandboxId}/execute_action`,
      action,
    );
    expect(res.status).toBe(200);
    expect(res.json.content).toContain('done');
    expect(await sbx.files.read('/tmp/both.txt')).toBe('from-openhands\n');
    // The E2B process is a process of the same sandbox, visible to the agent's shell.
    const ps = await api(cp.url, cp.apiKey, 'POST', `/api/sandboxes/${sbx.sandboxId}/execute_action`, {
      action: { action: 'run', args: { command: `ps -o pid= -p ${bg.pid}`, blocking: true } },
    });
    expect(ps.json.content).toContain(String(bg.pid));
    await bg.kill();
  });

  it('an unknown template is a 404 naming it', async () => {
    const err = await Sandbox.create('no-such-template').catch((e: unknown) => e);
    expect(String((err as Error).message)).toContain("template 'no-such-template' not found");
  });

  it('pause keeps processes; connect resumes; a timeout ends the sandbox at its moment; kill', async () => {
    const box = await Sandbox.create();
    const bg = await box.commands.run('sleep 600', { background: true, timeoutMs: 0 });
    expect(await box.pause()).toBe(true);
    expect(await box.isRunning()).toBe(false);
    expect(await box.pause()).toBe(false); // already paused: E2B's 409
    const again = await Sandbox.connect(box.sandboxId);
    expect(await again.isRunning()).toBe(true);
    expect((await again.commands.list()).map((p) => p.pid)).toContain(bg.pid);

    await again.setTimeout(2_000);
    const deadline = Date.now() + 20_000;
    while ((await again.isRunning()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await again.isRunning()).toBe(false);
    expect(await Sandbox.kill(box.sandboxId)).toBe(false);
  });

  it('killing the sandbox while a command streams ends it with the SDK own "killed" error', async () => {
    const box = await Sandbox.create();
    // Caught at once: the SDK rejects as soon as the stream is cut, before kill() has answered.
    const running = box.commands.run('echo started; sleep 300', { timeoutMs: 0 }).catch((e: unknown) => e);
    // Wait until the command runs (its output has started) before killing.
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const list = await box.commands.list();
      if (list.some((p) => p.args.join(' ').includes('sleep 300'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await box.kill()).toBe(true);
    const err = await running;
    expect(String((err as Error).message)).toMatch(/sandbox was killed|not running anymore/i);
    expect(await box.isRunning()).toBe(false);
  });
});
