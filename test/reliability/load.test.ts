/**
 * A bounded load on the real engine: 30 sandboxes created at once, 10 mixed actions in each, all at
 * the same time. Every create and action must succeed (no 5xx), every event log must be complete
 * action/observation pairs, and after deleting them nothing of theirs is left on the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { api, startInProcess } from '../integration/control-plane-helpers.js';
import { engineAvailable } from '../integration/docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: load suite (${unavailable})`);

const SANDBOXES = 30;

describe.skipIf(unavailable !== undefined)('30 sandboxes at once, 10 actions each', () => {
  let cp: RunningControlPlane & { apiKey: string };
  const call = (method: string, path: string, body?: unknown) => api(cp.url, cp.apiKey, method, path, body);

  beforeAll(async () => {
    cp = await startInProcess({ poolSize: 0 });
  });
  afterAll(async () => {
    if (!cp) return;
    await cp.close();
    await cp.manager['runtime'].reap(new Set());
  });

  it('all succeed, every log is complete pairs, nothing is left behind', { timeout: 300_000 }, async () => {
    const creates = await Promise.all(
      Array.from({ length: SANDBOXES }, (_, i) =>
        call('POST', '/api/sandboxes', { labels: { load: String(i) } }),
      ),
    );
    expect(creates.map((c) => c.status)).toEqual(Array(SANDBOXES).fill(201));
    const ids = creates.map((c) => c.json.id as string);

    const failures: string[] = [];
    await Promise.all(
      ids.map(async (id, i) => {
        const act = async (action: string, args: Record<string, unknown>) => {
          const res = await call('POST', `/api/sandboxes/${id}/execute_action`, {
            action: { action, args, timeout: 60 },
          });
          if (res.status !== 200) failures.push(`${id} ${action}: ${res.status} ${res.text.slice(0, 200)}`);
          return res.json;
        };
        const expectContent = (what: string, got: string | undefined, want: string) => {
          if (got !== want)
            failures.push(`${id} ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
        };
        expectContent('echo', (await act('run', { command: `echo sandbox-${i}` }))?.content, `sandbox-${i}`);
        await act('write', { path: '/tmp/load.txt', content: `line ${i}` });
        expectContent('read', (await act('read', { path: '/tmp/load.txt' }))?.content, `line ${i}\n`);
        await act('edit', { command: 'create', path: '/tmp/edit.py', file_text: 'x = 1\n' });
        await act('edit', {
          command: 'str_replace',
          path: '/tmp/edit.py',
          old_str: 'x = 1',
          new_str: `x = ${i}`,
        });
        expectContent(
          'python',
          (await act('run', { command: 'python3 /tmp/edit.py && echo ok' }))?.content,
          'ok',
        );
        const status = await act('run', { command: 'false' });
        if (status?.extras?.metadata?.exit_code !== 1)
          failures.push(`${id} exit code: ${status?.extras?.metadata?.exit_code}`);
        await act('run', { command: 'cd /tmp && export N=7' });
        expectContent('state', (await act('run', { command: 'echo "$PWD $N"' }))?.content, '/tmp 7');
        expectContent('cat', (await act('run', { command: 'grep -c . /tmp/load.txt' }))?.content, '1');
      }),
    );
    expect(failures).toEqual([]);

    for (const id of ids) {
      const events = (await call('GET', `/api/sandboxes/${id}/events?limit=1000`)).json.events as Array<{
        kind: string;
      }>;
      const actions = events.filter((e) => e.kind === 'action').length;
      expect(actions).toBe(10);
      expect(events.filter((e) => e.kind === 'observation').length).toBe(actions);
    }

    const deletes = await Promise.all(ids.map((id) => call('DELETE', `/api/sandboxes/${id}`)));
    expect(deletes.map((d) => d.status)).toEqual(Array(SANDBOXES).fill(204));
    // No container of this instance is left, in any state.
    expect(await cp.manager['runtime'].list()).toEqual([]);
  });
});
