/** `berth sandbox ...`, `berth exec` and `berth shell`: thin wrappers over the SDK. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import WebSocket from 'ws';
import { loadClientConfig } from '../config/client.js';
import type { CreateSandboxBody, Sandbox, SandboxEvent, SandboxState } from '../protocol/api.js';
import { BerthClient } from '../sdk/client.js';
import { age, printJson, printTable, spinner } from './output.js';

interface GlobalFlags {
  url?: string;
  apiKey?: string;
}

/** The SDK client for the global --url and --api-key flags (or their environment variables). */
export function cliClient(cmd: Command): BerthClient {
  const g = cmd.optsWithGlobals() as GlobalFlags;
  return new BerthClient(loadClientConfig(g));
}

const collect = (v: string, acc: string[]) => [...acc, v];

function pairs(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const at = item.indexOf('=');
    if (at <= 0) throw new Error(`${what} "${item}" must look like KEY=VALUE`);
    out[item.slice(0, at)] = item.slice(at + 1);
  }
  return out;
}

/**
 * --workspace as an absolute path: relative to the current directory, and an existing directory
 * (a name is not taken for a Docker volume, and a missing directory is not made by root on the host).
 */
function workspaceDir(given: string, mkdir: boolean): string {
  const dir = resolve(given);
  if (!existsSync(dir)) {
    if (!mkdir)
      throw new Error(`--workspace ${given}: no such directory (${dir}); create it, or add --mkdir`);
    mkdirSync(dir, { recursive: true });
  } else if (!statSync(dir).isDirectory()) {
    throw new Error(`--workspace ${given}: ${dir} is not a directory`);
  }
  return dir;
}

/** `name`, `uid` or `name:uid`, as --user takes it; the server checks the rest. */
function parseUser(spec: string): NonNullable<CreateSandboxBody['user']> {
  const [a, b] = spec.split(':', 2) as [string, string | undefined];
  if (b !== undefined) return { name: a, uid: toUid(b, spec) };
  return /^\d+$/.test(a) ? { uid: toUid(a, spec) } : { name: a };
}

function toUid(text: string, spec: string): number {
  if (!/^\d{1,10}$/.test(text)) throw new Error(`--user ${spec}: the uid must be a number`);
  return Number(text);
}

/** One event as a line: seq, time, kind, and what it says. */
function eventLine(e: SandboxEvent): string {
  const p = e.payload as Record<string, unknown> & {
    action?: string;
    event?: string;
    observation?: string;
    reason?: string;
  };
  const what = p.event ?? p.action ?? p.observation ?? '';
  const detail = typeof p.reason === 'string' ? p.reason : '';
  return `${String(e.seq).padStart(6)}  ${e.at}  ${e.kind.padEnd(11)} ${what}${detail ? `: ${detail}` : ''}`;
}

function row(s: Sandbox): string[] {
  return [s.id, s.state, s.image, age(s.created_at), age(s.last_activity_at), s.workspace ?? '-'];
}

