/**
 * Code contexts for E2B's code interpreter: each a Python process of its own (CONTEXT_DRIVER_SOURCE) in
 * the runtime core's process table, with its own variables, running one execution at a time. The
 * default context is made on the first execution that names none; others are made by the client.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ErrorCode } from '../../protocol/errors.js';
import type { ManagedProcess, ProcessTable } from '../core/process/table.js';
import { CONTEXT_DRIVER_SOURCE } from './driver-source.js';

/** The only language served: contexts are Python processes. */
export const LANGUAGE = 'python';
/** A driver that is not ready by then (importing IPython in a cold container takes a second or two). */
const START_TIMEOUT_MS = 60_000;
/** Contexts one sandbox may hold at once: each is a Python process of some tens of MiB. */
export const MAX_CONTEXTS = 32;
/** Longest message line from a context's driver (a big HTML or PNG result); longer ones are dropped. */
const MAX_LINE_CHARS = 64 * 1024 * 1024;
/** The id E2B's server gives the context used when a request names none. */
const DEFAULT_CONTEXT = 'default';

export class CodeContextError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ContextInfo {
  id: string;
  language: string;
  cwd: string;
}

/** One message of an execution, in E2B's line shapes ({"type": "stdout", ...}). */
export type ExecutionMessage = Record<string, unknown> & { type: string };

interface Pending {
  id: number;
  onMessage: (msg: ExecutionMessage) => void;
  done: () => void;
}

class CodeContext {
  readonly info: ContextInfo;
  private readonly proc: ManagedProcess;
  readonly ready: Promise<void>;
  /** Executions run one after another in a context, as in a Jupyter kernel. */
  private queue: Promise<unknown> = Promise.resolve();
  private pending: Pending | undefined;
  private nextId = 1;

