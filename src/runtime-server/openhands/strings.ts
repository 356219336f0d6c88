/** Texts agents and their prompts depend on, exactly as the reference prints them. */

export const TIMEOUT_MESSAGE =
  'You may wait longer to see additional output by sending empty command \'\', send other commands to interact with the current process, send keys ("C-c", "C-z", "C-d") to interrupt/kill the previous command before sending your new command, or use the timeout parameter in execute_bash for future commands.';

export const CONTINUE_PREFIX = '[Below is the output of the previous command.]\n';
export const NO_RUNNING_COMMAND_LOGS = 'ERROR: No previous running command to retrieve logs from.';
export const NO_RUNNING_COMMAND_INPUT = 'ERROR: No previous running command to interact with.';

export const completedSuffix = (exitCode: number) => `\n[The command completed with exit code ${exitCode}.]`;
export const completedWithKeySuffix = (exitCode: number, key: string) =>
  `\n[The command completed with exit code ${exitCode}. CTRL+${key} was sent.]`;
export const softTimeoutSuffix = (seconds: number) =>
  `\n[The command has no new output after ${seconds} seconds. ${TIMEOUT_MESSAGE}]`;
/** The reference prints the hard timeout as a Python float: 1 -> "1.0", 2.5 -> "2.5". */
export const hardTimeoutSuffix = (seconds: number) =>
  `\n[The command timed out after ${pythonFloat(seconds)} seconds. ${TIMEOUT_MESSAGE}]`;
export const notExecutedSuffix = (command: string) =>
  `\n[Your command "${command}" is NOT executed. The previous command is still running - You CANNOT send new commands until the previous command is completed. By setting \`is_input\` to \`true\`, you can interact with the current process: ${TIMEOUT_MESSAGE}]`;

export function multipleCommandsError(commands: string[]): string {
  const listed = commands.map((c, i) => `(${i + 1}) ${c}`).join('\n');
  return `ERROR: Cannot execute multiple commands at once.\nPlease run each command separately OR chain them into a single command via && or ;\nProvided commands:\n${listed}`;
}

export function pythonFloat(n: number): string {
  return Number.isInteger(n) ? `${n}.0` : String(n);
}