export function registerSandboxCommands(program: Command): void {
  const sandbox = program.command('sandbox').description('Create and manage sandboxes');

  sandbox
    .command('create')
    .description('Create a sandbox and wait until it is ready')
    .option('--image <image>', 'runtime image (default: the configured one)')
    .option('--workspace <dir>', 'host directory to mount at /workspace (relative to the current directory)')
    .option('--mkdir', 'create the --workspace directory if it does not exist')
    .option('-v, --volume <spec>', 'extra mount host:container[:ro|rw] (repeatable)', collect, [])
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect, [])
    .option('--label <KEY=VALUE>', 'label (repeatable)', collect, [])
    .option('--cpus <n>', 'CPU limit', Number)
    .option('--memory-mb <n>', 'memory limit in MiB', Number)
    .option('--pids <n>', 'process limit', Number)
    .option(
      '--disk-mb <n>',
      "writable-layer size in MiB (where Docker's storage driver can limit it)",
      Number,
    )
    .option('--network <name>', 'isolated (default), internal, host, or a Docker network name')
    .option('--timeout <seconds>', 'lifetime in seconds', Number)
    .option('--user <name|uid|name:uid>', 'who the agent runs as (e.g. openhands:1000, 0 for root)')
    .option('--working-dir <dir>', "the shell's first directory in the sandbox (default /workspace)")
    .option(
      '--plugins <list>',
      'comma-separated: jupyter, agent_skills, vscode (default jupyter,agent_skills)',
    )
    .option('--oci-runtime <name>', 'OCI runtime, e.g. runsc (the operator must allow it)')
    .option('--json', 'print the sandbox as JSON')
    .action(async (opts, cmd: Command) => {
      const body: CreateSandboxBody = {};
      if (opts.image) body.image = opts.image;
      if (opts.workspace) body.workspace = workspaceDir(opts.workspace, opts.mkdir === true);
      if (opts.volume.length) body.volumes = opts.volume;
      if (opts.env.length) body.env = pairs(opts.env, 'env');
      if (opts.label.length) body.labels = pairs(opts.label, 'label');
      if (opts.cpus || opts.memoryMb || opts.pids || opts.diskMb) {
        body.limits = { cpus: opts.cpus, memory_mb: opts.memoryMb, pids: opts.pids, disk_mb: opts.diskMb };
      }
      if (opts.network) body.network = opts.network;
      if (opts.timeout) body.timeout_seconds = opts.timeout;
      if (opts.user) body.user = parseUser(opts.user);
      if (opts.workingDir) body.working_dir = opts.workingDir;
      if (opts.plugins) body.plugins = opts.plugins.split(',').filter(Boolean);
      if (opts.ociRuntime) body.oci_runtime = opts.ociRuntime;
      const spin = spinner('Starting sandbox', !opts.json && process.stderr.isTTY === true);
      try {
        const s = await cliClient(cmd).sandboxes.create(body);
        spin.stop();
        if (opts.json) printJson(s);
        else process.stdout.write(`${s.id}\n`);
      } catch (err) {
        spin.stop();
        throw err;
      }
    });

  sandbox
    .command('ls')
    .description('List sandboxes')
    .option('--state <state>', 'only sandboxes in this state')
    .option('--label <KEY=VALUE>', 'only sandboxes with this label (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const list = await cliClient(cmd).sandboxes.list({
        state: opts.state as SandboxState | undefined,
        labels: pairs(opts.label, 'label'),
      });
      if (opts.json) printJson(list);
      else printTable(list.map(row), ['ID', 'STATE', 'IMAGE', 'AGE', 'ACTIVE', 'WORKSPACE']);
    });

  for (const [name, desc] of [
    ['pause', 'Pause a sandbox (processes freeze, state is kept)'],
    ['resume', 'Resume a paused or stopped sandbox'],
    ['stop', 'Stop a sandbox (processes end; files and ~/.bashrc stay)'],
    ['reset', "End every process of the sandbox's user and start a fresh shell (files stay)"],
  ] as const) {
    sandbox
      .command(`${name} <id>`)
      .description(desc)
      .option('--json', 'print JSON')
      .action(async (id: string, opts, cmd: Command) => {
        const s = await cliClient(cmd).sandboxes[name](id);
        if (opts.json) printJson(s);
        else process.stdout.write(`${s.id} ${s.state}\n`);
      });
  }

  sandbox
    .command('get <id>')
    .description('Show one sandbox')
    .option('--json', 'print JSON')
    .action(async (id: string, opts, cmd: Command) => {
      const s = await cliClient(cmd).sandboxes.get(id);
      if (opts.json) printJson(s);
      else printTable([row(s)], ['ID', 'STATE', 'IMAGE', 'AGE', 'ACTIVE', 'WORKSPACE']);
    });

  sandbox
    .command('rm <id...>')
    .description('Delete sandboxes (removes their containers)')
    .option('--keep', 'leave the container in place')
    .action(async (ids: string[], opts, cmd: Command) => {
      const c = cliClient(cmd);
      for (const id of ids) {
        await c.sandboxes.delete(id, { keep: opts.keep === true });
        process.stdout.write(`${id} deleted\n`);
      }
    });

  program
    .command('exec <id> <command...>')
    .description(
      "Run a command in a sandbox, like docker exec: a fresh process (not the agent's shell), argv as given, stdout and stderr streamed apart; exits with its exit code (130 on Ctrl-C, 124 on --timeout)",
    )
    .option('-i, --interactive', "pass this terminal's stdin to the command")
    .option('-t, --tty', 'run the command on a PTY (with -i, this terminal in raw mode)')
    .option('-w, --workdir <dir>', 'working directory in the sandbox (default: its working directory)')
    .option('-e, --env <KEY=VALUE>', 'set a variable for the command (repeatable)', collect, [])
    .option(
      '-u, --user <user>',
      'run as this user of the sandbox (a name or uid; others than the sandbox user go through sudo)',
    )
    .option('--timeout <seconds>', 'end the command after this many seconds (exit code 124)', Number)
    .option(
      '--json',
      'print {exit_code, signal, timed_out, stdout, stderr} as JSON at the end instead of streaming',
    )
    .passThroughOptions()
    .action(async (id: string, argv: string[], opts, cmd: Command) => {
      // `exec ID -- CMD ...`: with options passed through, the `--` itself arrives as the first word.
      const words = argv[0] === '--' ? argv.slice(1) : argv;
      if (words.length === 0) throw new Error('exec needs a command to run: berth exec ID [--] CMD [ARG...]');
      await runExec(cliClient(cmd), id, words, opts);
    });

  program
    .command('logs <id>')
    .description("Print a sandbox container's output (its runtime server's log)")
    .option('-n, --tail <lines>', 'lines from the end', Number, 200)
    .option('-f, --follow', 'keep printing new output until the container stops (Ctrl-C to leave)')
    .action(async (id: string, opts: { tail: number; follow?: boolean }, cmd: Command) => {
      const sb = cliClient(cmd).sandbox(id);
      if (!opts.follow) {
        process.stdout.write(await sb.logs(opts.tail));
        return;
      }
      const follow = sb.followLogs((t) => process.stdout.write(t), opts.tail);
      process.once('SIGINT', () => follow.stop());
      await follow.done;
    });

  program
    .command('events <id>')
    .description("Print a sandbox's event log (actions, observations, lifecycle)")
    .option('--after <seq>', 'only events after this sequence number', Number, 0)
    .option('-f, --follow', 'keep printing new events as they are recorded (Ctrl-C to leave)')
    .option('--json', 'one JSON object per line')
    .action(async (id: string, opts: { after: number; follow?: boolean; json?: boolean }, cmd: Command) => {
      const sb = cliClient(cmd).sandbox(id);
      const print = (e: SandboxEvent) =>
        process.stdout.write(opts.json ? `${JSON.stringify(e)}\n` : `${eventLine(e)}\n`);
      let after = opts.after;
      for (;;) {
        const page = await sb.events(after, 1000);
        for (const e of page.events) print(e);
        if (page.events.length === 0) break;
        after = page.next_after;
      }
      if (!opts.follow) return;
      const stop = sb.followEvents(print, after);
      await new Promise<void>((resolve) =>
        process.once('SIGINT', () => {
          stop();
          resolve();
        }),
      );
    });

  program
    .command('shell <id>')
    .description('Open an interactive terminal in a sandbox (Ctrl-] to detach)')
    .option('--session <name>', 'terminal session to attach to', 'cli')
    .action(async (id: string, opts, cmd: Command) => {
      const c = cliClient(cmd);
      await c.sandboxes.get(id);
      const cols = process.stdout.columns ?? 120;
      const rows = process.stdout.rows ?? 32;
      const q = new URLSearchParams({ session: opts.session, cols: String(cols), rows: String(rows) });
      const ws = new WebSocket(`${c.url.replace(/^http/, 'ws')}/api/sandboxes/${id}/terminal?${q}`, {
        headers: c.authHeader(),
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const stdin = process.stdin;
      if (stdin.isTTY) stdin.setRawMode(true);
      stdin.resume();
      const done = new Promise<void>((resolve) => {
        ws.on('close', () => resolve());
      });
      ws.on('message', (raw) => {
        const m = JSON.parse(raw.toString()) as {
          type: string;
          data?: string;
          message?: string;
          code?: number;
        };
        if (m.type === 'output') process.stdout.write(m.data ?? '');
        else if (m.type === 'error') process.stderr.write(`\r\nberth: ${m.message}\r\n`);
        else if (m.type === 'exit') ws.close();
      });
      stdin.on('data', (d: Buffer) => {
        if (d.length === 1 && d[0] === 0x1d)
          ws.close(); // Ctrl-]
        else ws.send(JSON.stringify({ type: 'input', data: d.toString('utf8') }));
      });
      process.stdout.on('resize', () => {
        ws.send(JSON.stringify({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows }));
      });
      await done;
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\r\n[detached]\r\n');
    });
}

interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  workdir?: string;
  env: string[];
  user?: string;
  timeout?: number;
  json?: boolean;
}

