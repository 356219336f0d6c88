/**
 * The reference's bash tool semantics on top of a PtyShell: soft and hard timeouts that leave the
 * process running, continuation with an empty command, input to the running program, control keys,
 * the one-command rule, and the exact texts agents expect. Completion is event-driven: the observation
 * is returned the moment the prompt marker arrives.
 */
import {
  type CmdOutputMetadata,
  type CmdRunArgs,
  cmdOutputObservation,
  emptyMetadata,
  errorObservation,
  MAX_CMD_OUTPUT_SIZE,
  type Observation,
  TRUNCATION_MARKER,
} from '../../protocol/openhands.js';
import { pyLstrip, pyRstrip, pyStrip } from '../core/editor/text-file.js';
import type { OutputSnapshot } from '../core/process/output-buffer.js';
import type { ProcessTable } from '../core/process/table.js';
import { splitCommands } from '../core/shell/command-split.js';
import { runOneOff } from '../core/shell/one-off.js';
import type { PtyShell } from '../core/shell/pty-shell.js';
import { toPlainText } from '../core/shell/terminal-text.js';
import {
  CONTINUE_PREFIX,
  completedSuffix,
  completedWithKeySuffix,
  hardTimeoutSuffix,
  multipleCommandsError,
  NO_RUNNING_COMMAND_INPUT,
  NO_RUNNING_COMMAND_LOGS,
  notExecutedSuffix,
  softTimeoutSuffix,
} from './strings.js';

/** How long a Ctrl-C may go without any effect before it is sent a second time. */
export const CTRL_C_RESEND_MS = 750;

/** Hard timeout for is_static commands when the action gives none (the reference's sandbox.timeout). */
export const DEFAULT_STATIC_TIMEOUT_SECONDS = 120;

type Outcome = 'completed' | 'soft' | 'hard' | 'exited';

export interface ShellProvider {
  /** The persistent shell, started (or restarted after `exit`) on demand. */
  shell(): Promise<PtyShell>;
  /** The shell as it is now, if one was started. */
  peek?(): PtyShell | undefined;
}

export class BashSession {
  /** Set while a command's completion has not been returned to the agent yet. */
  private pending: { startedBy: number } | null = null;
  /** Counts executed actions, to tell the action that started a command from later ones. */
  private actionSeq = 0;

  constructor(
    private readonly shells: ShellProvider,
    private readonly processes: ProcessTable,
    private readonly noChangeTimeoutSeconds: number,
  ) {}

  /** The shell's current working directory, as of its last prompt. */
  async cwd(): Promise<string> {
    return (await this.shells.shell()).prompt.workingDir;
  }

  /**
   * Kills the running command's whole process group (what its action's deadline does): the shell
   * stays, and the command's prompt ends the pending observation.
   */
  killRunningCommand(): boolean {
    return this.shells.peek?.()?.signalForeground('SIGKILL') ?? false;
  }

  /** After a reset: the command that was running is gone with its shell. */
  forgetRunningCommand(): void {
    this.pending = null;
  }

  async execute(args: CmdRunArgs, hardTimeoutSeconds: number | undefined): Promise<Observation> {
    const command = args.command.trim();
    const action = ++this.actionSeq;
    if (args.is_static) return this.executeStatic(command, args, hardTimeoutSeconds);
    const shell = await this.shells.shell();

    if (this.pending === null) {
      if (command === '')
        return cmdOutputObservation('', NO_RUNNING_COMMAND_LOGS, emptyMetadata(), args.hidden);
      if (args.is_input)
        // The reference reports this one with an empty command, whatever the input was.
        return cmdOutputObservation('', NO_RUNNING_COMMAND_INPUT, emptyMetadata(), args.hidden);
    }

    if (!args.is_input && command !== '') {
      const commands = await splitCommands(command);
      if (commands.length > 1) return errorObservation(multipleCommandsError(commands));
    }

    if (this.pending && shell.busy && !args.is_input && command !== '') {
      const metadata = emptyMetadata();
      metadata.suffix = notExecutedSuffix(command);
      return this.observe(command, shell, metadata, args.hidden, action, false);
    }

    const specialKey = isSpecialKey(command) ? command[2]!.toUpperCase() : undefined;
    if (specialKey !== undefined && !shell.busy) {
      // A key at an idle prompt: bash discards the line, as a terminal would; nothing else runs.
      shell.write(String.fromCharCode(specialKey.charCodeAt(0) & 0x1f));
      this.pending = null;
      const exitCode = specialKey === 'C' ? 130 : shell.prompt.exitCode;
      const metadata = { ...this.metadataFromPrompt(shell), exit_code: exitCode };
      metadata.suffix = completedWithKeySuffix(exitCode, specialKey);
      return cmdOutputObservation(command, '', metadata, args.hidden);
    }
    let resend: NodeJS.Timeout | undefined;
    if (specialKey !== undefined) {
      const key = String.fromCharCode(specialKey.charCodeAt(0) & 0x1f);
      shell.write(key);
      if (specialKey === 'C') {
        // A Ctrl-C that lands while bash is between starting a child and handing it the terminal is
        // taken by bash for the child's and dropped when the child exits normally, so a loop goes on.
        // If nothing at all happened after a while, say it once more.
        let quiet = true;
        const onOutput = () => {
          quiet = false;
        };
        shell.once('output', onOutput);
        resend = setTimeout(() => {
          shell.off('output', onOutput);
          if (quiet && shell.busy) shell.write(key);
        }, CTRL_C_RESEND_MS);
      }
    } else if (args.is_input) {
      shell.write(`${command}\n`);
    } else if (command !== '') {
      // A command that timed out earlier may have finished since; then the new one simply runs.
      this.pending = { startedBy: action };
      shell.submit(command);
    }
    if (this.pending === null) this.pending = { startedBy: action };

    const useSoft = !args.blocking || hardTimeoutSeconds === undefined;
    const outcome = await waitForOutcome(
      shell,
      useSoft ? this.noChangeTimeoutSeconds * 1000 : undefined,
      hardTimeoutSeconds === undefined ? undefined : hardTimeoutSeconds * 1000,
    );
    if (resend) clearTimeout(resend);

    if (outcome === 'completed' || outcome === 'exited') {
      const exitCode = outcome === 'exited' ? (shell.exitStatus ?? -1) : shell.prompt.exitCode;
      const metadata = { ...this.metadataFromPrompt(shell), exit_code: exitCode };
      metadata.suffix =
        specialKey === undefined ? completedSuffix(exitCode) : completedWithKeySuffix(exitCode, specialKey);
      const obs = this.observe(command, shell, metadata, args.hidden, action, true);
      this.pending = null;
      return obs;
    }
    const metadata = emptyMetadata();
    metadata.suffix =
      outcome === 'soft'
        ? softTimeoutSuffix(this.noChangeTimeoutSeconds)
        : hardTimeoutSuffix(hardTimeoutSeconds ?? 0);
    return this.observe(command, shell, metadata, args.hidden, action, false);
  }

