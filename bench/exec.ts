/**
 * `exec` of a fresh process in a sandbox, the way `berth exec` and `sandbox.exec()` run one, next to
 * its floors in the same run, interleaved: `docker exec` of the same program in the same container
 * (what a user would otherwise type) and spawning it on this machine (`bash -c true`). Also the agent
 * shell's `run true` through the control plane, which is not a fresh process, for scale.
 *
 * Run: npx tsx bench/exec.ts   (or: npm run bench -- exec)
 * Knobs: BENCH_EXEC_N (200 samples per path)
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startCp } from './control-plane.js';
import { printTable, type Row, summarize, writeJson } from './lib/stats.js';
import { envInt, isMain, RUN_TRUE } from './lib/util.js';

const N = envInt('BENCH_EXEC_N', 200);
const run = promisify(execFile);

export interface ExecBenchResult {
  rows: Row[];
  samples: number;
}

export async function benchExec(): Promise<ExecBenchResult> {
  const c = await startCp(0);
  try {
    const sb = await c.client.sandboxes.create({});
    const api = c.client.sandbox(sb.id);
    const container = `berth-sandbox-${sb.id}`;
    const timed = async (f: () => Promise<unknown> | unknown) => {
      const s = performance.now();
      await f();
      return performance.now() - s;
    };
    const viaExec = () =>
      timed(async () => {
        const r = await api.exec(['true']).done;
        if (r.exitCode !== 0) throw new Error(`exec true: exit ${r.exitCode}`);
      });
    // Spawned asynchronously like the rest (spawnSync from this large process measured ~50x slower).
    const viaDocker = () => timed(() => run('docker', ['exec', container, 'true']));
    const viaSpawn = () => timed(() => run('bash', ['-c', 'true']));
    const viaShell = () =>
      timed(() => c.client.request('POST', `/api/sandboxes/${sb.id}/execute_action`, RUN_TRUE));
    // Warm-up (connections, the exec code's first load in the server).
    for (let i = 0; i < 5; i++) {
      await viaExec();
      await viaDocker();
      await viaShell();
    }
    const s = { exec: [] as number[], docker: [] as number[], spawn: [] as number[], shell: [] as number[] };
    for (let i = 0; i < N; i++) {
      s.exec.push(await viaExec());
      s.docker.push(await viaDocker());
      s.spawn.push(await viaSpawn());
      s.shell.push(await viaShell());
    }
    await c.client.sandboxes.delete(sb.id);
    const DOCKER = 'floor: docker exec CONTAINER true';
    return {
      samples: N,
      rows: [
        summarize('floor: bash -c true (on this machine)', s.spawn),
        summarize(DOCKER, s.docker),
        summarize('berth exec: sandbox.exec(["true"]) through the control plane', s.exec, { floor: DOCKER }),
        summarize('agent shell: run true through the control plane (no new process)', s.shell, {
          floor: DOCKER,
        }),
      ],
    };
  } finally {
    await c.close();
  }
}

export function printExec(r: ExecBenchResult): void {
  printTable(`exec of a fresh process: ${r.samples} samples per path, interleaved`, r.rows);
}

if (isMain(import.meta.url)) {
  const r = await benchExec();
  printExec(r);
  process.stdout.write(`\nJSON: ${writeJson('exec', r)}\n`);
  process.exit(0);
}
