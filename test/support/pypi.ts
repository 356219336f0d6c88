/**
 * Whether a failed pip run (or a script that runs pip) failed because PyPI could not be reached, so
 * its suite may say SKIPPED instead of failing. Only a connection or name-resolution failure, or the
 * run's own time bound, counts: pip's closing "No matching distribution" alone is also what a bad pin
 * or an unsupported Python prints, and that must fail the suite.
 */
import type { CommandRun } from './run-command.js';

const UNREACHABLE =
  /Connection (?:refused|reset|aborted|error)|NewConnectionError|Network is unreachable|Name or service not known|Temporary failure in name resolution|Max retries exceeded|Read timed out|ConnectTimeout/i;

/** The reason to print with SKIPPED when PyPI was unreachable; undefined when the run failed otherwise. */
export function pypiUnreachable(
  run: Pick<CommandRun, 'out' | 'timedOut' | 'code'>,
  what = 'pip',
): string | undefined {
  if (run.timedOut) return `${what} ran out of time (PyPI too slow or unreachable)`;
  const line = run.out
    .split('\n')
    .find((l) => UNREACHABLE.test(l))
    ?.trim();
  return line === undefined ? undefined : `PyPI unreachable: ${line.slice(0, 300)}`;
}
