/**
 * The agent_skills plugin: OpenHands' AgentSkills helpers in the IPython kernel (agent-skills-source.ts).
 * The kernel runs a startup cell that loads them as the module berth_agentskills and star-imports them,
 * as the reference runs `from openhands.runtime.plugins.agent_skills.agentskills import *` at start.
 *
 * file_editor in the kernel is served by the runtime server's own FileEditor, the one behind the `edit`
 * action, through a host call (core/python/host-calls.ts) rather than by a Python port of it: one
 * implementation cannot drift from itself, so the two give the same text for the same request, and they
 * share the undo history. The server process runs as the sandbox user (image/entrypoint.sh drops
 * privileges before starting it), the same user as the kernel, so a file the kernel may not touch is
 * one the editor may not touch either: Permission denied, as the reference's in-kernel editor reports.
 */
import { type FileEditor, pyPath } from '../core/editor/editor.js';
import { EditorError, EditorOSError, type EditorRequest } from '../core/editor/types.js';
import type { HostCalls } from '../core/python/host-calls.js';
import { AGENT_SKILLS_SOURCE } from './agent-skills-source.js';

/** Name of the module the helpers live in inside the kernel. */
export const AGENT_SKILLS_MODULE = 'berth_agentskills';

/**
 * A cell that defines the helpers in the kernel: the module is made from the embedded source (with its
 * lines in linecache, so tracebacks through it show code) and star-imported into the cells' namespace.
 * Prints nothing when it works.
 */
export function agentSkillsStartupCode(): string {
  return [
    'def _berth_load_agent_skills(source):',
    '    import linecache, sys, types',
    `    filename = '<${AGENT_SKILLS_MODULE}>'`,
    '    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)',
    `    module = types.ModuleType('${AGENT_SKILLS_MODULE}')`,
    '    module.__file__ = filename',
    `    sys.modules['${AGENT_SKILLS_MODULE}'] = module`,
    "    exec(compile(source, filename, 'exec'), module.__dict__)",
    '    import os',
    // The kernel's own ends of the host-call pipes must not leak into the cells' subprocesses.
    '    for fd in (5, 6):',
    '        try:',
    '            os.set_inheritable(fd, False)',
    '        except OSError:',
    '            pass',
    // JSON's string syntax is a subset of Python's (the escapes JSON.stringify writes all mean the same).
    `_berth_load_agent_skills(${JSON.stringify(AGENT_SKILLS_SOURCE)})`,
    'del _berth_load_agent_skills',
    `from ${AGENT_SKILLS_MODULE} import *`,
  ].join('\n');
}

/**
 * The reply to a file_editor call: the fields of the reference's result object, in its order (its
 * ToolResult for a failure, its CLIResult otherwise), or an OSError for the kernel to raise.
 */
export type FileEditorReply =
  | { fields: Record<string, unknown> }
  | { oserror: { errno: number; strerror: string; filename: string } };

/** The kernel's file_editor, answered by `editor()`: what the `edit` action would answer. */
export async function fileEditorCall(
  editor: () => Promise<FileEditor>,
  args: unknown,
): Promise<FileEditorReply> {
  const a = (args ?? {}) as Record<string, unknown>;
  const req: EditorRequest = {
    command: pyStr(a.command),
    path: typeof a.path === 'string' ? a.path : pyStr(a.path),
    file_text: a.file_text as string | null | undefined,
    old_str: a.old_str as string | null | undefined,
    new_str: a.new_str as string | null | undefined,
    insert_line: a.insert_line as number | string | null | undefined,
    view_range: a.view_range as number[] | null | undefined,
  };
  try {
    const result = await (await editor()).execute(req);
    // The reference's view of a directory passes find's stderr on as the (usually empty) error field.
    const isDirectoryView =
      req.command === 'view' &&
      result.before === null &&
      result.output.startsWith("Here's the files and directories");
    return {
      fields: {
        output: result.output,
        error: isDirectoryView ? '' : null,
        path: pyPath(req.path),
        prev_exist: result.prevExist,
        old_content: req.command === 'view' ? null : result.before,
        new_content: req.command === 'view' ? null : result.after,
      },
    };
  } catch (err) {
    if (err instanceof EditorOSError) {
      return { oserror: { errno: err.errno, strerror: err.strerror, filename: err.filename } };
    }
    if (err instanceof EditorError) return { fields: { output: null, error: err.message } };
    throw err;
  }
}

/** The host calls the agent_skills module makes. */
export function agentSkillsHostCalls(editor: () => Promise<FileEditor>): HostCalls {
  return { file_editor: (args) => fileEditorCall(editor, args) };
}

/** str() of a JSON value, as the reference's messages show a non-string argument. */
function pyStr(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
