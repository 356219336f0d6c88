/** Runs a helper program for a test (a venv's pip, pytest, schemathesis, OpenHands) with a time bound. */
import { type ChildProcess, spawn } from 'node:child_process';

export interface CommandRun {
  code: number | null;
  /** stdout and stderr, in the order they came. */
  out: string;
  timedOut: boolean;
  seconds: number;
}

/**
 * Resolves with the exit code and output (never rejects on a non-zero exit). Past `timeoutMs` the
 * program's whole process group is killed: such programs start helpers of their own.
 */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeoutMs: number; env?: NodeJS.ProcessEnv; input?: string },
): Promise<CommandRun> {
  const t0 = performance.now();
  return new Promise((done, fail) => {
    const child: ChildProcess = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdin?.end(opts.input ?? '');
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, out, timedOut, seconds: Math.round((performance.now() - t0) / 100) / 10 });
    });
  });
}
