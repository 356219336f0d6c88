/**
 * A command run on its own in a sandbox, like `docker exec` (the exec WebSocket, ExecClientMessage in
 * protocol/api.ts): argv exactly, stdout and stderr apart and streamed, stdin, signals, a PTY.
 *
 *   const p = berth.sandbox(id).exec(['python3', '-c', 'print(1)']);
 *   const { exitCode, stdout } = await p.done;
 */
import type { ExecClientMessage, ExecServerMessage } from '../protocol/api.js';
import type { ErrorCode } from '../protocol/errors.js';
import { BerthApiError, errorClassByCode, NetworkError } from './errors.js';
import { type ClientSocket, openSocket } from './socket.js';

export type ExecSignal = Extract<ExecClientMessage, { type: 'signal' }>['signal'];

export interface ExecOptions {
  /** Working directory; default: the sandbox's working directory. */
  cwd?: string;
  env?: Record<string, string>;
  /** A user name or uid; default: the sandbox user. */
  user?: string;
  /** A PTY of this size instead of pipes: output then arrives as one stream (onPty). */
  pty?: { cols: number; rows: number };
  /** Keep stdin open for write(); default: stdin is /dev/null. */
  stdin?: boolean;
  /** The process is ended after this long, and the result says timedOut. */
  timeoutMs?: number;
  onStdout?(chunk: Uint8Array): void;
  onStderr?(chunk: Uint8Array): void;
  onPty?(chunk: Uint8Array): void;
  /** Keep stdout and stderr as text in the result. @default true (false for output too large to hold) */
  collect?: boolean;
}

export interface ExecResult {
  exitCode: number;
  /** The signal that ended the process, if one did. */
  signal: string | null;
  timedOut: boolean;
  /** The whole output as UTF-8 text (empty with collect: false). */
  stdout: string;
  stderr: string;
}

/** Input bytes per frame (base64 makes them a third larger). */
const INPUT_CHUNK_BYTES = 256 * 1024;

function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** The typed error for an error frame's code (status 0: it came over a socket, not as a response). */
function socketError(code: string, message: string): BerthApiError {
  const Cls = Object.hasOwn(errorClassByCode, code) ? errorClassByCode[code as ErrorCode] : BerthApiError;
  return new Cls(0, code, message);
}

export class ExecProcess {
  /** Resolves once the process runs, with its id in the sandbox's process table and its pid. */
  readonly started: Promise<{ id: string; pid: number }>;
  /**
   * Resolves when the process has exited (a program that could not start: exit code 127, the reason on
   * stderr); rejects when the sandbox refused the exec or the link broke.
   */
  readonly done: Promise<ExecResult>;
  private readonly socket: ClientSocket;

  constructor(
    wsUrl: string,
    authorization: string | undefined,
    argv: readonly string[],
    opts: ExecOptions = {},
  ) {
    const collect = opts.collect !== false;
    const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder(), pty: new TextDecoder() };
    const text = { stdout: '', stderr: '', pty: '' };
    let resolveStarted!: (v: { id: string; pid: number }) => void;
    let rejectStarted!: (e: Error) => void;
    this.started = new Promise((res, rej) => {
      resolveStarted = res;
      rejectStarted = rej;
    });
    // Nobody may await `started` (or `done`, with callbacks only); a failure is still theirs to see.
    this.started.catch(() => undefined);
    let exit: Extract<ExecServerMessage, { type: 'exit' }> | undefined;
    let error: Error | undefined;
    let settle!: { resolve: (r: ExecResult) => void; reject: (e: Error) => void };
    this.done = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    this.done.catch(() => undefined);
    this.socket = openSocket(wsUrl, authorization, {
      onMessage: (raw) => {
        const m = JSON.parse(raw) as ExecServerMessage;
        if (m.type === 'started') resolveStarted({ id: m.id, pid: m.pid });
        else if (m.type === 'exit') exit = m;
        else if (m.type === 'error') error ??= socketError(m.code, m.message);
        else {
          const bytes = fromBase64(m.data);
          const handler =
            m.type === 'stdout' ? opts.onStdout : m.type === 'stderr' ? opts.onStderr : opts.onPty;
          handler?.(bytes);
          if (collect) text[m.type] += decoders[m.type].decode(bytes, { stream: true });
        }
      },
      onClose: (err) => {
        if (exit) {
          settle.resolve({
            exitCode: exit.exit_code,
            signal: exit.signal,
            timedOut: exit.timed_out,
            stdout: collect ? text.stdout + decoders.stdout.decode() + text.pty + decoders.pty.decode() : '',
            stderr: collect ? text.stderr + decoders.stderr.decode() : '',
          });
          return;
        }
        const failure =
          error ??
          (err instanceof BerthApiError ? err : undefined) ??
          new NetworkError(
            `exec in the sandbox ended without an exit status${err ? `: ${err.message}` : ' (the connection closed)'}`,
            err,
          );
        rejectStarted(failure);
        settle.reject(failure);
      },
    });
    this.socket.send(
      JSON.stringify({
        type: 'start',
        argv: [...argv],
        ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
        ...(opts.env === undefined ? {} : { env: opts.env }),
        ...(opts.user === undefined ? {} : { user: opts.user }),
        ...(opts.pty === undefined ? {} : { pty: opts.pty }),
        ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
        ...(opts.timeoutMs === undefined ? {} : { timeout_ms: opts.timeoutMs }),
      } satisfies ExecClientMessage),
    );
  }

  private frame(m: ExecClientMessage): void {
    this.socket.send(JSON.stringify(m));
  }

  /** Input for the process (its stdin, or its PTY). */
  write(data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    // In pieces: one frame stays far below the server's WebSocket message limit (1 MiB).
    for (let at = 0; at < bytes.length; at += INPUT_CHUNK_BYTES)
      this.frame({ type: 'input', data: toBase64(bytes.subarray(at, at + INPUT_CHUNK_BYTES)) });
  }

  closeStdin(): void {
    this.frame({ type: 'close_stdin' });
  }

  /** One signal to the process's group. */
  signal(signal: ExecSignal): void {
    this.frame({ type: 'signal', signal });
  }

  /** Ends the process: `signal` (SIGTERM) to its group, SIGKILL after a grace if it is still there. */
  kill(signal?: ExecSignal): void {
    this.frame({ type: 'kill', ...(signal ? { signal } : {}) });
  }

  resize(cols: number, rows: number): void {
    this.frame({ type: 'resize', cols, rows });
  }

  /** Closes the link; the process is ended on the sandbox's side. */
  close(): void {
    this.socket.close();
  }
}
