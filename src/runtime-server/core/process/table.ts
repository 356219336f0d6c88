/**
 * The process table: every child process the runtime server starts is started here and owned here,
 * whichever protocol asked for it (the agent's persistent shell, terminals, one-off shells, the Python
 * kernel, MCP servers, commands run on their own). Each entry knows its id, pid, process group, user,
 * cwd and environment, has a PTY or pipes, and ends through one kill path.
 *
 * Every process leads its own process group (setsid: node-pty does it, pipes use `detached`), so a
 * signal to the group reaches whatever the process started in it, and the server's own group is never
 * hit.
 */
import { type ChildProcess, spawn as spawnChild, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { constants, userInfo } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import * as pty from '@lydell/node-pty';
import { SandboxEnvironment } from './environment.js';
import { OutputBuffer, type OutputPolicy } from './output-buffer.js';
import { findAccount } from './users.js';

/**
 * Time a process gets between the polite signal (SIGTERM, or SIGHUP for a terminal) and SIGKILL: enough
 * to flush files and end its own children, short because someone (an agent's action, a person's Ctrl-C,
 * a reset) waits on it, and a process that ignores the signal is killed anyway.
 */
export const KILL_GRACE_MS = 2000;

/** How long a `sudo kill` for another user's process may take. */
const SUDO_KILL_TIMEOUT_MS = 5000;

/** What started a process; shown in listings and used to find the agent's shell among the others. */
export type ProcessKind = 'shell' | 'terminal' | 'command' | 'kernel' | 'mcp' | 'exec';

export type ProcessIo =
  | { type: 'pty'; cols: number; rows: number /** $TERM and the terminal's name. */; term: string }
  | {
      type: 'pipes';
      /** Whether stdin is a pipe the owner may write to (else /dev/null). */
      stdin: boolean;
      /** Extra pipes after fd 2 (fd 3, 4, ...) for the owner's own protocol. */
      extraFds?: number;
    };

export interface SpawnSpec {
  kind: ProcessKind;
  command: string;
  args: string[];
  cwd: string;
  /** Variables over the sandbox's environment; `null` removes one. */
  env?: Record<string, string | null>;
  /** Only these of the sandbox's variables are passed on (an MCP server's few); default: all. */
  inherit?: readonly string[];
  io: ProcessIo;
  /** Run as this uid (and gid); only a root server can. Default: the server's own user. */
  uid?: number;
  gid?: number;
  /**
   * The command is `sudo ... -- argv` (another user, from an unprivileged server): the group is then
   * root's, so signals go through `sudo -n kill` (sudo passes them on to the command).
   */
  viaSudo?: boolean;
  /** A caller's name for the process, unique among the running ones (E2B's tag, a terminal's id). */
  tag?: string;
  /**
   * Keep stdout and stderr (or the PTY's output) interleaved in a bounded buffer with this policy.
   * Without one the table does not read the streams: the owner does (a kernel's own protocol on its
   * pipes, a shell that parses its prompt markers).
   */
  output?: OutputPolicy;
}

export interface ExitStatus {
  /** The exit code, or 128 + the signal's number for a process a signal ended (as a shell reports it). */
  exitCode: number;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, EACCES). */
  error?: string;
}

export type OutputStream = 'stdout' | 'stderr' | 'pty';

export interface ProcessEvents {
  /** Output, as UTF-8 text; only for PTYs and for processes spawned with an `output` policy. */
  data: [OutputStream, string];
  exit: [ExitStatus];
}

/** The number of a signal, as the exit code 128 + N of a process it ended. */
export function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0;
}

function userName(uid: number): string {
  if (uid === process.getuid?.()) {
    try {
      return userInfo().username;
    } catch {
      // no passwd entry for this uid (an arbitrary SANDBOX_USER_ID)
    }
  }
  return findAccount(String(uid))?.name ?? String(uid);
}

export class ManagedProcess extends EventEmitter<ProcessEvents> {
  readonly pid: number;
  readonly startedAt = new Date();
  readonly uid: number;
  readonly user: string;
  /** The interleaved output, when spawned with an `output` policy. */
  readonly output: OutputBuffer | undefined;
  /** Resolves once the process has exited (or failed to start) and its exit was handled. */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;
  private resolveExited!: (s: ExitStatus) => void;
  private readonly term: pty.IPty | undefined;
  private readonly child: ChildProcess | undefined;

