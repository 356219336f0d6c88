/**
 * Executes one OpenHands action: validates it, runs it on the core services, shapes the observation.
 * Actions run one at a time, as in the reference; everything else the server answers stays free.
 */
import type * as z from 'zod';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import {
  ActionEnvelope,
  actionArgSchemas,
  type ExecutableActionType,
  errorObservation,
  type FileEditArgs,
  type FileReadArgs,
  fileEditObservation,
  fileReadObservation,
  type IPythonRunCellArgs,
  ipythonObservation,
  nonExecutableActionTypes,
  type Observation,
} from '../../protocol/openhands.js';
import { editObservationDiff } from '../core/editor/diff.js';
import type { FileEditor } from '../core/editor/editor.js';
import { EditorError, type EditorRequest } from '../core/editor/types.js';
import type { PythonKernel } from '../core/python/kernel.js';
import type { Lazy } from '../lazy.js';
import type { BashSession } from './bash-session.js';
import { isBinaryPath, readFileAction, writeFileAction } from './file-actions.js';
import { pythonFloat } from './strings.js';

/** The reference client's default hard timeout for a cell when the action carries none. */
export const DEFAULT_IPYTHON_TIMEOUT_SECONDS = 120;

/**
 * Deadline of an action that carries no timeout: the reference's default sandbox timeout. Past its
 * deadline an action is abandoned, so one stuck action can never hold the queue forever.
 */
export const DEFAULT_ACTION_DEADLINE_SECONDS = 120;
/**
 * Time beyond its own timeout an action gets before it is abandoned: a command that timed out still
 * needs a moment to be interrupted and to report.
 */
export const ACTION_DEADLINE_GRACE_SECONDS = 15;

export interface ExecutorDeps {
  bash: BashSession;
  /** Made on the first oh_aci read or edit. */
  editor: Lazy<FileEditor>;
  /** Made on the first run_ipython. */
  python: Lazy<PythonKernel>;
  /** @default ACTION_DEADLINE_GRACE_SECONDS */
  deadlineGraceSeconds?: number;
}

export class ActionExecutor {
  private queue: Promise<unknown> = Promise.resolve();
  private lastStarted = Date.now();
  private kernelInitDone = new Set<string>();

  constructor(private readonly deps: ExecutorDeps) {}

  /** Milliseconds-since-epoch at which the last action started (the reference's idle clock). */
  get lastExecutionStarted(): number {
    return this.lastStarted;
  }

  /** Validates the request body; throws BerthError with the field that is wrong. */
  parse(body: unknown): { type: ExecutableActionType; args: unknown; timeout: number | undefined } {
    const envelope = ActionEnvelope.safeParse(body);
    if (!envelope.success) throw validationError(envelope.error, 'body');
    const { action: type, args, timeout } = envelope.data.action;
    // Own keys only: `in` would take "__proto__" or "constructor" for an action type.
    if (!Object.hasOwn(actionArgSchemas, type)) {
      const known = (nonExecutableActionTypes as readonly string[]).includes(type);
      throw new BerthError(
        ErrorCode.UNKNOWN_ACTION,
        known
          ? `Action ${type} is not supported in the current runtime: it is handled by the agent, not the sandbox.`
          : `Unknown action type "${type}". Supported: ${Object.keys(actionArgSchemas).join(', ')}.`,
      );
    }
    const schema = actionArgSchemas[type as ExecutableActionType] as z.ZodType;
    const parsed = schema.safeParse(args);
    if (!parsed.success) throw validationError(parsed.error, 'action.args');
    return { type: type as ExecutableActionType, args: parsed.data, timeout: timeout ?? undefined };
  }

