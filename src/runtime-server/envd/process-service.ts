/**
 * envd's `process.Process` service on the process table: Start (a stream of start, output and end
 * events), Connect (the same stream for a running process, by pid or tag), List, SendInput,
 * CloseStdin, SendSignal and Update (a PTY's size). A process started here is an ordinary entry of
 * the table, beside the agent's shell and the execs; it outlives the stream that started it (a client
 * may go and Connect again), and ends at its Connect-Timeout-Ms deadline, as envd's do.
 *
 * Output is sent as it comes, as raw bytes (base64 in JSON) for pipes; a stream that attaches later
 * gets what is produced from then on, as envd does.
 */
import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConnectError } from '../../protocol/connect.js';
import type { ExitStatus, ManagedProcess, ProcessTable } from '../core/process/table.js';
import { spawnAs } from '../core/process/users.js';
import type { EnvdCall, EnvdService } from './routes.js';
import type { EnvdUser } from './users.js';

/** What envd calls a process's configuration: echoed back by List. */
interface ProcessConfig {
  cmd: string;
  args: string[];
  envs: Record<string, string>;
  cwd?: string;
}

/** One event of a process stream, as `ProcessEvent` in JSON. */
type ProcessEvent =
  | { start: { pid: number } }
  | { data: { stdout: string } | { stderr: string } | { pty: string } }
  | { end: { exitCode: number; exited: boolean; status: string; error?: string } };

/** Go's names for the signals a process can end by (ProcessState.String(): "signal: killed"). */
const GO_SIGNAL_NAMES: Partial<Record<NodeJS.Signals, string>> = {
  SIGKILL: 'killed',
  SIGTERM: 'terminated',
  SIGINT: 'interrupt',
  SIGHUP: 'hangup',
  SIGQUIT: 'quit',
  SIGPIPE: 'broken pipe',
  SIGABRT: 'aborted',
  SIGSEGV: 'segmentation fault',
  SIGUSR1: 'user defined signal 1',
  SIGUSR2: 'user defined signal 2',
  SIGALRM: 'alarm clock',
};

/** The signals SendSignal may carry, by their enum name and number. */
const SIGNALS: Record<string, NodeJS.Signals> = {
  SIGNAL_SIGKILL: 'SIGKILL',
  SIGNAL_SIGTERM: 'SIGTERM',
  9: 'SIGKILL',
  15: 'SIGTERM',
};

/** Largest PTY side accepted, as for Berth's terminals. */
const MAX_PTY_COLS = 1000;
const MAX_PTY_ROWS = 500;

/** A stream's send (see StreamMethod): a promise when the client is behind. */
type Send = (message: unknown) => Promise<void> | undefined;

/** Hears a process's events; answers a promise when its client is behind (the pipes then wait). */
type Listener = (e: ProcessEvent) => Promise<void> | undefined;

class EnvdProcess {
  private readonly listeners = new Set<Listener>();
  /** Pauses of the pipes under way: one per event some client was behind on. */
  private pauses = 0;
  /** Set once the end event was sent: no listener added later would hear anything more. */
  end: ProcessEvent | undefined;

  constructor(
    readonly proc: ManagedProcess,
    readonly config: ProcessConfig,
  ) {
    const relay = (stream: 'stdout' | 'stderr') => (chunk: Buffer) =>
      this.emit({ data: { [stream]: chunk.toString('base64') } as { stdout: string } });
    if (proc.spec.io.type === 'pty') {
      proc.on('data', (_s, text) =>
        this.emit({ data: { pty: Buffer.from(text, 'utf8').toString('base64') } }),
      );
    } else {
      // Read listened to or not (a process nobody is attached to must not block on a full pipe); an
      // attached client that reads slowly holds the pipes back (see emit).
      proc.stdout?.on('data', relay('stdout'));
      proc.stderr?.on('data', relay('stderr'));
    }
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Calls `listener` with every event from now on; returns the unsubscribe. */
  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: ProcessEvent): void {
    if ('end' in event) this.end = event;
    const behind: Promise<void>[] = [];
    for (const l of this.listeners) {
      const wait = l(event);
      if (wait) behind.push(wait);
    }
    // Pipes (not a PTY) wait for the slowest attached client; with none attached they are read on.
    if (behind.length === 0 || this.proc.spec.io.type === 'pty') return;
    if (this.pauses++ === 0) {
      this.proc.stdout?.pause();
      this.proc.stderr?.pause();
    }
    void Promise.all(behind).then(() => {
      if (--this.pauses === 0) {
        this.proc.stdout?.resume();
        this.proc.stderr?.resume();
      }
    });
  }
}

