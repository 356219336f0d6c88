/**
 * OpenHands V0 action-execution wire format: the actions an agent sends to /execute_action and the
 * observations it gets back. Field names, defaults and strings follow the reference exactly.
 * Unknown keys inside `args` are ignored rather than rejected, so newer OpenHands clients that add
 * fields keep working; known fields are type-checked.
 */
import * as z from 'zod';
import { MAX_ACTION_TIMEOUT_SECONDS } from './limits.js';

const securityRisk = z.number().int().optional();
const common = {
  thought: z.string().optional(),
  security_risk: securityRisk,
  confirmation_state: z.string().optional(),
  // Legacy fields the reference tolerates.
  is_confirmed: z.unknown().optional(),
  keep_prompt: z.unknown().optional(),
};

export const CmdRunArgs = z.looseObject({
  command: z.string(),
  is_input: z.boolean().default(false),
  blocking: z.boolean().default(false),
  is_static: z.boolean().default(false),
  cwd: z.string().nullish(),
  hidden: z.boolean().default(false),
  ...common,
});
export type CmdRunArgs = z.infer<typeof CmdRunArgs>;

export const IPythonRunCellArgs = z.looseObject({
  code: z.string(),
  include_extra: z.boolean().default(true),
  kernel_init_code: z.string().default(''),
  ...common,
});
export type IPythonRunCellArgs = z.infer<typeof IPythonRunCellArgs>;

const viewRange = z.array(z.number().int()).nullish();

export const FileReadArgs = z.looseObject({
  path: z.string(),
  start: z.number().int().default(0),
  end: z.number().int().default(-1),
  impl_source: z.enum(['default', 'oh_aci']).default('default'),
  view_range: viewRange,
  ...common,
});
export type FileReadArgs = z.infer<typeof FileReadArgs>;

export const FileWriteArgs = z.looseObject({
  path: z.string(),
  content: z.string(),
  start: z.number().int().default(0),
  end: z.number().int().default(-1),
  ...common,
});
export type FileWriteArgs = z.infer<typeof FileWriteArgs>;

export const FileEditArgs = z.looseObject({
  path: z.string(),
  command: z.string().default(''),
  file_text: z.string().nullish(),
  old_str: z.string().nullish(),
  new_str: z.string().nullish(),
  insert_line: z.union([z.number().int(), z.string()]).nullish(),
  view_range: viewRange,
  content: z.string().default(''),
  start: z.number().int().default(1),
  end: z.number().int().default(-1),
  impl_source: z.enum(['oh_aci', 'llm_based_edit']).default('oh_aci'),
  ...common,
});
export type FileEditArgs = z.infer<typeof FileEditArgs>;

/** The action types this server executes, with the schema of their args. */
export const actionArgSchemas = {
  run: CmdRunArgs,
  run_ipython: IPythonRunCellArgs,
  read: FileReadArgs,
  write: FileWriteArgs,
  edit: FileEditArgs,
} as const;
export type ExecutableActionType = keyof typeof actionArgSchemas;

/** Action types the reference knows but that never execute inside a sandbox. */
export const nonExecutableActionTypes = [
  'browse',
  'browse_interactive',
  'call_tool_mcp',
  'message',
  'system',
  'think',
  'finish',
  'reject',
  'delegate',
  'recall',
  'condensation',
  'condensation_request',
  'task_tracking',
  'loop_recovery',
  'change_agent_state',
  'null',
] as const;

export const ActionEnvelope = z.object({
  action: z.looseObject({
    action: z.string(),
    args: z.record(z.string(), z.unknown()).default({}),
    timeout: z.number().positive().max(MAX_ACTION_TIMEOUT_SECONDS).nullish(),
  }),
});
export type ActionEnvelope = z.infer<typeof ActionEnvelope>;

export interface CmdOutputMetadata {
  exit_code: number;
  pid: number;
  username: string | null;
  hostname: string | null;
  working_dir: string | null;
  py_interpreter_path: string | null;
  prefix: string;
  suffix: string;
}

export function emptyMetadata(): CmdOutputMetadata {
  return {
    exit_code: -1,
    pid: -1,
    username: null,
    hostname: null,
    working_dir: null,
    py_interpreter_path: null,
    prefix: '',
    suffix: '',
  };
}

export interface Observation {
  observation: string;
  content: string;
  extras: Record<string, unknown>;
  message: string;
  success?: boolean;
}

export const MAX_CMD_OUTPUT_SIZE = 30_000;
export const TRUNCATION_MARKER = '\n[... Observation truncated due to length ...]\n';

/** The reference's middle truncation: first and last halves around a marker. */
export function truncateContent(content: string, max = MAX_CMD_OUTPUT_SIZE): string {
  if (content.length <= max) return content;
  const half = Math.floor(max / 2);
  return content.slice(0, half) + TRUNCATION_MARKER + content.slice(content.length - half);
}

export function cmdOutputObservation(
  command: string,
  content: string,
  metadata: CmdOutputMetadata,
  hidden = false,
): Observation {
  return {
    observation: 'run',
    content: hidden ? content : truncateContent(content),
    extras: { command, hidden, metadata },
    message: `Command \`${command}\` executed with exit code ${metadata.exit_code}.`,
    success: metadata.exit_code === 0,
  };
}

/**
 * Berth's own action beside the reference's: ends every process of the sandbox user and starts a
 * fresh shell (files stay). It runs at once, outside the action queue, because what it is for is a
 * queue stuck behind a runaway command or a fork bomb.
 */
export const RESET_ACTION = 'reset';

export function resetObservation(r: { killed: number; left: number }): Observation {
  const content = `Reset: ended ${r.killed} process${r.killed === 1 ? '' : 'es'}${r.left ? ` (${r.left} would not end)` : ''}; a fresh shell is ready.`;
  return { observation: 'reset', content, extras: { killed: r.killed, left: r.left }, message: content };
}

export function errorObservation(content: string, errorId = ''): Observation {
  return { observation: 'error', content, extras: { error_id: errorId }, message: content };
}

export function fileReadObservation(path: string, content: string, implSource = 'default'): Observation {
  return {
    observation: 'read',
    content,
    extras: { path, impl_source: implSource },
    message: `I read the file ${path}.`,
  };
}

export function fileWriteObservation(path: string): Observation {
  return { observation: 'write', content: '', extras: { path }, message: `I wrote to the file ${path}.` };
}

export interface FileEditExtras {
  path: string;
  prev_exist: boolean;
  old_content: string | null;
  new_content: string | null;
  impl_source: string;
  diff: string | null;
  _diff_cache: null;
}

export function fileEditObservation(content: string, extras: FileEditExtras): Observation {
  return {
    observation: 'edit',
    content,
    extras: { ...extras },
    message: `I edited the file ${extras.path}.`,
  };
}

export function ipythonObservation(code: string, content: string, imageUrls: string[] | null): Observation {
  return {
    observation: 'run_ipython',
    content,
    extras: { code, image_urls: imageUrls && imageUrls.length > 0 ? imageUrls : null },
    message: 'Code executed in IPython cell.',
    success: true,
  };
}
