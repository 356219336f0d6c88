/**
 * Interactive terminals for people (the web UI's live terminal): a login-like bash with readline,
 * echo and colours, unlike the agent's shell. Each terminal keeps running when its viewer goes away,
 * and replays its recent output to whoever attaches next.
 */
import { EventEmitter } from 'node:events';
import { TERMINAL_SCROLLBACK } from '../process/output-buffer.js';
import type { ManagedProcess, ProcessTable } from '../process/table.js';

/** A terminal with no viewer for this long is closed, so forgotten tabs do not pile up shells. */
export const DETACHED_TERMINAL_TTL_MS = 30 * 60 * 1000;
/** Most terminals one sandbox may have open at once. */
export const MAX_TERMINALS = 16;

export interface TerminalEvents {
  output: [string];
  exit: [number];
}

export class Terminal extends EventEmitter<TerminalEvents> {
  private readonly term: ManagedProcess;
  private viewers = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    processes: ProcessTable,
    readonly id: string,
    cwd: string,
    cols: number,
    rows: number,
    private readonly onIdle: (t: Terminal) => void,
  ) {
    super();
    this.term = processes.spawn({
      kind: 'terminal',
      command: '/bin/bash',
      args: ['-i'],
      cwd,
      env: { TERM: 'xterm-256color', COLORTERM: 'truecolor' },
      io: { type: 'pty', cols, rows, term: 'xterm-256color' },
      output: TERMINAL_SCROLLBACK,
    });
    this.term.on('data', (_stream, d) => this.emit('output', d));
    this.term.once('exit', ({ exitCode }) => this.emit('exit', exitCode));
    this.armIdle();
  }

  get alive(): boolean {
    return this.term.alive;
  }

  get exitCode(): number | undefined {
    return this.term.exitStatus?.exitCode;
  }

  replay(): string {
    return this.term.output?.replay() ?? '';
  }

  write(data: string): void {
    this.term.write(data);
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
  }

  attach(): () => void {
    this.viewers++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    let detached = false;
    return () => {
      if (detached) return;
      detached = true;
      this.viewers--;
      this.armIdle();
    };
  }

  private armIdle(): void {
    if (this.viewers > 0 || this.idleTimer) return;
    this.idleTimer = setTimeout(() => this.onIdle(this), DETACHED_TERMINAL_TTL_MS);
    this.idleTimer.unref();
  }

  /** Ends the terminal's shell and its jobs, as closing a terminal window does (SIGHUP). */
  kill(): Promise<unknown> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    return this.term.terminate('SIGHUP');
  }
}

export class TerminalManager {
  private readonly terminals = new Map<string, Terminal>();

  constructor(
    private readonly processes: ProcessTable,
    private readonly cwd: () => string,
  ) {}

  /** The terminal with this id, started if it does not exist (or has exited). */
  open(id: string, cols: number, rows: number): Terminal {
    const existing = this.terminals.get(id);
    if (existing?.alive) return existing;
    if (existing) this.terminals.delete(id);
    if (this.terminals.size >= MAX_TERMINALS)
      throw new Error(`at most ${MAX_TERMINALS} terminals per sandbox`);
    const t = new Terminal(this.processes, id, this.cwd(), cols, rows, (idle) => void this.close(idle.id));
    t.once('exit', () => {
      if (this.terminals.get(id) === t) this.terminals.delete(id);
    });
    this.terminals.set(id, t);
    return t;
  }

  close(id: string): Promise<unknown> {
    const t = this.terminals.get(id);
    this.terminals.delete(id);
    return t?.kill() ?? Promise.resolve();
  }

  async dispose(): Promise<void> {
    await Promise.allSettled([...this.terminals.keys()].map((id) => this.close(id)));
  }
}
