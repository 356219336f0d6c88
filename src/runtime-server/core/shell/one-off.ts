/**
 * A command in a fresh, non-interactive bash that ends with the command: the reference's is_static
 * shells. Output is stdout and stderr interleaved, bounded like a PTY shell's.
 */
import { spawn } from 'node:child_process';
import { BoundedOutput } from './bounded-output.js';

export interface OneOffResult {
  exitCode: number;
  output: { head: string; tail: string; gap: boolean };
  timedOut: boolean;
}

/** Grace between SIGTERM and SIGKILL when a one-off command overruns its timeout. */
const KILL_GRACE_MS = 2000;

export function runOneOff(command: string, cwd: string, timeoutMs: number): Promise<OneOffResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-c', command], {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PAGER: 'cat', GIT_PAGER: 'cat' },
    });
    const out = new BoundedOutput();
    child.stdout.setEncoding('utf8').on('data', (d: string) => out.append(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => out.append(d));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      const group = -(child.pid ?? 0);
      try {
        process.kill(group, 'SIGTERM');
      } catch {
        // already gone
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(group, 'SIGKILL');
        } catch {
          // already gone
        }
      }, KILL_GRACE_MS);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      const exitCode = code ?? (signal ? 128 + (signalNumbers[signal] ?? 0) : -1);
      resolve({ exitCode: timedOut ? -1 : exitCode, output: out.take(), timedOut });
    });
  });
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
