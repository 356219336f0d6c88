/**
 * A persistent Python process that runs cells one at a time, like the reference's Jupyter kernel but without
 * a kernel gateway: the driver (driver-source.ts) talks JSON lines over fds 3 and 4, and the cell's output
 * arrives on one stdout pipe that also carries stderr.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { COMMAND_OUTPUT, OutputBuffer } from '../process/output-buffer.js';
import type { ManagedProcess, ProcessTable } from '../process/table.js';
import { stripEscapes } from '../shell/terminal-text.js';
import { KERNEL_DRIVER_SOURCE } from './driver-source.js';
import { type HostCalls, serveHostCalls } from './host-calls.js';
import type { CellRequest, CellResult } from './types.js';

/** Time a cell gets to stop after SIGINT before the kernel is killed; a cell may catch KeyboardInterrupt. */
export const INTERRUPT_GRACE_MS = 5_000;
/** Importing IPython in a cold container takes seconds; a kernel not ready by then is assumed stuck. */
export const KERNEL_START_TIMEOUT_MS = 60_000;
/** After the kernel exits, its last output may still be in the pipe; wait this long for it at most. */
const EXIT_DRAIN_MS = 200;
/** Bytes of the driver's own stderr (before it joins stdout) kept to explain a failed start. */
const STARTUP_STDERR_CHARS = 4 * 1024;
/** setTimeout fires immediately for delays above this, so longer timeouts are clamped to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const PYTHON_CANDIDATES = ['python3', 'python'];
const CONTROL_IN_FD = 3;
const CONTROL_OUT_FD = 4;

export interface KernelLogger {
  warn(...args: unknown[]): void;
}

export interface PythonKernelOptions {
  /** The table the kernel's processes are started in and owned by. */
  processes: ProcessTable;
  /** Interpreter to run; default: the first of python3, python on the PATH of `env`. */
  pythonPath?: string;
  /** Variables over the sandbox's environment for the kernel process. */
  env?: Record<string, string>;
  logger?: KernelLogger;
  /** @default INTERRUPT_GRACE_MS */
  interruptGraceMs?: number;
  /** Functions the kernel's code may call in this process (see host-calls.ts); none: no such pipes. */
  hostCalls?: HostCalls;
  /** A cell run in every new kernel process before the first real cell (plugins), in `cwd`; its output is not shown. */
  startup?: { code: string; cwd: string };
}

const noopLogger: KernelLogger = { warn() {} };

export class PythonKernel {
  private readonly processes: ProcessTable;
  private readonly envOverrides: Record<string, string>;
  private readonly logger: KernelLogger;
  private readonly interruptGraceMs: number;
  private readonly explicitPythonPath: string | undefined;
  private readonly hostCalls: HostCalls | undefined;
  private readonly startup: { code: string; cwd: string } | undefined;
  private process: KernelProcess | undefined;
  /** Cells run strictly one after another; each run waits for the previous one. */
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private interpreter = '';

  constructor(opts: PythonKernelOptions) {
    this.processes = opts.processes;
    this.envOverrides = opts.env ?? {};
    this.logger = opts.logger ?? noopLogger;
    this.interruptGraceMs = opts.interruptGraceMs ?? INTERRUPT_GRACE_MS;
    this.explicitPythonPath = opts.pythonPath;
    this.hostCalls = opts.hostCalls;
    this.startup = opts.startup;
  }

  /** Runs one cell, after any cells already queued. Rejects only when disposed or no kernel can start. */
  run(req: CellRequest): Promise<CellResult> {
    const result = this.queue.then(() => this.runNow(req));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Kills the kernel and everything in its process group. Later runs reject. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const proc = this.process;
    this.process = undefined;
    await proc?.kill();
  }

