/** Contract: the `run` action, with the reference's shell semantics and exact strings. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Obs, RuntimeClient, type RuntimeTarget, startRuntimeTarget } from './harness.js';

const TIMEOUT_MESSAGE =
  'You may wait longer to see additional output by sending empty command \'\', send other commands to interact with the current process, send keys ("C-c", "C-z", "C-d") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.';
const SOFT_SECONDS = 2;

let target: RuntimeTarget;
let c: RuntimeClient;

beforeAll(async () => {
  target = await startRuntimeTarget({ env: { NO_CHANGE_TIMEOUT_SECONDS: String(SOFT_SECONDS) } });
  c = new RuntimeClient(target);
});
afterAll(async () => {
  await target?.close();
});

/** Ends whatever runs, so each test starts at a prompt. */
async function reset() {
  const o = await c.run('C-c', { is_input: true });
  if (o.extras.metadata.exit_code === -1) await c.run('C-c', { is_input: true });
}

describe('run: basics', () => {
  it('echo returns output, exit code, metadata and message', async () => {
    const o = await c.run('echo hi');
    expect(o.observation).toBe('run');
    expect(o.content).toBe('hi');
    expect(o.success).toBe(true);
    expect(o.message).toBe('Command `echo hi` executed with exit code 0.');
    expect(o.extras.command).toBe('echo hi');
    expect(o.extras.hidden).toBe(false);
    const m = o.extras.metadata;
    expect(m.exit_code).toBe(0);
    expect(m.pid).toBe(-1);
    expect(typeof m.username).toBe('string');
    expect(m.username.length).toBeGreaterThan(0);
    expect(typeof m.hostname).toBe('string');
    expect(m.working_dir).toBe(target.workspace);
    expect(typeof m.py_interpreter_path).toBe('string');
    expect(m.prefix).toBe('');
    expect(m.suffix).toBe('\n[The command completed with exit code 0.]');
  });

  it("$? carries the previous command's exit status into the next command", async () => {
    await c.run('false');
    expect((await c.run('echo "status $?"')).content).toBe('status 1');
    await c.run('(exit 7)');
    expect((await c.run('echo "$?"; echo "$?"')).content).toBe('7\n0');
  });

  it('exact exit codes: failure and 127 for a missing command', async () => {
    const o = await c.run('(exit 3)');
    expect(o.extras.metadata.exit_code).toBe(3);
    expect(o.success).toBe(false);
    expect(o.extras.metadata.suffix).toBe('\n[The command completed with exit code 3.]');
    const missing = await c.run('definitely_not_a_command_xyz');
    expect(missing.extras.metadata.exit_code).toBe(127);
    expect(missing.content).toContain('definitely_not_a_command_xyz: command not found');
  });

  it('cwd, variables, aliases and functions persist between actions', async () => {
    await c.run('mkdir -p sub/dir && cd sub/dir');
    expect((await c.run('pwd')).content).toBe(`${target.workspace}/sub/dir`);
    expect((await c.run('true')).extras.metadata.working_dir).toBe(`${target.workspace}/sub/dir`);
    await c.run('export BERTH_X="a b"');
    await c.run("alias hello='echo aliased'");
    await c.run('greet() { echo "hi $1"; }');
    expect((await c.run('echo "$BERTH_X"')).content).toBe('a b');
    expect((await c.run('hello')).content).toBe('aliased');
    expect((await c.run('greet bob')).content).toBe('hi bob');
    await c.run(`cd ${target.workspace}`);
  });

  it('no echoed command, no PS2 markers, no escape sequences', async () => {
    const o = await c.run('for i in 1 2 3; do\n  echo "n$i"\ndone');
    expect(o.content).toBe('n1\nn2\nn3');
    const colored = await c.run("printf '\\033[31mred\\033[0m plain\\n'");
    expect(colored.content).toBe('red plain');
    const heredoc = await c.run("cat <<'EOF'\nline one\n  line two\nEOF");
    expect(heredoc.content).toBe('line one\n  line two');
    const cont = await c.run('echo a \\\n  b');
    expect(cont.content).toBe('a b');
  });

  it("output is stripped as the reference strips its pane: leading/trailing blank lines, each line's trailing spaces", async () => {
    // The reference (0.62) lstrips and rstrips the whole output and rstrips every line, so leading
    // blank lines, the first line's indentation and trailing spaces go; inner blank lines and the
    // indentation of later lines stay. Checked against it with test/oracle.
    expect((await c.run("printf '\\n\\nhello\\n\\n\\n'")).content).toBe('hello');
    expect((await c.run('echo; echo; echo x; echo; echo')).content).toBe('x');
    expect((await c.run("printf '   indented\\n  b\\n'")).content).toBe('indented\n  b');
    expect((await c.run("printf 'trail   \\nb  \\n'")).content).toBe('trail\nb');
    expect((await c.run("printf 'a\\n\\n\\nb\\n'")).content).toBe('a\n\n\nb');
    expect((await c.run("printf '\\n   \\n\\t\\n'")).content).toBe('');
    expect((await c.run("printf '\\xc2\\xa0nbsp\\xc2\\xa0\\n'")).content).toBe('nbsp');
  });

  it('a long single line comes back as one line', async () => {
    const o = await c.run('python3 -c "print(\'x\' * 5000)"');
    expect(o.content).toBe('x'.repeat(5000));
  });

  it('commands longer than the terminal line buffer run intact', async () => {
    const long = `echo ${'y'.repeat(10_000)}`;
    expect((await c.run(long)).content).toBe('y'.repeat(10_000));
  });

  it('background jobs with & return at once and report $! as pid', async () => {
    const o = await c.run('sleep 30 &');
    expect(o.extras.metadata.exit_code).toBe(0);
    expect(o.extras.metadata.pid).toBeGreaterThan(0);
    const after = await c.run('echo done');
    expect(after.content).toContain('done');
    await c.run('kill %1 2>/dev/null; wait 2>/dev/null; true');
  });
});

