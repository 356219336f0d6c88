/** Killing a running command's whole process group in the persistent shell (a real bash on a PTY). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProcessTable } from '../../src/runtime-server/core/process/table.js';
import { PtyShell } from '../../src/runtime-server/core/shell/pty-shell.js';

const alive = (marker: string) => {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim();
  } catch {
    return ''; // pgrep exits 1 when nothing matches
  }
};

describe('signalForeground', () => {
  it('kills the command and what it started in its job, and leaves the shell', async () => {
    const shell = await PtyShell.start({
      processes: new ProcessTable(),
      cwd: mkdtempSync(join(tmpdir(), 'berth-pty-')),
    });
    try {
      expect(shell.signalForeground('SIGKILL')).toBe(false); // nothing running: nothing to signal
      const marker = `sleep 31${Math.floor(Math.random() * 1000)}`;
      const prompt = new Promise((r) => shell.once('prompt', r));
      shell.submit(`sh -c '${marker} & ${marker}; echo not-reached'`);
      for (let i = 0; i < 100 && alive(marker).split('\n').filter(Boolean).length < 2; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(alive(marker).split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(2);
      expect(shell.signalForeground('SIGKILL')).toBe(true);
      await prompt;
      expect(shell.busy).toBe(false);
      expect(shell.alive).toBe(true);
      for (let i = 0; i < 50 && alive(marker); i++) await new Promise((r) => setTimeout(r, 20));
      expect(alive(marker)).toBe('');
    } finally {
      await shell.dispose();
    }
  });
});