  private async runNow(req: CellRequest): Promise<CellResult> {
    const proc = await this.ensureStarted();
    const cell = proc.execute(req.code, req.cwd);
    let timedOut = false;
    let killedAfterInterrupt = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const timeoutTimer = Number.isFinite(req.timeoutMs)
      ? setTimeout(
          () => {
            timedOut = true;
            // The caller gets the output up to the timeout; the KeyboardInterrupt traceback is noise.
            cell.capture.freeze();
            proc.interrupt();
            graceTimer = setTimeout(() => {
              killedAfterInterrupt = true;
              this.logger.warn('python kernel: cell ignored the interrupt; killing the kernel');
              void proc.kill();
            }, this.interruptGraceMs);
          },
          Math.min(Math.max(req.timeoutMs, 0), MAX_TIMER_MS),
        )
      : undefined;
    let end: CellEnd;
    try {
      end = await cell.end;
    } finally {
      clearTimeout(timeoutTimer);
      clearTimeout(graceTimer);
    }

    // CRLF comes from IPython running shell escapes on a pty; agents read plain newlines.
    const raw = cell.capture.text();
    let text = stripEscapes(raw).replaceAll('\r\n', '\n').trimEnd();
    if (end.kind === 'exited') {
      if (this.process === proc) this.process = undefined;
      let note: string;
      if (killedAfterInterrupt) {
        note =
          '[The cell did not stop after the interrupt, so the Python kernel was killed and restarted; ' +
          'variables and imports from earlier cells are lost.]';
      } else if (this.disposed) {
        note = '[The Python kernel was shut down.]';
      } else {
        this.logger.warn(`python kernel died during a cell (${end.reason})`);
        note = `[The Python kernel died (${end.reason}) and was restarted; variables and imports from earlier cells are lost.]`;
      }
      text = text ? `${text}\n${note}` : note;
    }
    return {
      text,
      hadOutput: raw.length > 0 || text.length > 0,
      imageUrls: end.kind === 'done' ? end.images : [],
      timedOut,
      interpreter: this.interpreter,
    };
  }

  private async ensureStarted(): Promise<KernelProcess> {
    if (this.disposed) throw new Error('The Python kernel has been disposed');
    if (this.process?.alive) return this.process;
    const env = this.processes.environment.forProcess(this.envOverrides);
    const pythonPath = this.explicitPythonPath ?? findPython(env);
    const child = this.processes.spawn({
      kind: 'kernel',
      command: pythonPath,
      args: ['-u', '-c', KERNEL_DRIVER_SOURCE],
      // The server's own, as before there was a cell; each cell then goes to its own cwd.
      cwd: process.cwd(),
      env: { ...this.envOverrides, PYTHONIOENCODING: env.PYTHONIOENCODING ?? 'utf-8' },
      // stdin is /dev/null so input() gets EOF; fds 3 and 4 are the control channel.
      // fds 5 and 6, when there are host calls, are theirs (host-calls.ts).
      io: { type: 'pipes', stdin: false, extraFds: this.hostCalls ? 4 : 2 },
    });
    const proc = new KernelProcess(child, this.logger);
    if (this.hostCalls) serveHostCalls(child, this.hostCalls, this.logger);
    this.process = proc;
    try {
      const info = await proc.ready;
      this.interpreter = info.interpreter;
      if (this.startup) await this.runStartup(proc, this.startup);
      return proc;
    } catch (err) {
      if (this.process === proc) this.process = undefined;
      await proc.kill();
      if (this.disposed) throw new Error('The Python kernel has been disposed');
      throw new Error(`The Python kernel (${pythonPath}) could not start: ${(err as Error).message}`);
    }
  }

  /** Runs the startup cell; a kernel that dies in it failed to start, one that only prints is logged. */
  private async runStartup(proc: KernelProcess, startup: { code: string; cwd: string }): Promise<void> {
    const cell = proc.execute(startup.code, startup.cwd);
    const end = await cell.end;
    proc.forgetCwd();
    const text = stripEscapes(cell.capture.text()).trim();
    if (end.kind === 'exited') throw new Error(`the startup cell ended the kernel (${end.reason}): ${text}`);
    if (text) this.logger.warn('python kernel: the startup cell printed', text.slice(0, 2000));
  }
}

/** The first python3 or python on PATH, as an absolute path. */
function findPython(env: NodeJS.ProcessEnv): string {
  const dirs = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const name of PYTHON_CANDIDATES) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      try {
        accessSync(candidate, fsConstants.X_OK);
        return candidate;
      } catch {
        // not here; keep looking
      }
    }
  }
  throw new Error(`No ${PYTHON_CANDIDATES.join(' or ')} found on PATH`);
}

interface ReadyInfo {
  interpreter: string;
  ipython: boolean;
}

type CellEnd = { kind: 'done'; images: string[] } | { kind: 'exited'; reason: string };

interface RunningCell {
  id: number;
  capture: OutputCapture;
  markerSeen: boolean;
  /** The driver is inside the cell, so SIGINT lands as KeyboardInterrupt in it. */
  started: boolean;
  interruptRequested: boolean;
  reply: { images: string[]; markerWritten: boolean } | undefined;
  resolve(end: CellEnd): void;
}

