/**
 * Runs the benchmarks one after another, prints one table set per benchmark, and writes
 * bench/results/all.json. Run: npm run bench            (all of them)
 *                         npm run bench -- docker   (only the named ones: runtime-server, docker, control-plane, load, event-log, exec, e2b)
 */
import { benchControlPlane, printControlPlane } from './control-plane.js';
import { benchDocker, printDocker } from './docker.js';
import { benchE2b, printE2b } from './e2b.js';
import { benchEventLog, printEventLog } from './event-log.js';
import { benchExec, printExec } from './exec.js';
import { printTable, writeJson } from './lib/stats.js';
import { describeLoad, machineLoad } from './lib/util.js';
import { benchLoad, printLoad } from './load.js';
import { benchRuntimeServer } from './runtime-server.js';

const BENCHMARKS: Record<string, () => Promise<unknown>> = {
  'runtime-server': async () => {
    const rows = await benchRuntimeServer();
    printTable('Runtime server action round trips (one kept-alive HTTP connection)', rows);
    return rows;
  },
  docker: async () => {
    const r = await benchDocker();
    printDocker(r);
    return r;
  },
  'control-plane': async () => {
    const r = await benchControlPlane();
    printControlPlane(r);
    return r;
  },
  load: async () => {
    const r = await benchLoad();
    printLoad(r);
    return r;
  },
  'event-log': async () => {
    const r = await benchEventLog();
    printEventLog(r);
    return r;
  },
  exec: async () => {
    const r = await benchExec();
    printExec(r);
    return r;
  },
  e2b: async () => {
    const r = await benchE2b();
    printE2b(r);
    return r;
  },
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted) {
  if (!(name in BENCHMARKS)) {
    process.stderr.write(`unknown benchmark ${name}; choose from ${Object.keys(BENCHMARKS).join(', ')}\n`);
    process.exit(2);
  }
}
const names = wanted.length ? wanted : Object.keys(BENCHMARKS);

const results: Record<string, unknown> = { machine: { before: machineLoad() } };
for (const name of names) {
  const load = machineLoad();
  process.stdout.write(`\n=== ${name} (${describeLoad(load)})\n`);
  const t0 = performance.now();
  results[name] = await BENCHMARKS[name]!();
  process.stdout.write(`\n(${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
}
(results.machine as Record<string, unknown>).after = machineLoad();
process.stdout.write(`\nJSON: ${writeJson('all', { ...results, at: new Date().toISOString() })}\n`);
// The in-process control plane's kept-alive clients may otherwise hold the event loop open.
process.exit(0);
