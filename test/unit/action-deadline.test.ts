/** The action queue's hard deadline: a stuck action is abandoned and the queue moves on. */
import { describe, expect, it } from 'vitest';
import { ActionExecutor } from '../../src/runtime-server/openhands/executor.js';

describe('action deadline', () => {
  it('abandons an action stuck past its timeout and runs the next one', async () => {
    let calls = 0;
    let killed = 0;
    // A shell whose first command never returns (as a read of a hung mount would), the next at once.
    const bash = {
      execute: () => {
        calls++;
        return calls === 1
          ? new Promise(() => undefined)
          : Promise.resolve({ observation: 'run', content: 'ok' });
      },
      cwd: async () => '/',
      killRunningCommand: () => {
        killed++;
        return true;
      },
    };
    const executor = new ActionExecutor({
      bash: bash as never,
      editor: undefined as never,
      python: undefined as never,
      deadlineGraceSeconds: 0.05,
    });
    const stuck = executor.execute(
      executor.parse({ action: { action: 'run', args: { command: 'x' }, timeout: 0.05 } }),
    );
    const next = executor.execute(executor.parse({ action: { action: 'run', args: { command: 'y' } } }));
    const first = await stuck;
    expect(first.observation).toBe('error');
    expect(first.content).toContain('did not finish within 0.1 seconds: its command was killed');
    expect(killed).toBe(1);
    expect((await next).content).toBe('ok');
  });
});