/** Exit codes of the CLI itself, as a shell and `timeout(1)` give them. */
const EXIT_INTERRUPTED = 130;
const EXIT_TIMED_OUT = 124;

async function runExec(c: BerthClient, id: string, argv: string[], opts: ExecFlags): Promise<void> {
  if (opts.timeout !== undefined && !(opts.timeout > 0))
    throw new Error('--timeout must be a positive number of seconds');
  // Over REST first: a missing sandbox or a wrong key gets the same clear error as every command.
  await c.sandboxes.get(id);
  const tty = opts.tty === true;
  const stdinIn = opts.interactive === true;
  const out = (stream: NodeJS.WriteStream) => (opts.json ? undefined : (b: Uint8Array) => stream.write(b));
  const proc = c.sandbox(id).exec(argv, {
    ...(opts.workdir ? { cwd: opts.workdir } : {}),
    ...(opts.env.length ? { env: pairs(opts.env, '--env') } : {}),
    ...(opts.user ? { user: opts.user } : {}),
    ...(tty ? { pty: { cols: process.stdout.columns ?? 120, rows: process.stdout.rows ?? 32 } } : {}),
    stdin: stdinIn,
    ...(opts.timeout ? { timeoutMs: Math.round(opts.timeout * 1000) } : {}),
    onStdout: out(process.stdout),
    onStderr: out(process.stderr),
    onPty: out(process.stdout),
    collect: opts.json === true,
  });
  let interrupted = false;
  // Ctrl-C (outside raw mode) ends the remote process group; a second one leaves at once.
  const onSigint = () => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    proc.kill('SIGINT');
  };
  const onSigterm = () => proc.kill('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const stdin = process.stdin;
  const raw = tty && stdinIn && stdin.isTTY;
  const onResize = () => proc.resize(process.stdout.columns ?? 120, process.stdout.rows ?? 32);
  if (tty) process.stdout.on('resize', onResize);
  if (stdinIn) {
    if (raw) stdin.setRawMode(true);
    stdin.on('data', (d: Buffer) => proc.write(d));
    stdin.once('end', () => proc.closeStdin());
    stdin.resume();
  }
  try {
    const result = await proc.done;
    if (opts.json)
      printJson({
        exit_code: result.exitCode,
        signal: result.signal,
        timed_out: result.timedOut,
        stdout: result.stdout,
        stderr: result.stderr,
      });
    if (result.timedOut) {
      process.stderr.write(`berth: the command did not finish in ${opts.timeout} s and was ended\n`);
      process.exitCode = EXIT_TIMED_OUT;
    } else process.exitCode = interrupted ? EXIT_INTERRUPTED : result.exitCode;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    if (tty) process.stdout.off('resize', onResize);
    if (stdinIn) {
      if (raw) stdin.setRawMode(false);
      stdin.pause();
      stdin.removeAllListeners('data');
    }
  }
}