/** One Python process. Owned by PythonKernel, which replaces it when it dies. */
class KernelProcess {
  readonly ready: Promise<ReadyInfo>;
  private readonly control: Writable;
  private resolveReady!: (info: ReadyInfo) => void;
  private rejectReady!: (err: Error) => void;
  private readyDone = false;
  private exited = false;
  private readonly exitedPromise: Promise<void>;
  private resolveExited!: () => void;
  private cell: RunningCell | undefined;
  private nextCellId = 1;
  private controlBuffer = '';
  private startupStderr = '';
  /**
   * The directory this process was last sent to (unset: none yet). As the reference syncs its
   * kernel, a cell changes directory only when its cwd (the shell's) differs from that, so a cell's
   * own os.chdir lasts into the next cells until the shell's cwd changes.
   */
  private syncedCwd: string | undefined;

  constructor(
    private readonly child: ManagedProcess,
    private readonly logger: KernelLogger,
  ) {
    this.ready = new Promise<ReadyInfo>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // A start failure is reported through ensureStarted; nobody else awaits this promise.
    this.ready.catch(() => undefined);
    this.exitedPromise = new Promise<void>((resolve) => {
      this.resolveExited = resolve;
    });

    this.control = child.stdio[CONTROL_IN_FD] as Writable;
    const replies = child.stdio[CONTROL_OUT_FD] as Readable;
    const stdout = child.stdout as Readable;
    const stderr = child.stderr as Readable;
    stdout.setEncoding('utf8');
    stderr.setEncoding('utf8');
    replies.setEncoding('utf8');
    stdout.on('data', (data: string) => this.onOutput(1, data));
    // Before the driver is ready, stderr explains a failed start; then it is the cells' stderr.
    stderr.on('data', (data: string) => {
      if (this.readyDone) this.onOutput(2, data);
      else if (this.startupStderr.length < STARTUP_STDERR_CHARS) this.startupStderr += data;
    });
    replies.on('data', (data: string) => this.onReplies(data));
    // EPIPE and friends after the process died; the exit handler reports the death.
    for (const stream of [this.control, replies, stdout, stderr]) stream.on('error', () => undefined);

    const startTimer = setTimeout(() => {
      if (this.readyDone) return;
      this.failReady(new Error(`not ready after ${KERNEL_START_TIMEOUT_MS} ms`));
      void this.kill();
    }, KERNEL_START_TIMEOUT_MS);
    child.once('exit', ({ exitCode, signal, error }) => {
      clearTimeout(startTimer);
      void this.onExit(error ?? (signal ? `killed by ${signal}` : `exit code ${exitCode}`), stdout);
    });
  }

  get alive(): boolean {
    return !this.exited;
  }

  execute(code: string, cwd: string): { capture: OutputCapture; end: Promise<CellEnd> } {
    if (this.cell) throw new Error('A cell is already running in this kernel');
    const id = this.nextCellId++;
    // Random per cell, so neither a cell's own output nor an earlier cell's late output can end it.
    const nonce = randomBytes(16).toString('hex');
    const marker = `\x1e<berth-cell-end ${nonce}>\x1e`;
    const sync = `\x1e<berth-sync ${nonce} `;
    const capture = new OutputCapture(marker, sync);
    const end = new Promise<CellEnd>((resolve) => {
      this.cell = {
        id,
        capture,
        markerSeen: false,
        started: false,
        interruptRequested: false,
        reply: undefined,
        resolve,
      };
    });
    if (this.exited) {
      this.finishCell({ kind: 'exited', reason: 'the kernel was not running' });
    } else {
      const chdir = cwd === this.syncedCwd ? null : cwd;
      this.syncedCwd = cwd;
      this.control.write(`${JSON.stringify({ id, code, cwd: chdir, marker, sync })}\n`);
    }
    return { capture, end };
  }

  /** The next cell changes directory whatever its cwd (the startup cell is not the reference's sync). */
  forgetCwd(): void {
    this.syncedCwd = undefined;
  }

  /**
   * SIGINT to the whole group, as Jupyter does: the cell gets KeyboardInterrupt, its children stop too.
   * Held back until the driver has entered the cell, because the driver ignores SIGINT outside cells.
   */
  interrupt(): void {
    const cell = this.cell;
    if (!cell) return;
    cell.interruptRequested = true;
    if (cell.started) this.signalGroup('SIGINT');
  }