  /** Runs a parsed action after every earlier one finished. Exceptions become ErrorObservations. */
  execute(action: ReturnType<ActionExecutor['parse']>): Promise<Observation> {
    const run = this.queue.then(async () => {
      this.lastStarted = Date.now();
      const grace = this.deps.deadlineGraceSeconds ?? ACTION_DEADLINE_GRACE_SECONDS;
      const seconds = (action.timeout ?? DEFAULT_ACTION_DEADLINE_SECONDS) + grace;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<Observation>((resolve) => {
        timer = setTimeout(() => {
          // A command past its deadline is killed with its whole process group; other kinds of work
          // (a blocked file system call, say) cannot be, and are left behind.
          const killed = action.type === 'run' && this.deps.bash.killRunningCommand();
          resolve(
            errorObservation(
              killed
                ? `The run action did not finish within ${seconds} seconds: its command was killed (with its process group), so the next action can run.`
                : `The ${action.type} action did not finish within ${seconds} seconds and was abandoned, so the next action can run. It may still be running in the background.`,
            ),
          );
        }, seconds * 1000);
      });
      const work = this.dispatch(action).catch((err: unknown) =>
        errorObservation((err as Error)?.message ?? String(err)),
      );
      try {
        return await Promise.race([work, deadline]);
      } finally {
        clearTimeout(timer);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async dispatch({ type, args, timeout }: ReturnType<ActionExecutor['parse']>): Promise<Observation> {
    const { bash } = this.deps;
    switch (type) {
      case 'run':
        return bash.execute(args as never, timeout);
      case 'run_ipython':
        return this.runIpython(args as IPythonRunCellArgs, timeout);
      case 'read':
        return this.read(args as FileReadArgs);
      case 'write':
        return writeFileAction(args as never, await bash.cwd());
      case 'edit':
        return this.edit(args as FileEditArgs);
    }
  }

  private async read(args: FileReadArgs): Promise<Observation> {
    if (args.impl_source !== 'oh_aci') return readFileAction(args, await this.deps.bash.cwd());
    // As the reference: a binary file is refused before the editor sees it.
    if (await isBinaryPath(args.path)) return errorObservation('ERROR_BINARY_FILE');
    const { output } = await this.runEditor({
      command: 'view',
      path: args.path,
      view_range: args.view_range,
    });
    return fileReadObservation(args.path, output, 'oh_aci');
  }

  private async edit(args: FileEditArgs): Promise<Observation> {
    if (args.impl_source !== 'oh_aci') {
      return errorObservation(
        'LLM-based edits (impl_source "llm_based_edit") are applied by the agent host, not inside the sandbox. Use impl_source "oh_aci".',
      );
    }
    const result = await this.runEditor({
      command: args.command,
      path: args.path,
      file_text: args.file_text,
      old_str: args.old_str,
      new_str: args.new_str,
      insert_line: args.insert_line,
      view_range: args.view_range,
    });
    return fileEditObservation(result.output, {
      path: args.path,
      prev_exist: result.prevExist,
      old_content: args.old_str ?? null,
      new_content: args.new_str ?? null,
      impl_source: 'oh_aci',
      diff: editObservationDiff(result.before ?? '', result.after ?? '', args.path),
      _diff_cache: null,
    });
  }

  /** Editor errors become the reference's "ERROR:\n<message>" content, never an exception. */
  private async runEditor(req: EditorRequest) {
    try {
      const editor = await this.deps.editor.get();
      return await editor.execute(req);
    } catch (err) {
      if (!(err instanceof EditorError)) throw err;
      return { output: `ERROR:\n${err.message}`, prevExist: false, before: null, after: null };
    }
  }

  private async runIpython(args: IPythonRunCellArgs, timeout: number | undefined): Promise<Observation> {
    const cwd = await this.deps.bash.cwd();
    const python = await this.deps.python.get();
    const seconds = timeout ?? DEFAULT_IPYTHON_TIMEOUT_SECONDS;
    if (args.kernel_init_code && !this.kernelInitDone.has(args.kernel_init_code)) {
      await python.run({ code: args.kernel_init_code, cwd, timeoutMs: seconds * 1000 });
      this.kernelInitDone.add(args.kernel_init_code);
    }
    const result = await python.run({ code: args.code, cwd, timeoutMs: seconds * 1000 });
    let content = result.text.trimEnd();
    // As the reference: the timeout text alone (its client drops what the cell printed), with the
    // timeout as a Python float ("2.0").
    if (result.timedOut) content = `[Execution timed out (${pythonFloat(seconds)} seconds).]`;
    else if (!result.hadOutput && result.imageUrls.length === 0)
      content = '[Code executed successfully with no output]';
    if (args.include_extra) {
      content += `\n[Jupyter current working directory: ${cwd}]\n[Jupyter Python interpreter: ${result.interpreter}]`;
    }
    return ipythonObservation(args.code, content, result.timedOut ? [] : result.imageUrls);
  }
}

function validationError(error: z.ZodError, root: string): BerthError {
  const issue = error.issues[0];
  const field = [root, ...(issue?.path ?? [])].join('.');
  return new BerthError(ErrorCode.VALIDATION_FAILED, `Invalid field ${field}: ${issue?.message}`, {
    issues: error.issues.map((i) => ({ path: [root, ...i.path].join('.'), message: i.message })),
  });
}
