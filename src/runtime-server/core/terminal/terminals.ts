/**
 * Interactive terminals for people (the web UI's live terminal): a login-like bash with readline,
 * echo and colours, unlike the agent's shell. Each terminal keeps running when its viewer goes away,
 * and replays its recent output to whoever attaches next.
 */
import { EventEmitter } from 'node:events';
import * as pty from '@lydell/node-pty';
import { RingBuffer } from './ring-buffer.js';

/** Output kept for replay on reconnect: enough for a few screens of scrollback. */
export const SCROLLBACK_CHARS = 256 * 1024;
/** A terminal with no viewer for this long is closed, so forgotten tabs do not pile up shells. */
export const DETACHED_TERMINAL_TTL_MS = 30 * 60 * 1000;
/** Most terminals one sandbox may have open at once. */
export const MAX_TERMINALS = 16;

export interface TerminalEvents {
  output: [string];
  exit: [number];
}

export class Terminal extends EventEmitter<TerminalEvents> {
  private readonly term: pty.IPty;
  private readonly scrollback = new RingBuffer(SCROLLBACK_CHARS);
  private viewers = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  exitCode: number | undefined;

  constructor(
    readonly id: string,
    cwd: string,
    cols: number,
    rows: number,
    private readonly onIdle: (t: Terminal) => void,
  ) {
    super();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    env.TERM = 'xterm-256color';
    env.COLORTERM = 'truecolor';
    this.term = pty.spawn('/bin/bash', ['-i'], { name: 'xterm-256color', cols, rows, cwd, env });
    this.term.onData((d) => {
      this.scrollback.push(d);
      this.emit('output', d);
    });
    this.term.onExit(({ exitCode }) => {
      this.exitCode = exitCode;
      this.emit('exit', exitCode);
    });
    this.armIdle();
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  replay(): string {
    return this.scrollback.contents();
  }

  write(data: string): void {
    if (this.alive) this.term.write(data);
  }

  resize(cols: number, rows: number): void {
    if (this.alive) this.term.resize(cols, rows);
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

  kill(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (!this.alive) return;
    try {
      process.kill(-this.term.pid, 'SIGHUP');
    } catch {
      this.term.kill('SIGHUP');
    }
  }
}

export class TerminalManager {
  private readonly terminals = new Map<string, Terminal>();

  constructor(private readonly cwd: () => string) {}

  /** The terminal with this id, started if it does not exist (or has exited). */
  open(id: string, cols: number, rows: number): Terminal {
    const existing = this.terminals.get(id);
    if (existing?.alive) return existing;
    if (existing) this.terminals.delete(id);
    if (this.terminals.size >= MAX_TERMINALS)
      throw new Error(`at most ${MAX_TERMINALS} terminals per sandbox`);
    const t = new Terminal(id, this.cwd(), cols, rows, (idle) => this.close(idle.id));
    t.once('exit', () => {
      if (this.terminals.get(id) === t) this.terminals.delete(id);
    });
    this.terminals.set(id, t);
    return t;
  }

  close(id: string): void {
    this.terminals.get(id)?.kill();
    this.terminals.delete(id);
  }

  dispose(): void {
    for (const id of [...this.terminals.keys()]) this.close(id);
  }
}