describe('run: the one-command rule', () => {
  it('refuses several top-level commands with the exact error', async () => {
    const o = await c.run('echo one\necho two');
    expect(o.observation).toBe('error');
    expect(o.content).toBe(
      'ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n(1) echo one\n(2) echo two',
    );
    expect(o.extras.error_id).toBe('');
  });

  it('chains, loops, heredocs, continuations and leading comments count as one', async () => {
    expect((await c.run('echo a && echo b; echo c || echo d | cat')).content).toBe('a\nb\nc');
    expect((await c.run('# a comment first\necho after-comment')).content).toBe('after-comment');
    expect((await c.run('if true; then\n echo yes\nfi')).content).toBe('yes');
  });

  it('unparseable text is passed to bash as one command', async () => {
    const o = await c.run('echo "unterminated');
    expect(o.observation).toBe('run');
    expect(o.extras.metadata.exit_code).not.toBe(0);
  });
});

describe('run: timeouts and interaction', () => {
  it('soft timeout: exact suffix, process keeps running, empty command continues', async () => {
    // Finishes 1 s into the continuation's own 2 s window, so the timing has slack either way.
    const o = await c.run('echo start; sleep 3; echo finished');
    expect(o.content).toBe('start');
    expect(o.extras.metadata.exit_code).toBe(-1);
    expect(o.extras.metadata.suffix).toBe(
      `\n[The command has no new output after ${SOFT_SECONDS} seconds. ${TIMEOUT_MESSAGE}]`,
    );
    expect(o.extras.metadata.working_dir).toBeNull();
    const next: Obs = await c.run('');
    expect(next.content).toBe('finished');
    // As the reference: the completing observation has no continuation prefix.
    expect(next.extras.metadata.prefix).toBe('');
    expect(next.extras.metadata.exit_code).toBe(0);
    expect(next.extras.metadata.suffix).toBe('\n[The command completed with exit code 0.]');
  });

  it('a continuation after a soft timeout is stripped too', async () => {
    const o = await c.run("echo start; sleep 3; printf '\\n\\n   late  \\n\\n'");
    expect(o.content).toBe('start');
    expect((await c.run('')).content).toBe('late');
  });

  it('hard timeout: float seconds in the suffix, blocking disables the soft timeout', async () => {
    const o = await c.run('sleep 3; echo late', { blocking: true }, 1);
    expect(o.extras.metadata.exit_code).toBe(-1);
    expect(o.extras.metadata.suffix).toBe(`\n[The command timed out after 1.0 seconds. ${TIMEOUT_MESSAGE}]`);
    const blocked = await c.run('', { blocking: true }, 10);
    expect(blocked.content).toBe('late');
    expect(blocked.extras.metadata.prefix).toBe('');
    expect(blocked.extras.metadata.exit_code).toBe(0);
    const frac = await c.run('sleep 5', { blocking: true }, 2.5);
    expect(frac.extras.metadata.suffix).toBe(
      `\n[The command timed out after 2.5 seconds. ${TIMEOUT_MESSAGE}]`,
    );
    await reset();
  });

  it('a new command while one runs is NOT executed, with the exact suffix', async () => {
    const first = await c.run('echo busy; sleep 60');
    expect(first.extras.metadata.exit_code).toBe(-1);
    const refused = await c.run('echo second');
    expect(refused.content).toBe('');
    expect(refused.extras.metadata.exit_code).toBe(-1);
    expect(refused.extras.metadata.prefix).toBe('[Below is the output of the previous command.]\n');
    expect(refused.extras.metadata.suffix).toBe(
      `\n[Your command "echo second" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting \`is_input\` to \`true\`, you can interact with the current process: ${TIMEOUT_MESSAGE}]`,
    );
    const stopped = await c.run('C-c', { is_input: true });
    expect(stopped.extras.metadata.exit_code).toBe(130);
    expect(stopped.extras.metadata.suffix).toBe(
      '\n[The command completed with exit code 130. CTRL+C was sent.]',
    );
  });

  it('Ctrl-C on a shell loop gives 130', async () => {
    const loop = await c.run('while true; do sleep 1; done');
    expect(loop.extras.metadata.exit_code).toBe(-1);
    const stopped = await c.run('C-c', { is_input: true });
    expect(stopped.extras.metadata.exit_code).toBe(130);
    expect((await c.run('echo alive')).content).toBe('alive');
  });

  it('C-d ends a program reading stdin, C-z suspends one', async () => {
    const cat = await c.run('cat');
    expect(cat.extras.metadata.exit_code).toBe(-1);
    const echoed = await c.run('hello cat', { is_input: true });
    expect(echoed.content).toBe('hello cat');
    const ended = await c.run('C-d', { is_input: true });
    expect(ended.extras.metadata.exit_code).toBe(0);
    expect(ended.extras.metadata.suffix).toBe('\n[The command completed with exit code 0. CTRL+D was sent.]');
    await c.run('sleep 100');
    const suspended = await c.run('C-z', { is_input: true });
    expect(suspended.extras.metadata.exit_code).toBe(148);
    expect(suspended.content).toContain('Stopped');
    await c.run('kill -9 %1; wait 2>/dev/null; true');
  });

  it('is_input answers read -p and Python input()', async () => {
    const asked = await c.run('read -p "Your name: " NAME && echo "hello $NAME"');
    expect(asked.content).toContain('Your name:');
    expect(asked.extras.metadata.exit_code).toBe(-1);
    const answered = await c.run('Ada', { is_input: true });
    expect(answered.content).toContain('hello Ada');
    expect(answered.extras.metadata.exit_code).toBe(0);
    await c.run("python3 -c \"x = input('? '); print('got', x)\"");
    const py = await c.run('42', { is_input: true });
    expect(py.content).toContain('got 42');
  });

  it('the Python REPL works through is_input', async () => {
    const repl = await c.run('python3 -q');
    expect(repl.extras.metadata.exit_code).toBe(-1);
    const res = await c.run('print(6 * 7)', { is_input: true });
    expect(res.content).toContain('42');
    const quit = await c.run('exit()', { is_input: true });
    expect(quit.extras.metadata.exit_code).toBe(0);
  });

  it('empty command or input with nothing running gives the reference errors', async () => {
    const empty = await c.run('');
    expect(empty.observation).toBe('run');
    expect(empty.content).toBe('ERROR: No previous running command to retrieve logs from.');
    expect(empty.extras.metadata.exit_code).toBe(-1);
    const input = await c.run('abc', { is_input: true });
    expect(input.content).toBe('ERROR: No previous running command to interact with.');
    expect(input.extras.command).toBe('');
    expect(input.message).toBe('Command `` executed with exit code -1.');
  });
});