export class ProcessService {
  private readonly byPid = new Map<number, EnvdProcess>();

  constructor(private readonly table: ProcessTable) {}

  methods(): EnvdService {
    return {
      // StartResponse and ConnectResponse wrap a ProcessEvent in their `event` field.
      keepalive: { event: { keepalive: {} } },
      streams: {
        Start: (call, send) => this.start(call, send),
        Connect: (call, send) => this.connect(call, send),
      },
      unary: {
        List: () => ({
          processes: [...this.byPid.values()].map((p) => ({
            config: p.config,
            pid: p.pid,
            ...(p.proc.tag === undefined ? {} : { tag: p.proc.tag }),
          })),
        }),
        SendInput: (call) => {
          const p = this.find(call.message?.process);
          const input = call.message?.input ?? {};
          const data = input.pty ?? input.stdin;
          if (typeof data !== 'string')
            throw new ConnectError('invalid_argument', 'input.stdin or input.pty is required');
          if (!p.proc.alive) throw new ConnectError('not_found', `process ${p.pid} has exited`);
          p.proc.write(Buffer.from(data, 'base64'));
          return {};
        },
        CloseStdin: (call) => {
          const p = this.find(call.message?.process);
          if (p.proc.spec.io.type === 'pty')
            throw new ConnectError(
              'failed_precondition',
              'a PTY has no stdin to close; send Ctrl-D as input',
            );
          p.proc.closeStdin();
          return {};
        },
        SendSignal: (call) => {
          const p = this.find(call.message?.process);
          const signal = SIGNALS[String(call.message?.signal)];
          if (!signal)
            throw new ConnectError('invalid_argument', `unsupported signal ${String(call.message?.signal)}`);
          if (!p.proc.signal(signal)) throw new ConnectError('not_found', `process ${p.pid} is gone`);
          return {};
        },
        Update: (call) => {
          const p = this.find(call.message?.process);
          const size = call.message?.pty?.size;
          if (size) {
            if (p.proc.spec.io.type !== 'pty')
              throw new ConnectError('failed_precondition', `process ${p.pid} has no PTY`);
            p.proc.resize(clamp(size.cols, MAX_PTY_COLS), clamp(size.rows, MAX_PTY_ROWS));
          }
          return {};
        },
      },
    };
  }

  private async start(call: EnvdCall, send: Send): Promise<void> {
    const msg = call.message ?? {};
    const config = processConfig(msg.process);
    const cwd = workingDir(config.cwd, call.user);
    const size = msg.pty?.size;
    const tag = typeof msg.tag === 'string' && msg.tag !== '' ? msg.tag : undefined;
    if (tag !== undefined && this.table.byTag(tag))
      throw new ConnectError('already_exists', `a running process already has the tag "${tag}"`);
    const env: Record<string, string> = {
      HOME: call.user.account.home,
      USER: call.user.account.name,
      LOGNAME: call.user.account.name,
      E2B_SANDBOX: 'true',
      ...(size ? { TERM: 'xterm-256color' } : {}),
      ...config.envs,
    };
    const as = call.user.runAs;
    // Through sudo the sandbox's variables and the request's pass sudo's reset by name.
    const keep = [...new Set([...Object.keys(this.table.environment.variables), ...Object.keys(env)])];
    const proc = this.table.spawn({
      kind: 'exec',
      ...spawnAs(as, [config.cmd, ...config.args], cwd, keep),
      env,
      ...(tag === undefined ? {} : { tag }),
      io: size
        ? {
            type: 'pty',
            cols: clamp(size.cols, MAX_PTY_COLS),
            rows: clamp(size.rows, MAX_PTY_ROWS),
            term: 'xterm-256color',
          }
        : { type: 'pipes', stdin: msg.stdin === true },
    });
    const entry = new EnvdProcess(proc, config);
    // Events that come before the start event is sent wait for it.
    const early: ProcessEvent[] = [];
    let started = false;
    const unlisten = entry.listen((e) => {
      if (started) return send({ event: e });
      early.push(e);
      return undefined;
    });
    try {
      await proc.started();
    } catch (err) {
      unlisten();
      throw new ConnectError('invalid_argument', `cannot start ${config.cmd}: ${(err as Error).message}`);
    }
    this.byPid.set(entry.pid, entry);
    const deadline =
      call.timeoutMs === undefined
        ? undefined
        : setTimeout(() => void proc.terminate('SIGKILL'), call.timeoutMs);
    void proc.finished().then((status) => {
      if (deadline) clearTimeout(deadline);
      entry.emit({ end: endEvent(status) });
      this.byPid.delete(entry.pid);
    });
    send({ event: { start: { pid: entry.pid } } });
    started = true;
    for (const e of early) send({ event: e });
    await this.follow(entry, call, send, unlisten);
  }