  constructor(table: ProcessTable, python: string, info: ContextInfo) {
    this.info = info;
    this.proc = table.spawn({
      kind: 'kernel',
      command: python,
      args: ['-u', '-c', CONTEXT_DRIVER_SOURCE],
      cwd: info.cwd,
      env: { PYTHONIOENCODING: 'utf-8' },
      io: { type: 'pipes', stdin: false, extraFds: 2 },
    });
    let readyNow!: () => void;
    let failed!: (err: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      readyNow = resolve;
      failed = reject;
    });
    const timer = setTimeout(
      () => failed(new Error('the Python process did not start in time')),
      START_TIMEOUT_MS,
    );
    this.ready.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
    this.proc.started().catch((err: Error) => failed(err));
    const stdio = this.proc.stdio;
    readLines(
      stdio[4] as Readable,
      (line) => {
        let m: { type?: string; id?: number; msg?: ExecutionMessage; done?: boolean };
        try {
          m = JSON.parse(line);
        } catch {
          return;
        }
        if (m.type === 'ready') return readyNow();
        if (!this.pending || m.id !== this.pending.id) return;
        if (m.done) {
          const p = this.pending;
          this.pending = undefined;
          p.done();
        } else if (m.msg) this.pending.onMessage(m.msg);
      },
      () =>
        this.pending?.onMessage({
          type: 'error',
          name: 'OutputTooLarge',
          value: `one output of this execution was larger than ${MAX_LINE_CHARS / 1024 / 1024} MiB and was dropped`,
          traceback: '',
        }),
    );
    // What subprocesses write to the descriptors themselves.
    for (const [fd, type] of [
      [1, 'stdout'],
      [2, 'stderr'],
    ] as const) {
      (stdio[fd] as Readable | null)?.setEncoding('utf8').on('data', (text: string) => {
        this.pending?.onMessage({ type, text, timestamp: Date.now() / 1000 });
      });
    }
    void this.proc.exited.then((status) => {
      failed(new Error(`the Python process exited (${status.error ?? `code ${status.exitCode}`})`));
      const p = this.pending;
      this.pending = undefined;
      if (p) {
        p.onMessage({
          type: 'error',
          name: 'KernelDied',
          value: `the context's Python process ended (exit code ${status.exitCode}); its variables are lost`,
          traceback: '',
        });
        p.done();
      }
    });
  }

  get alive(): boolean {
    return this.proc.alive;
  }

  /**
   * Runs `code`, calling `onMessage` for each message as it comes; resolves when the execution is
   * done. An aborted signal interrupts it (SIGINT: a KeyboardInterrupt in the cell).
   */
  execute(
    code: string,
    envVars: Record<string, string> | undefined,
    onMessage: (msg: ExecutionMessage) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const run = this.queue.then(async () => {
      if (signal.aborted) return;
      await this.ready;
      if (!this.proc.alive) throw new CodeContextError(ErrorCode.UNAVAILABLE, 502, 'the context has ended');
      const id = this.nextId++;
      const finished = new Promise<void>((done) => {
        this.pending = { id, onMessage, done };
      });
      const interrupt = () => this.proc.signal('SIGINT');
      signal.addEventListener('abort', interrupt, { once: true });
      const stdin = this.proc.stdio[3] as NodeJS.WritableStream;
      stdin.write(`${JSON.stringify({ id, code, env_vars: envVars ?? null })}\n`);
      try {
        await finished;
      } finally {
        signal.removeEventListener('abort', interrupt);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.proc.terminate('SIGTERM');
  }
}

export class CodeContexts {
  private readonly contexts = new Map<string, CodeContext>();

  constructor(
    private readonly table: ProcessTable,
    private readonly defaultCwd: string,
    private readonly python = 'python3',
  ) {}

  list(): ContextInfo[] {
    return [...this.contexts.values()].filter((c) => c.alive).map((c) => c.info);
  }

  async create(opts: { language?: string; cwd?: string }, id: string = randomUUID()): Promise<ContextInfo> {
    const language = (opts.language ?? LANGUAGE).toLowerCase();
    if (language !== LANGUAGE) {
      throw new CodeContextError(
        ErrorCode.NOT_FOUND,
        404,
        `Kernel for language '${opts.language}' not found: this sandbox runs ${LANGUAGE} only`,
      );
    }
    this.prune();
    if (this.contexts.size >= MAX_CONTEXTS) {
      throw new CodeContextError(
        ErrorCode.CONFLICT,
        409,
        `This sandbox already has ${MAX_CONTEXTS} code contexts; remove one first`,
      );
    }
    const ctx = new CodeContext(this.table, this.python, { id, language, cwd: opts.cwd ?? this.defaultCwd });
    this.contexts.set(id, ctx);
    try {
      await ctx.ready;
    } catch (err) {
      this.contexts.delete(id);
      await ctx.close();
      throw new CodeContextError(
        ErrorCode.UNAVAILABLE,
        500,
        `The ${language} context could not start: ${(err as Error).message}`,
      );
    }
    return ctx.info;
  }

  /** The context an execution runs in: the one named, or the default one for the language. */
  async forExecution(contextId: string | undefined, language: string | undefined): Promise<CodeContext> {
    if (contextId !== undefined) return this.get(contextId);
    const lang = (language ?? LANGUAGE).toLowerCase();
    const existing = this.contexts.get(DEFAULT_CONTEXT);
    if (existing?.alive && lang === LANGUAGE) return existing;
    if (existing) this.contexts.delete(DEFAULT_CONTEXT);
    await this.create({ language: lang }, DEFAULT_CONTEXT);
    return this.get(DEFAULT_CONTEXT);
  }

  async remove(id: string): Promise<void> {
    const ctx = this.get(id);
    this.contexts.delete(id);
    await ctx.close();
  }

  /** A fresh process for the context, with the same id and cwd: its variables are gone. */
  async restart(id: string): Promise<void> {
    const old = this.get(id);
    this.contexts.delete(id);
    await old.close();
    await this.create({ language: old.info.language, cwd: old.info.cwd }, id);
  }

  async dispose(): Promise<void> {
    const all = [...this.contexts.values()];
    this.contexts.clear();
    await Promise.all(all.map((c) => c.close()));
  }

  private get(id: string): CodeContext {
    const ctx = this.contexts.get(id);
    if (!ctx) throw new CodeContextError(ErrorCode.NOT_FOUND, 404, `Context ${id} not found`);
    return ctx;
  }

  /** Forgets contexts whose process died, so they neither count nor list. */
  private prune(): void {
    for (const [id, ctx] of this.contexts) if (!ctx.alive) this.contexts.delete(id);
  }
}

/**
 * Calls `onLine` per line of `stream`. Each chunk is searched once (not the whole buffer again), and a
 * line longer than MAX_LINE_CHARS is dropped whole, with `onOverlong` told, instead of held in memory.
 */
function readLines(stream: Readable, onLine: (line: string) => void, onOverlong: () => void): void {
  let parts: string[] = [];
  let size = 0;
  let dropping = false;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    let from = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', from)) {
      const piece = chunk.slice(from, nl);
      if (!dropping && size + piece.length <= MAX_LINE_CHARS) onLine(parts.join('') + piece);
      else if (!dropping) onOverlong();
      parts = [];
      size = 0;
      dropping = false;
      from = nl + 1;
    }
    if (from < chunk.length && !dropping) {
      const rest = chunk.slice(from);
      size += rest.length;
      if (size > MAX_LINE_CHARS) {
        dropping = true;
        parts = [];
        size = 0;
        onOverlong();
      } else parts.push(rest);
    }
  });
}