  constructor(
    readonly id: string,
    readonly spec: Readonly<SpawnSpec>,
    readonly env: Readonly<Record<string, string>>,
  ) {
    super();
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    this.uid = spec.uid ?? process.getuid?.() ?? -1;
    this.user = userName(this.uid);
    this.output = spec.output ? new OutputBuffer(spec.output) : undefined;
    const ids = {
      ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      ...(spec.gid === undefined ? {} : { gid: spec.gid }),
    };
    if (spec.io.type === 'pty') {
      this.term = pty.spawn(spec.command, spec.args, {
        name: spec.io.term,
        cols: spec.io.cols,
        rows: spec.io.rows,
        cwd: spec.cwd,
        env: this.env,
        ...ids,
      });
      this.pid = this.term.pid;
      this.term.onData((d) => this.onData('pty', d));
      this.term.onExit(({ exitCode, signal }) => {
        const name = signal ? signalName(signal) : null;
        this.finish({ exitCode: name ? 128 + signal! : exitCode, signal: name });
      });
    } else {
      const extra = Array.from({ length: spec.io.extraFds ?? 0 }, () => 'pipe' as const);
      this.child = spawnChild(spec.command, spec.args, {
        cwd: spec.cwd,
        env: this.env,
        detached: true,
        stdio: [spec.io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...extra],
        ...ids,
      });
      this.pid = this.child.pid ?? -1;
      // A program that closes its stdin while input is still coming (`yes | head -1`) makes the next
      // write fail with EPIPE; that, or a stream torn down at exit, must not take the server down.
      for (const stream of this.child.stdio) stream?.on('error', () => undefined);
      if (this.output) {
        this.child.stdout?.setEncoding('utf8').on('data', (d: string) => this.onData('stdout', d));
        this.child.stderr?.setEncoding('utf8').on('data', (d: string) => this.onData('stderr', d));
      }
      this.child.once('error', (err) => this.finish({ exitCode: -1, signal: null, error: err.message }));
      // Where the table reads the output, the exit waits for the streams' end ('close'), so every chunk
      // was delivered first (a background job holding them open holds the exit too, as with a shell's
      // command substitution). An owner reading its own streams gets the exit as it happens.
      this.child.once(this.output ? 'close' : 'exit', (code: number | null, signal: NodeJS.Signals | null) =>
        this.finish({ exitCode: code ?? (signal ? 128 + signalNumber(signal) : -1), signal }),
      );
    }
  }

  get kind(): ProcessKind {
    return this.spec.kind;
  }

  get tag(): string | undefined {
    return this.spec.tag;
  }

  get cwd(): string {
    return this.spec.cwd;
  }

  /** The process group: the process leads its own. */
  get pgid(): number {
    return this.pid;
  }

  get alive(): boolean {
    return this.status === undefined;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** stdin, stdout, stderr and the extra fds, for an owner that speaks its own protocol over pipes. */
  get stdio(): ChildProcess['stdio'] {
    if (!this.child) throw new Error(`process ${this.id} has a PTY, not pipes`);
    return this.child.stdio;
  }

  get stdin(): Writable | null {
    return this.child?.stdin ?? null;
  }

  get stdout(): Readable | null {
    return this.child?.stdout ?? null;
  }

  get stderr(): Readable | null {
    return this.child?.stderr ?? null;
  }

  /**
   * Resolves once the process has exited and its stdout and stderr pipes have ended (every chunk was
   * read): a pipe's end comes after the exit, and waits for whatever the process left holding it.
   */
  async finished(): Promise<ExitStatus> {
    const status = await this.exited;
    // A process that never started has no output to wait for.
    if (!status.error) await Promise.all([ended(this.child?.stdout), ended(this.child?.stderr)]);
    return status;
  }

  /** Resolves once the process runs; rejects if it could not be started. */
  started(): Promise<void> {
    if (!this.child) return Promise.resolve();
    if (this.status?.error) return Promise.reject(new Error(this.status.error));
    if (this.child.pid !== undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.child!.once('spawn', resolve);
      this.child!.once('error', reject);
    });
  }

  /** Input for the process: to its PTY, or its stdin pipe. */
  write(data: string | Buffer): void {
    if (!this.alive) return;
    if (this.term) this.term.write(typeof data === 'string' ? data : data.toString('utf8'));
    else if (this.child?.stdin && !this.child.stdin.destroyed) this.child.stdin.write(data);
  }