describe('run: output limits', () => {
  it('over 30,000 characters is cut in the middle with the marker', async () => {
    const o = await c.run('seq 1 20000');
    const marker = '\n[... Observation truncated due to length ...]\n';
    expect(o.content.length).toBe(30_000 + marker.length);
    expect(o.content.startsWith('1\n2\n3\n')).toBe(true);
    expect(o.content.endsWith('19999\n20000')).toBe(true);
    expect(o.content).toContain(marker);
  });

  it('millions of lines: the server stays small and the output is cut', async () => {
    const o = await c.run('seq 1 3000000', { blocking: true }, 120);
    expect(o.extras.metadata.exit_code).toBe(0);
    expect(o.content.endsWith('2999999\n3000000')).toBe(true);
    expect(o.content.length).toBeLessThan(31_000);
    const info = await c.request('GET', '/server_info');
    // The server's own RSS; the output itself was ~20 MB.
    expect(info.json.resources.memory.rss).toBeLessThan(400 * 1024 * 1024);
  });
});

describe('environment variables set on the sandbox (POST /berth/env)', () => {
  it("reach the agent's shell and every later process; a bad name is refused and changes nothing", async () => {
    const set = await c.request('POST', '/berth/env', { env: { BERTH_SET: "it's set", BERTH_TWO: '2' } });
    expect(set.status).toBe(200);
    expect(set.json).toEqual({ names: ['BERTH_SET', 'BERTH_TWO'] });
    expect((await c.run('echo "$BERTH_SET/$BERTH_TWO"')).content).toBe("it's set/2");
    // A one-off shell reads no .bashrc: it has them from the server's own table.
    expect((await c.run('echo "$BERTH_SET"', { is_static: true })).content).toBe("it's set");
    const bad = await c.request('POST', '/berth/env', { env: { BERTH_SET: 'changed', 'NOT-A-NAME': 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringContaining('NOT-A-NAME'),
    });
    expect((await c.run('echo "$BERTH_SET"')).content).toBe("it's set");
    const notObject = await c.request('POST', '/berth/env', { env: ['A=1'] });
    expect(notObject.status).toBe(400);
    expect((await c.request('POST', '/berth/env', { env: { A: 1 } })).json).toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });
});

describe('run: is_static and hidden', () => {
  it('is_static runs in a one-off shell in the given cwd without touching the main shell', async () => {
    await c.run('export ONLY_MAIN=1');
    const o = await c.run('pwd; echo "[$ONLY_MAIN]"; cd /', { is_static: true, cwd: '/tmp' });
    expect(o.content).toBe('/tmp\n[]');
    expect(o.extras.metadata.exit_code).toBe(0);
    expect((await c.run('pwd')).content).toBe(target.workspace);
  });

  it('hidden is carried into the observation', async () => {
    const o = await c.run('echo secret', { hidden: true });
    expect(o.extras.hidden).toBe(true);
    expect(o.content).toBe('secret');
  });

  it('exit restarts the shell in the same directory', async () => {
    await c.run('cd /tmp');
    const o = await c.run('exit 7');
    expect(o.extras.metadata.exit_code).toBe(7);
    const after = await c.run('pwd');
    expect(after.content).toBe('/tmp');
    await c.run(`cd ${target.workspace}`);
  });
});
