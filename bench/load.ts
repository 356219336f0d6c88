/**
 * The reliability suite's load at several sizes: N sandboxes created at once (pool size 0, real cold
 * starts), then 10 mixed actions in each, all at the same time; then all deleted. Prints, per N,
 * create p50/p95 beside the floor (raw `docker run -d IMAGE` of the same runtime image, N at once),
 * action p50/p99 beside the floor (`bash -c` of the same command on this machine), failures, and the
 * control plane's resident memory before and at the peak, so regressions show.
 *
 * Run: npx tsx bench/load.ts   (or: npm run bench -- load)
 * Sizes: BENCH_LOAD_SIZES (10,30,60). Each size is bounded by CREATE_TIMEOUT_MS per request.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BerthClient } from '../src/sdk/index.js';
import { startCp } from './control-plane.js';
import { printTable, type Row, summarize, writeJson } from './lib/stats.js';
import { docker, epochMs, isMain, printKeyValues, removeLabelled } from './lib/util.js';

const run = promisify(execFile);
const SIZES = (process.env.BENCH_LOAD_SIZES ?? '10,30,60')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const ACTIONS_PER_SANDBOX = 10;
const CREATE_TIMEOUT_MS = 180_000;
const FLOOR_LABEL = 'berth.bench=load-floor';

export interface LoadResult {
  size: number;
  rows: Row[];
  failures: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
}

const MIXED: Array<{ action: string; args: Record<string, unknown>; shell?: string }> = [
  { action: 'run', args: { command: 'echo hello' }, shell: 'echo hello' },
  { action: 'write', args: { path: '/tmp/load.txt', content: 'one\ntwo' } },
  { action: 'read', args: { path: '/tmp/load.txt' } },
  { action: 'edit', args: { command: 'create', path: '/tmp/e.py', file_text: 'x = 1\n' } },
  { action: 'edit', args: { command: 'str_replace', path: '/tmp/e.py', old_str: 'x = 1', new_str: 'x = 2' } },
  { action: 'run', args: { command: 'python3 /tmp/e.py' }, shell: 'python3 -c pass' },
  { action: 'run', args: { command: 'ls /usr/bin | wc -l' }, shell: 'ls /usr/bin | wc -l' },
  { action: 'run', args: { command: 'cd /tmp' }, shell: 'cd /tmp' },
  { action: 'read', args: { path: '/tmp/e.py' } },
  { action: 'run', args: { command: 'false' }, shell: 'false' },
];

async function benchSize(size: number, image: string): Promise<LoadResult> {
  const c = await startCp(0);
  // Through the SDK, as an agent framework would call it.
  const client = new BerthClient({ url: c.cp.url, requestTimeoutMs: CREATE_TIMEOUT_MS });
  const rssBeforeMiB = process.memoryUsage().rss / 2 ** 20;
  let rssPeakMiB = rssBeforeMiB;
  const sampler = setInterval(() => {
    rssPeakMiB = Math.max(rssPeakMiB, process.memoryUsage().rss / 2 ** 20);
  }, 100);
  let failures = 0;
  const createMs: number[] = [];
  const actionMs: number[] = [];
  const ids: string[] = [];
  try {
    await Promise.all(
      Array.from({ length: size }, async () => {
        const t0 = epochMs();
        const sb = await client.sandboxes.create({}, CREATE_TIMEOUT_MS).catch(() => undefined);
        if (!sb) {
          failures++;
          return;
        }
        createMs.push(epochMs() - t0);
        ids.push(sb.id);
      }),
    );
    await Promise.all(
      ids.map(async (id) => {
        for (const a of MIXED) {
          const t0 = epochMs();
          const obs = await client
            .sandbox(id)
            .executeAction(a.action, a.args, 60)
            .catch(() => undefined);
          if (obs === undefined) failures++;
          else actionMs.push(epochMs() - t0);
        }
      }),
    );
    await Promise.all(ids.map((id) => client.sandboxes.delete(id).catch(() => undefined)));
  } finally {
    clearInterval(sampler);
    await c.close();
  }

  // Floors, at the same concurrency: raw container starts of the same image, raw shell commands.
  const floorCreate: number[] = [];
  await Promise.all(
    Array.from({ length: size }, async () => {
      const t0 = epochMs();
      await docker(['run', '-d', '--label', FLOOR_LABEL, '--entrypoint', 'true', image]).catch(
        () => undefined,
      );
      floorCreate.push(epochMs() - t0);
    }),
  );
  await removeLabelled(FLOOR_LABEL);
  const floorAction: number[] = [];
  await Promise.all(
    Array.from({ length: size }, async () => {
      for (const a of MIXED) {
        const t0 = epochMs();
        await run('bash', ['-c', a.shell ?? 'true']).catch(() => undefined);
        floorAction.push(epochMs() - t0);
      }
    }),
  );

  return {
    size,
    failures,
    rssBeforeMiB,
    rssPeakMiB,
    rows: [
      summarize(`create, ${size} at once`, createMs, { floor: `docker run -d, ${size} at once` }),
      summarize(`docker run -d, ${size} at once`, floorCreate),
      summarize(`action, ${size} sandboxes x ${ACTIONS_PER_SANDBOX}`, actionMs, {
        floor: `bash -c, ${size} at once`,
      }),
      summarize(`bash -c, ${size} at once`, floorAction),
    ],
  };
}

export async function benchLoad(): Promise<LoadResult[]> {
  const images = (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', 'berth-runtime'])).split(
    '\n',
  );
  const image = images.find((i) => i && !i.endsWith(':<none>'));
  if (!image) throw new Error('no berth-runtime image: run `node bin/berth.js image build` first');
  const results: LoadResult[] = [];
  for (const size of SIZES) results.push(await benchSize(size, image));
  return results;
}

export function printLoad(results: LoadResult[]): void {
  for (const r of results) {
    printTable(
      `Load: ${r.size} sandboxes created at once, ${ACTIONS_PER_SANDBOX} mixed actions each`,
      r.rows,
    );
    printKeyValues(`Load ${r.size}: failures and control plane memory`, [
      ['failures (creates + actions)', String(r.failures)],
      ['control plane RSS before', `${r.rssBeforeMiB.toFixed(0)} MiB`],
      ['control plane RSS peak', `${r.rssPeakMiB.toFixed(0)} MiB`],
    ]);
  }
}

if (isMain(import.meta.url)) {
  const results = await benchLoad();
  printLoad(results);
  process.stdout.write(`\n${writeJson('load', results)}\n`);
}
