/**
 * One persistent interactive bash on a PTY. Commands are written to a private file and sourced, so
 * they run in the shell itself (cd, exports, aliases and functions persist), are never echoed, and are
 * not limited by the terminal's 4 KiB line buffer. A prompt marker, printed by PS1 after every command,
 * says the moment a command is done and carries its exit code, cwd and friends: no polling.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMAND_OUTPUT, OutputBuffer, type OutputSnapshot } from '../process/output-buffer.js';
import type { ManagedProcess, ProcessTable } from '../process/table.js';

/** A terminal this wide never wraps what programs print; the reference's tmux window is 1000x1000. */
export const SHELL_COLUMNS = 1000;
export const SHELL_ROWS = 1000;
/**
 * How long the shell may take to print its first prompt before start() fails, which ends the server.
 * Longer than the control plane's default start deadline (60 s), so that on a starved sandbox (0.1 CPU
 * on a loaded machine) the control plane's deadline decides, with its own clear message, rather than
 * the server exiting with code 1 mid-wait.
 */
export const SHELL_START_TIMEOUT_MS = 120_000;

const MARK = '\x1e';
const SEP = '\x1f';

export interface PromptInfo {
  exitCode: number;
  /** `$!`: the last background job's pid, or -1. */
  pid: number;
  username: string;
  hostname: string;
  pyInterpreterPath: string;
  workingDir: string;
}

export interface PtyShellOptions {
  /** The table the shell's process is started in and owned by. */
  processes: ProcessTable;
  cwd: string;
  /** Variables over the sandbox's environment. */
  env?: Record<string, string>;
  shell?: string;
}

export interface PtyShellEvents {
  output: [];
  prompt: [PromptInfo];
  exit: [number];
}

export class PtyShell extends EventEmitter<PtyShellEvents> {
  private readonly nonce = randomBytes(6).toString('hex');
  private readonly dir = mkdtempSync(join(tmpdir(), 'berth-shell-'));
  private readonly term: ManagedProcess;
  /** Output since the last command was submitted, prompt markers removed. */
  private readonly output = new OutputBuffer(COMMAND_OUTPUT);
  private carry = '';
  private started = false;
  private exited = false;
  private exitCode: number | undefined;
  private running = false;
  private lastPrompt: PromptInfo;
  private commandSeq = 0;
  private seq = 0;
  private expectedSeq = 0;

  private constructor(options: PtyShellOptions) {
    super();
    this.lastPrompt = {
      exitCode: 0,
      pid: -1,
      username: '',
      hostname: '',
      pyInterpreterPath: '',
      workingDir: options.cwd,
    };
    this.term = options.processes.spawn({
      kind: 'shell',
      command: options.shell ?? '/bin/bash',
      args: ['--noediting', '-i'],
      cwd: options.cwd,
      // Plain output for an agent: no colours, no pagers that wait for a key.
      env: { ...options.env, TERM: 'dumb', PAGER: 'cat', GIT_PAGER: 'cat', SYSTEMD_PAGER: '', NO_COLOR: '1' },
      io: { type: 'pty', cols: SHELL_COLUMNS, rows: SHELL_ROWS, term: 'dumb' },
    });
    this.term.on('data', (_stream, data) => this.onData(data));
    this.term.once('exit', ({ exitCode }) => {
      this.exited = true;
      this.exitCode = exitCode;
      this.running = false;
      this.emit('exit', exitCode);
    });
  }