  /** End of input: EOF on the stdin pipe, or Ctrl-D on a PTY. */
  closeStdin(): void {
    if (this.term) this.write('\x04');
    else this.child?.stdin?.end();
  }

  resize(cols: number, rows: number): void {
    if (this.term && this.alive) this.term.resize(cols, rows);
  }

  /**
   * Sends a signal to the process group (falling back to the process); false if neither is there.
   * After the leader's exit only its lingering group members are signalled, and only while its pid is
   * free: a reused pid could lead another group.
   */
  signal(signal: NodeJS.Signals): boolean {
    if (this.pid <= 0) return false;
    if (!this.alive) return this.signalLingeringGroup(signal);
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM' && this.spec.viaSudo)
        return this.signalWithSudo(signal);
      try {
        process.kill(this.pid, signal);
        return true;
      } catch {
        return false;
      }
    }
  }

  /**
   * The one kill path: `first` to the group, SIGKILL after KILL_GRACE_MS if the process is still there,
   * and SIGKILL once more to the group after it exited, for members that outlived their leader.
   * Resolves with the exit status.
   */
  async terminate(first: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    if (this.alive) {
      this.signal(first);
      const timer = first === 'SIGKILL' ? undefined : setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
      await this.exited;
      if (timer) clearTimeout(timer);
    }
    this.signalLingeringGroup('SIGKILL');
    return this.exited;
  }

  private signalLingeringGroup(signal: NodeJS.Signals): boolean {
    // The leader is gone; while no process has its pid, no other group can have that id.
    if (this.pid <= 0 || existsSync(`/proc/${this.pid}`)) return false;
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM' && this.spec.viaSudo)
        return this.signalWithSudo(signal);
      return false;
    }
  }

  private signalWithSudo(signal: NodeJS.Signals): boolean {
    // This server's own Node.js as root, not kill(1): procps' kill takes no negative pid (a group).
    const script = 'process.kill(-Number(process.argv[1]), process.argv[2])';
    const r = spawnSync('sudo', ['-n', process.execPath, '-e', script, String(this.pid), signal], {
      stdio: 'ignore',
      timeout: SUDO_KILL_TIMEOUT_MS,
    });
    return r.status === 0;
  }

  private onData(stream: OutputStream, data: string): void {
    this.output?.append(data);
    this.emit('data', stream, data);
  }

  private finish(status: ExitStatus): void {
    if (this.status) return;
    this.status = status;
    this.emit('exit', status);
    this.resolveExited(status);
  }
}

function ended(stream: Readable | null | undefined): Promise<void> {
  if (!stream || stream.destroyed || stream.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', resolve);
  });
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(constants.signals)) if (num === n) return name as NodeJS.Signals;
  return null;
}

export class ProcessTable {
  private readonly entries = new Map<string, ManagedProcess>();
  private nextId = 1;

  /** The environment every process starts from; the sandbox's variables are set on it. */
  constructor(readonly environment: SandboxEnvironment = new SandboxEnvironment()) {}

  spawn(spec: SpawnSpec): ManagedProcess {
    if (spec.tag !== undefined && this.byTag(spec.tag))
      throw new Error(`a running process already has the tag "${spec.tag}"`);
    const env = this.environment.forProcess(spec.env, spec.inherit);
    const entry = new ManagedProcess(`p${this.nextId++}`, spec, env);
    this.entries.set(entry.id, entry);
    entry.once('exit', () => this.entries.delete(entry.id));
    if (!entry.alive) this.entries.delete(entry.id);
    return entry;
  }

  get(id: string): ManagedProcess | undefined {
    return this.entries.get(id);
  }

  byPid(pid: number): ManagedProcess | undefined {
    for (const e of this.entries.values()) if (e.pid === pid) return e;
    return undefined;
  }

  byTag(tag: string): ManagedProcess | undefined {
    for (const e of this.entries.values()) if (e.tag === tag) return e;
    return undefined;
  }

  /** The running processes, oldest first. */
  list(kind?: ProcessKind): ManagedProcess[] {
    const all = [...this.entries.values()];
    return kind ? all.filter((e) => e.kind === kind) : all;
  }

  /** Ends every process (the server is going away). */
  async dispose(): Promise<void> {
    await Promise.allSettled(
      this.list().map((e) => e.terminate(e.spec.io.type === 'pty' ? 'SIGHUP' : 'SIGTERM')),
    );
  }
}