  private async connect(call: EnvdCall, send: Send): Promise<void> {
    const entry = this.find(call.message?.process);
    send({ event: { start: { pid: entry.pid } } });
    await this.follow(
      entry,
      call,
      send,
      entry.listen((e) => send({ event: e })),
    );
  }

  /** Until the process's end was sent, or the client went away (the process runs on). */
  private follow(entry: EnvdProcess, call: EnvdCall, send: Send, unlisten: () => void): Promise<void> {
    return new Promise((done) => {
      const finish = () => {
        stop();
        unlisten();
        done();
      };
      const stopEnd = entry.listen((e) => {
        if ('end' in e) finish();
      });
      const onAbort = () => finish();
      call.signal.addEventListener('abort', onAbort, { once: true });
      const stop = () => {
        stopEnd();
        call.signal.removeEventListener('abort', onAbort);
      };
      // Ended between the lookup and now: its end was sent to nobody here.
      if (entry.end) {
        send({ event: entry.end });
        finish();
      }
    });
  }

  private find(selector: unknown): EnvdProcess {
    const sel = (selector ?? {}) as { pid?: unknown; tag?: unknown };
    if (typeof sel.pid === 'number') {
      const p = this.byPid.get(sel.pid);
      if (p) return p;
      throw new ConnectError('not_found', `process with pid ${sel.pid} not found`);
    }
    if (typeof sel.tag === 'string') {
      for (const p of this.byPid.values()) if (p.proc.tag === sel.tag) return p;
      throw new ConnectError('not_found', `process with tag ${sel.tag} not found`);
    }
    throw new ConnectError('invalid_argument', 'process.pid or process.tag is required');
  }
}

function processConfig(raw: unknown): ProcessConfig {
  const p = (raw ?? {}) as Record<string, unknown>;
  if (typeof p.cmd !== 'string' || p.cmd === '')
    throw new ConnectError('invalid_argument', 'process.cmd is required');
  const args = p.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string'))
    throw new ConnectError('invalid_argument', 'process.args must be a list of strings');
  const envs = p.envs ?? {};
  if (typeof envs !== 'object' || envs === null || Object.values(envs).some((v) => typeof v !== 'string'))
    throw new ConnectError('invalid_argument', 'process.envs must map names to strings');
  return {
    cmd: p.cmd,
    args: args as string[],
    envs: envs as Record<string, string>,
    ...(typeof p.cwd === 'string' && p.cwd !== '' ? { cwd: p.cwd } : {}),
  };
}

/** The cwd asked for (relative to the user's home), else the home, as envd has it. */
function workingDir(cwd: string | undefined, user: EnvdUser): string {
  const home = user.account.home;
  const dir =
    cwd === undefined ? home : isAbsolute(cwd) ? cwd : resolve(home, cwd.replace(/^~(?=\/|$)/, '.'));
  // Said here: a missing cwd otherwise reads as the program's own ENOENT.
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ConnectError('invalid_argument', `the working directory ${dir} does not exist in the sandbox`);
  return dir;
}

function endEvent(status: ExitStatus): { exitCode: number; exited: boolean; status: string; error?: string } {
  if (status.error) return { exitCode: -1, exited: false, status: 'error', error: status.error };
  if (status.signal)
    return {
      exitCode: -1,
      exited: false,
      status: `signal: ${GO_SIGNAL_NAMES[status.signal] ?? status.signal}`,
    };
  return { exitCode: status.exitCode, exited: true, status: `exit status ${status.exitCode}` };
}

function clamp(n: unknown, max: number): number {
  const v = Math.round(Number(n));
  return Number.isFinite(v) ? Math.min(max, Math.max(1, v)) : 80;
}