  /** Kills the process and its group; resolves once the exit has been handled. */
  kill(): Promise<void> {
    if (!this.exited) void this.child.terminate('SIGKILL');
    return this.exitedPromise;
  }

  private signalGroup(signal: NodeJS.Signals): void {
    this.child.signal(signal);
  }

  private onOutput(fd: 1 | 2, data: string): void {
    const cell = this.cell;
    // Output between cells (a background thread or process of an earlier cell) belongs to no cell.
    if (!cell || cell.markerSeen) return;
    if (cell.capture.push(fd, data)) {
      cell.markerSeen = true;
      this.maybeFinishCell();
    }
  }

  private onReplies(data: string): void {
    this.controlBuffer += data;
    let newline = this.controlBuffer.indexOf('\n');
    while (newline >= 0) {
      const line = this.controlBuffer.slice(0, newline);
      this.controlBuffer = this.controlBuffer.slice(newline + 1);
      if (line.trim()) this.onReply(line);
      newline = this.controlBuffer.indexOf('\n');
    }
  }

  private onReply(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.logger.warn('python kernel: unparsable control line', line.slice(0, 200));
      return;
    }
    if (message.type === 'ready') {
      this.readyDone = true;
      this.resolveReady({
        interpreter: String(message.interpreter ?? ''),
        ipython: message.ipython === true,
      });
    } else if (message.type === 'started') {
      const cell = this.cell;
      if (!cell || message.id !== cell.id) return;
      cell.started = true;
      if (cell.interruptRequested) this.signalGroup('SIGINT');
    } else if (message.type === 'done') {
      const cell = this.cell;
      if (!cell || message.id !== cell.id) {
        this.logger.warn('python kernel: reply for a cell that is not running', message.id);
        return;
      }
      const images = Array.isArray(message.images)
        ? message.images.filter((x): x is string => typeof x === 'string')
        : [];
      cell.reply = { images, markerWritten: message.markerWritten !== false };
      this.maybeFinishCell();
    } else {
      this.logger.warn('python kernel: unknown control message', message.type);
    }
  }

  private maybeFinishCell(): void {
    const cell = this.cell;
    if (!cell?.reply) return;
    // Both pipes are read independently: the cell is over once its reply and its end marker are both in.
    if (cell.markerSeen || !cell.reply.markerWritten) {
      // Without the markers (the cell closed fd 1 or 2), what was read so far is the output.
      if (!cell.markerSeen) cell.capture.endOfStream();
      this.finishCell({ kind: 'done', images: cell.reply.images });
    }
  }

  private finishCell(end: CellEnd): void {
    const cell = this.cell;
    if (!cell) return;
    this.cell = undefined;
    cell.resolve(end);
  }

  private async onExit(reason: string, stdout: Readable): Promise<void> {
    if (this.exited) return;
    this.exited = true;
    // Whatever the cell left running in the group goes with the kernel.
    this.signalGroup('SIGKILL');
    if (!stdout.readableEnded) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, EXIT_DRAIN_MS);
        stdout.once('end', () => {
          clearTimeout(timer);
          resolve();
        });
        stdout.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const stderrText = this.startupStderr.trim();
    this.failReady(new Error(stderrText ? `${reason}: ${stderrText}` : reason));
    this.cell?.capture.endOfStream();
    this.finishCell({ kind: 'exited', reason });
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.control.destroy();
    (this.child.stdio[CONTROL_OUT_FD] as Readable | null)?.destroy();
    this.resolveExited();
  }

  private failReady(err: Error): void {
    if (this.readyDone) return;
    this.readyDone = true;
    this.rejectReady(err);
  }
}

/** Time after a stream's first unflushed write at which ipykernel flushes it (OutStream.flush_interval). */
export const STREAM_FLUSH_MS = 200;
/** A stream's unflushed text beyond this is flushed at once, so a flood between flush points stays bounded. */
const MAX_PENDING_CHARS = 64 * 1024;

