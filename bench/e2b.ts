/**
 * The official `e2b` SDK against Berth, next to Berth's own SDK doing the same in the same run,
 * interleaved: a warm-pool create to the first `true` result, and one `true` round trip in a running
 * sandbox (E2B's `commands.run('true')` is a fresh `bash -l -c true`; Berth's `sandbox.exec(['true'])`
 * a fresh process too). Floor: spawning `bash -l -c true` on this machine.
 *
 * Run: npx tsx bench/e2b.ts   (or: npm run bench -- e2b)
 * Knobs: BENCH_E2B_CREATES (20 creates per SDK), BENCH_E2B_N (100 round trips per SDK)
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Sandbox } from 'e2b';
import { startCp } from './control-plane.js';
import { printTable, type Row, summarize, writeJson } from './lib/stats.js';
import { envInt, isMain } from './lib/util.js';

const CREATES = envInt('BENCH_E2B_CREATES', 20);
const N = envInt('BENCH_E2B_N', 100);
/** Warm-pool size: enough that every create in a round is served warm while it refills. */
const POOL = 2;
const run = promisify(execFile);

export interface E2bBenchResult {
  rows: Row[];
  creates: number;
  samples: number;
}

export async function benchE2b(): Promise<E2bBenchResult> {
  const c = await startCp(POOL);
  // What an E2B user sets; this control plane has no key, so any key shaped like E2B's is taken.
  const e2b = { apiKey: `e2b_${'0'.repeat(32)}`, apiUrl: `${c.cp.url}/e2b`, sandboxUrl: c.cp.url };
  const timed = async (f: () => Promise<unknown>) => {
    const s = performance.now();
    await f();
    return performance.now() - s;
  };
  try {
    const waitForPool = async () => {
      const deadline = Date.now() + 60_000;
      while (c.cp.manager.poolSize() < POOL && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
    };
    const s = { e2bCreate: [] as number[], berthCreate: [] as number[] };
    for (let i = 0; i < CREATES; i++) {
      await waitForPool();
      let e2bBox: Sandbox | undefined;
      s.e2bCreate.push(
        await timed(async () => {
          e2bBox = await Sandbox.create(e2b);
          await e2bBox.commands.run('true');
        }),
      );
      await e2bBox?.kill();
      await waitForPool();
      let berthId = '';
      s.berthCreate.push(
        await timed(async () => {
          const sb = await c.client.sandboxes.create({});
          berthId = sb.id;
          const r = await c.client.sandbox(sb.id).exec(['true']).done;
          if (r.exitCode !== 0) throw new Error(`exec true: exit ${r.exitCode}`);
        }),
      );
      await c.client.sandboxes.delete(berthId);
    }

    const box = await Sandbox.create(e2b);
    const sb = await c.client.sandboxes.create({});
    const api = c.client.sandbox(sb.id);
    const viaE2b = () => timed(() => box.commands.run('true'));
    const viaBerth = () =>
      timed(async () => {
        const r = await api.exec(['true']).done;
        if (r.exitCode !== 0) throw new Error(`exec true: exit ${r.exitCode}`);
      });
    const viaSpawn = () => timed(() => run('bash', ['-l', '-c', 'true']));
    for (let i = 0; i < 5; i++) {
      await viaE2b();
      await viaBerth();
    }
    const r = { e2b: [] as number[], berth: [] as number[], spawn: [] as number[] };
    for (let i = 0; i < N; i++) {
      r.e2b.push(await viaE2b());
      r.berth.push(await viaBerth());
      r.spawn.push(await viaSpawn());
    }
    await box.kill();
    await c.client.sandboxes.delete(sb.id);
    const FLOOR = 'floor: bash -l -c true (on this machine)';
    const BERTH_CREATE = "Berth SDK: create (warm pool) + exec(['true'])";
    const BERTH_RUN = "Berth SDK: sandbox.exec(['true'])";
    return {
      creates: CREATES,
      samples: N,
      rows: [
        summarize(BERTH_CREATE, s.berthCreate),
        summarize("e2b SDK: Sandbox.create() + commands.run('true')", s.e2bCreate, { floor: BERTH_CREATE }),
        summarize(FLOOR, r.spawn),
        summarize(BERTH_RUN, r.berth, { floor: FLOOR }),
        summarize("e2b SDK: commands.run('true')", r.e2b, { floor: FLOOR }),
      ],
    };
  } finally {
    await c.close();
  }
}

export function printE2b(r: E2bBenchResult): void {
  printTable(
    `E2B SDK on Berth: ${r.creates} warm creates and ${r.samples} round trips per SDK, interleaved`,
    r.rows,
  );
}

if (isMain(import.meta.url)) {
  const r = await benchE2b();
  printE2b(r);
  process.stdout.write(`\nJSON: ${writeJson('e2b', r)}\n`);
  process.exit(0);
}
