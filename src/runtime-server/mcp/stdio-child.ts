/**
 * A stdio MCP server as a child process, seen as an MCP SDK Transport (newline-delimited JSON-RPC on
 * its stdin and stdout). Written here rather than taken from the SDK's StdioClientTransport so that:
 *   - the child leads a process group of its own, and closing it ends the whole group (`npx` and
 *     `uvx` start the real server as a grandchild), SIGTERM first, SIGKILL after a grace;
 *   - what it writes is bounded: one message at most MAX_LINE_BYTES, stderr kept as a short tail
 *     for error messages;
 *   - a stdout line that is not JSON-RPC (a server that logs to stdout) is skipped, not fatal.
 * The child inherits the runtime server's uid (the sandbox user's, see image/entrypoint.sh) and, as
 * with the reference's stdio client, only a few variables of its environment (never the session key)
 * plus the configuration's own `env`.
 */
import type { Readable, Writable } from 'node:stream';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { KILL_GRACE_MS, type ManagedProcess, type ProcessTable } from '../core/process/table.js';

/** Variables passed on from the server's environment, as the MCP SDKs' stdio clients do on POSIX. */
const INHERITED_ENV = ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER'];
/** Largest JSON-RPC message a child may write on one line. */
const MAX_LINE_BYTES = 32 * 1024 * 1024;
const STDERR_TAIL_CHARS = 2000;

export interface StdioChildOptions {
  /** The table the child is started in and owned by. */
  processes: ProcessTable;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** Told about each stderr line (for the log), already bounded. */
  onStderr?: (line: string) => void;
}

export class StdioChild implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private child: ManagedProcess | undefined;
  private buffer: Buffer[] = [];
  private buffered = 0;
  private stderrTail = '';
  private stdoutClosed: Promise<void> = Promise.resolve();
  private closedNotified = false;
  private running = false;

  constructor(private readonly options: StdioChildOptions) {}

  /** The child's pid once started. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.running;
  }

  /** The end of what the child wrote on stderr, for error messages. */
  get stderr(): string {
    return this.stderrTail.trim();
  }

  async start(): Promise<void> {
    if (this.child) throw new Error('StdioChild already started');
    const child = this.options.processes.spawn({
      kind: 'mcp',
      command: this.options.command,
      args: this.options.args,
      cwd: this.options.cwd,
      inherit: INHERITED_ENV,
      env: this.options.env,
      io: { type: 'pipes', stdin: true },
    });
    this.child = child;
    const stdout = child.stdout as Readable;
    this.stdoutClosed = new Promise((resolve) => stdout.once('close', () => resolve()));
    child.once('exit', ({ error }) => {
      this.running = false;
      if (error) {
        this.onerror?.(new Error(error));
        this.notifyClosed();
      }
    });
    // Closed once its last JSON-RPC lines have been read, not at the exit, which may come first.
    void this.stdoutClosed.then(() => this.notifyClosed());
    (child.stdin as Writable).on('error', (err) => this.onerror?.(err));
    stdout.on('data', (chunk: Buffer) => this.onStdout(chunk));
    (child.stderr as Readable).setEncoding('utf8').on('data', (s: string) => this.onStderrData(s));
    await child.started();
    this.running = child.alive;
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || !this.alive || stdin.destroyed)
      return Promise.reject(new Error('the MCP server has exited'));
    return new Promise((resolve, reject) => {
      stdin.write(`${JSON.stringify(message)}\n`, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Ends the child and its process group: stdin closed, then the table's kill path (SIGTERM first). */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.closeStdin();
    await child.terminate('SIGTERM');
    // The group is gone (terminate ends it), so the pipe closes; bounded all the same.
    await Promise.race([this.stdoutClosed, new Promise((r) => setTimeout(r, KILL_GRACE_MS).unref())]);
    this.notifyClosed();
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.onclose?.();
  }

  private onStdout(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.buffer.push(chunk.subarray(start, nl));
      const line = Buffer.concat(this.buffer).toString('utf8');
      this.buffer = [];
      this.buffered = 0;
      this.onLine(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.buffered += chunk.length - start;
      if (this.buffered > MAX_LINE_BYTES) {
        this.onerror?.(new Error(`the MCP server wrote a line longer than ${MAX_LINE_BYTES} bytes`));
        void this.close();
        return;
      }
      this.buffer.push(chunk.subarray(start));
    }
  }

  private onLine(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.trim()) return;
    let message: JSONRPCMessage;
    try {
      message = JSONRPCMessageSchema.parse(JSON.parse(line));
    } catch {
      this.onerror?.(new Error(`the MCP server wrote a line that is not JSON-RPC: ${line.slice(0, 200)}`));
      return;
    }
    this.onmessage?.(message);
  }

  private onStderrData(s: string): void {
    this.stderrTail = (this.stderrTail + s).slice(-STDERR_TAIL_CHARS);
    if (this.options.onStderr)
      for (const line of s.split('\n')) if (line.trim()) this.options.onStderr(line.slice(0, 500));
  }
}