  private metadataFromPrompt(shell: PtyShell): CmdOutputMetadata {
    const prompt = shell.prompt;
    return {
      exit_code: prompt.exitCode,
      pid: prompt.pid,
      username: prompt.username,
      hostname: prompt.hostname,
      working_dir: prompt.workingDir,
      py_interpreter_path: prompt.pyInterpreterPath,
      prefix: '',
      suffix: '',
    };
  }

  /**
   * Shapes the output since the last observation. As in the reference, an observation of a command
   * that is still running, returned to an action that did not start it, carries the continuation
   * prefix; the completing observation does not.
   */
  private observe(
    command: string,
    shell: PtyShell,
    metadata: CmdOutputMetadata,
    hidden: boolean,
    action: number,
    completed: boolean,
  ): Observation {
    const text = renderOutput(shell.takeOutput());
    if (!completed && this.pending && this.pending.startedBy !== action) metadata.prefix = CONTINUE_PREFIX;
    return cmdOutputObservation(command, text, metadata, hidden);
  }

  private async executeStatic(
    command: string,
    args: CmdRunArgs,
    hardTimeoutSeconds: number | undefined,
  ): Promise<Observation> {
    const cwd = args.cwd ?? (await this.cwd());
    const seconds = hardTimeoutSeconds ?? DEFAULT_STATIC_TIMEOUT_SECONDS;
    const result = await runOneOff(this.processes, command, cwd, seconds * 1000);
    const prompt = (await this.shells.shell()).prompt;
    const metadata: CmdOutputMetadata = {
      ...emptyMetadata(),
      exit_code: result.exitCode,
      username: prompt.username,
      hostname: prompt.hostname,
      working_dir: cwd,
      py_interpreter_path: prompt.pyInterpreterPath,
      suffix: result.timedOut ? hardTimeoutSuffix(seconds) : completedSuffix(result.exitCode),
    };
    return cmdOutputObservation(command, renderOutput(result.output), metadata, args.hidden);
  }
}

export function isSpecialKey(command: string): boolean {
  return command.length === 3 && command.startsWith('C-');
}

/**
 * Plain text of bounded terminal output, with the reference's truncation marker where the middle fell
 * out. Shaped as the reference shapes what it reads off its tmux pane: every line loses its trailing
 * whitespace (capture-pane, then a per-line rstrip), and the whole output its leading and trailing
 * whitespace (the strips around its removal of the echoed command), so leading blank lines and the
 * first line's indentation go too. Python's whitespace, not JavaScript's (\x85 yes, \ufeff no).
 */
export function renderOutput(out: OutputSnapshot): string {
  if (out.dropped === 0) return pyStrip(rstripLines(toPlainText(out.head + out.tail)));
  const half = MAX_CMD_OUTPUT_SIZE / 2;
  const head = pyLstrip(rstripLines(toPlainText(out.head)));
  const tail = pyRstrip(rstripLines(toPlainText(out.tail)));
  return head.slice(0, half) + TRUNCATION_MARKER + tail.slice(Math.max(0, tail.length - half));
}

function rstripLines(text: string): string {
  return text.split('\n').map(pyRstrip).join('\n');
}

function waitForOutcome(
  shell: PtyShell,
  softMs: number | undefined,
  hardMs: number | undefined,
): Promise<Outcome> {
  if (!shell.busy) return Promise.resolve(shell.alive ? 'completed' : 'exited');
  return new Promise((resolve) => {
    let soft: NodeJS.Timeout | undefined;
    const armSoft = () => {
      if (softMs === undefined) return;
      if (soft) clearTimeout(soft);
      soft = setTimeout(() => finish('soft'), softMs);
    };
    const hard = hardMs === undefined ? undefined : setTimeout(() => finish('hard'), hardMs);
    const onPrompt = () => finish('completed');
    const onExit = () => finish('exited');
    const finish = (outcome: Outcome) => {
      if (soft) clearTimeout(soft);
      if (hard) clearTimeout(hard);
      shell.off('output', armSoft);
      shell.off('prompt', onPrompt);
      shell.off('exit', onExit);
      resolve(outcome);
    };
    shell.on('output', armSoft);
    shell.on('prompt', onPrompt);
    shell.on('exit', onExit);
    armSoft();
  });
}
