/**
 * A command in a fresh, non-interactive bash that ends with the command: the reference's is_static
 * shells. Output is stdout and stderr interleaved, bounded like a PTY shell's.
 */
import { COMMAND_OUTPUT, type OutputSnapshot } from '../process/output-buffer.js';
import type { ProcessTable } from '../process/table.js';

export interface OneOffResult {
  exitCode: number;
  output: OutputSnapshot;
  timedOut: boolean;
}

export async function runOneOff(
  processes: ProcessTable,
  command: string,
  cwd: string,
  timeoutMs: number,
): Promise<OneOffResult> {
  const proc = processes.spawn({
    kind: 'command',
    command: '/bin/bash',
    args: ['-c', command],
    cwd,
    env: { PAGER: 'cat', GIT_PAGER: 'cat' },
    io: { type: 'pipes', stdin: false },
    output: COMMAND_OUTPUT,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void proc.terminate('SIGTERM');
  }, timeoutMs);
  const status = await proc.exited;
  clearTimeout(timer);
  if (status.error) throw new Error(status.error);
  // The output buffer exists: the spawn above asked for one.
  return { exitCode: timedOut ? -1 : status.exitCode, output: proc.output!.take(), timedOut };
}