/** One of a cell's two streams (stdout, stderr) as the server reads it. */
interface StreamState {
  /** Read but not parsed yet: after a sync point this stream waits at, or a possible token's start. */
  raw: string;
  /** Parsed text the (modelled) ipykernel buffer holds, not yet flushed into the output. */
  pending: string;
  /** Waiting at this flush point for the other stream to reach it. */
  parked: boolean;
  ended: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One cell's output, assembled from its stdout and stderr the way the reference's Jupyter client receives
 * ipykernel's: each stream is buffered and flushed STREAM_FLUSH_MS after its first unflushed write, and at
 * every flush point the driver marks in both streams (before a display, a result or a traceback, and the
 * end marker) stdout is flushed, then stderr. So within a quick cell all of stdout comes before all of
 * stderr, as in the reference, and a display lands after the prints before it.
 *
 * Keeps only the head and the tail of the assembled text, so a cell printing gigabytes costs a bounded
 * amount of memory.
 */
class OutputCapture {
  private readonly output = new OutputBuffer(COMMAND_OUTPUT);
  private frozen = false;
  private ended = false;
  private readonly streams: Record<1 | 2, StreamState> = {
    1: { raw: '', pending: '', parked: false, ended: false, timer: undefined },
    2: { raw: '', pending: '', parked: false, ended: false, timer: undefined },
  };

  constructor(
    private readonly marker: string,
    private readonly sync: string,
  ) {}

  /** Feeds one stream's data; returns true once both streams have reached the end marker. */
  push(fd: 1 | 2, data: string): boolean {
    if (this.ended) return true;
    const stream = this.streams[fd];
    if (stream.ended) return false;
    stream.raw += data;
    this.advance();
    return this.ended;
  }

  /** Later output is not kept (the text stays what it was when the cell timed out). */
  freeze(): void {
    this.frozen = true;
  }

  /** The streams ended without their markers: what is left was output after all. */
  endOfStream(): void {
    if (this.ended) return;
    for (const fd of [1, 2] as const) {
      const stream = this.streams[fd];
      stream.pending += stream.raw;
      stream.raw = '';
    }
    this.finish();
  }

  text(): string {
    const { head, tail, dropped } = this.output.peek();
    if (dropped === 0) return head + tail;
    return `${head}\n[... ${dropped} characters of output omitted ...]\n${tail}`;
  }

  /** Parses both streams as far as they go; a flush point passes once both streams are at it. */
  private advance(): void {
    for (;;) {
      this.parse(this.streams[1]);
      this.parse(this.streams[2]);
      const out = this.streams[1];
      const err = this.streams[2];
      if (out.ended && err.ended) {
        this.finish();
        return;
      }
      // A stream that ended (its fd closed by the cell) no longer holds the other one back.
      if ((out.parked || out.ended) && (err.parked || err.ended) && (out.parked || err.parked)) {
        this.flushBoth();
        out.parked = false;
        err.parked = false;
        continue;
      }
      return;
    }
  }

  /** Moves a stream's raw text into its pending buffer up to the next flush point, end marker or token start. */
  private parse(stream: StreamState): void {
    while (!stream.parked && !stream.ended && stream.raw.length > 0) {
      const raw = stream.raw;
      const at = raw.indexOf('\x1e');
      if (at < 0) {
        this.addPending(stream, raw);
        stream.raw = '';
        return;
      }
      if (at > 0) this.addPending(stream, raw.slice(0, at));
      const rest = raw.slice(at);
      if (rest.startsWith(this.marker)) {
        stream.ended = true;
        stream.raw = '';
        return;
      }
      if (rest.startsWith(this.sync)) {
        const close = rest.indexOf('>\x1e', this.sync.length);
        if (close < 0) {
          stream.raw = rest; // the rest of the token is still on its way
          return;
        }
        stream.parked = true;
        stream.raw = rest.slice(close + 2);
        return;
      }
      if (this.marker.startsWith(rest) || this.sync.startsWith(rest)) {
        stream.raw = rest; // maybe a token's start; wait for more
        return;
      }
      this.addPending(stream, '\x1e');
      stream.raw = rest.slice(1);
    }
  }

  private addPending(stream: StreamState, text: string): void {
    if (text.length === 0) return;
    stream.pending += text;
    if (stream.pending.length > MAX_PENDING_CHARS) {
      this.flushStream(stream);
      return;
    }
    stream.timer ??= setTimeout(() => {
      stream.timer = undefined;
      this.flushStream(stream);
    }, STREAM_FLUSH_MS);
  }

  private flushStream(stream: StreamState): void {
    if (stream.timer) clearTimeout(stream.timer);
    stream.timer = undefined;
    const text = stream.pending;
    stream.pending = '';
    this.commit(text);
  }

  private flushBoth(): void {
    this.flushStream(this.streams[1]);
    this.flushStream(this.streams[2]);
  }

  private finish(): void {
    this.flushBoth();
    this.ended = true;
  }

  private commit(s: string): void {
    if (!this.frozen) this.output.append(s);
  }
}