  static async start(options: PtyShellOptions): Promise<PtyShell> {
    try {
      accessSync(options.cwd, constants.R_OK | constants.X_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new Error(
        `the working directory ${options.cwd} is not usable by uid ${process.getuid?.() ?? '?'} (${code}): the sandbox user needs to be able to enter it`,
      );
    }
    const shell = new PtyShell(options);
    try {
      await shell.initialise();
    } catch (err) {
      await shell.dispose();
      throw err;
    }
    return shell;
  }

  /**
   * Signals the terminal's foreground process group (the running command and everything it started
   * in the same job), not the shell itself. Returns whether there was such a group.
   */
  signalForeground(signal: NodeJS.Signals): boolean {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${this.term.pid}/stat`, 'utf8');
    } catch {
      return false;
    }
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgrp = Number(fields[2]);
    const foreground = Number(fields[5]);
    if (!(foreground > 0) || foreground === pgrp) return false;
    try {
      process.kill(-foreground, signal);
      return true;
    } catch {
      return false;
    }
  }

  get pid(): number {
    return this.term.pid;
  }

  /** True while a submitted command has not printed its prompt yet. */
  get busy(): boolean {
    return this.running;
  }

  /** The shell's own exit code once it has exited (after an `exit` command, say). */
  get exitStatus(): number | undefined {
    return this.exitCode;
  }

  get alive(): boolean {
    return !this.exited;
  }

  get prompt(): PromptInfo {
    return this.lastPrompt;
  }

  private async initialise(): Promise<void> {
    const m = `${MARK}${this.nonce}${SEP}`;
    // Everything here runs before the first marker, so nothing of it reaches an observation.
    const setup = [
      'stty -echo -onlcr 2>/dev/null',
      'set +o histexpand',
      'unset PROMPT_COMMAND PS0',
      `__berth_py() { local IFS=: d; __berth_pyp=; for d in $PATH; do if [[ -x $d/python && ! -d $d/python ]]; then __berth_pyp=$d/python; return; fi; done; }`,
      `PROMPT_COMMAND='__berth_ec=$?; __berth_py'`,
      // Sets the command's sequence number and hands the previous exit status on as $?.
      '__berth_next() { __berth_seq=$1; return $__berth_ec; }',
      `PS1='${m}\${__berth_seq}${SEP}\${__berth_ec}${SEP}\${!:--1}${SEP}\\u${SEP}\\h${SEP}\${__berth_pyp}${SEP}\${PWD}${MARK}'`,
      "PS2=''",
      'alias git="git --no-pager"',
    ].join('\n');
    writeFileSync(join(this.dir, 'init'), `${setup}\n`);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('bash did not print a prompt in time')),
        SHELL_START_TIMEOUT_MS,
      );
      this.once('prompt', () => {
        clearTimeout(timer);
        resolve();
      });
      this.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`bash exited during start-up with code ${code}`));
      });
    });
    this.running = true;
    this.term.write(` __berth_seq=0; __berth_ec=0; . '${join(this.dir, 'init')}'\n`);
    await ready;
    this.started = true;
    this.output.take();
  }

  /** Runs one command in the shell. The caller checks `busy` first. */
  submit(command: string): void {
    if (this.exited) throw new Error('the shell has exited');
    this.output.take();
    const file = join(this.dir, `cmd${this.commandSeq++ % 2}`);
    writeFileSync(file, `${command}\n`);
    this.running = true;
    this.expectedSeq = ++this.seq;
    // The sequence number comes back in the prompt, so a stray prompt (a Ctrl-C at an idle shell, say)
    // is never taken for this command's end. The leading space keeps the line out of history.
    this.term.write(` __berth_next ${this.expectedSeq}; . '${file}'\n`);
  }

  /** Writes raw bytes to the terminal: input for the running program, or control keys. */
  write(data: string): void {
    if (!this.exited) this.term.write(data);
  }

  /** Output since the last take(), bounded; raw terminal text. */
  takeOutput(): OutputSnapshot {
    return this.output.take();
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
  }

  private onData(data: string): void {
    let text = this.carry + data;
    this.carry = '';
    const start = `${MARK}${this.nonce}${SEP}`;
    let sawOutput = false;
    for (;;) {
      const at = text.indexOf(start);
      if (at === -1) break;
      const end = text.indexOf(MARK, at + start.length);
      if (end === -1) break;
      if (at > 0) {
        this.output.append(text.slice(0, at));
        sawOutput = true;
      }
      const fields = text.slice(at + start.length, end).split(SEP);
      text = text.slice(end + 1);
      this.onPrompt(fields);
    }
    // Hold back a possibly incomplete marker at the end of the chunk.
    const lastMark = text.lastIndexOf(MARK);
    if (lastMark !== -1) {
      const rest = text.slice(lastMark);
      if (rest.startsWith(start) || start.startsWith(rest)) {
        this.carry = rest;
        text = text.slice(0, lastMark);
      }
    }
    if (text.length > 0) {
      this.output.append(text);
      sawOutput = true;
    }
    if (sawOutput && this.started) this.emit('output');
  }

  private onPrompt(fields: string[]): void {
    const [seq, ec, pid, username, hostname, py, ...cwd] = fields;
    if (Number(seq) !== this.expectedSeq) return;
    const toInt = (v: string | undefined) => {
      const n = Number.parseInt(v ?? '', 10);
      return Number.isFinite(n) ? n : -1;
    };
    this.lastPrompt = {
      exitCode: toInt(ec),
      pid: toInt(pid),
      username: username ?? '',
      hostname: hostname ?? '',
      pyInterpreterPath: py ?? '',
      workingDir: cwd.join(SEP),
    };
    this.running = false;
    this.emit('prompt', this.lastPrompt);
  }

  async dispose(): Promise<void> {
    // SIGHUP, as when a terminal closes: bash passes it on to its jobs.
    await this.term.terminate('SIGHUP');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
