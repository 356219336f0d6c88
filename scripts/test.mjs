#!/usr/bin/env node
// Runs the whole test suite with vitest and ends with the plain line CI reads: "N passed, N failed".
// First every ordinary suite, then, alone, the suites that restart the Docker engine
// (test/disruptive, vitest.disruptive.config.ts). Extra arguments go to vitest (e.g. a file filter);
// with arguments, the disruptive suites run only if the filter names them. Exit code: non-zero if any
// run failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

// What a running `berth up` serves from this checkout: no test may rebuild or touch it, or the web UI
// of a Berth started with the quick start's first command would break under the second.
const SERVED = ['web/dist', 'dist'];
function snapshot() {
  const out = new Map();
  const walk = (dir) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p, `${statSync(p).size}:${statSync(p).mtimeMs}`);
    }
  };
  for (const d of SERVED) walk(d);
  return out;
}
const servedBefore = snapshot();

const args = process.argv.slice(2);
const runs = [
  { report: '.test-results/vitest.json', config: [] },
  { report: '.test-results/vitest-disruptive.json', config: ['--config', 'vitest.disruptive.config.ts'] },
];
const wantsDisruptive = args.length === 0 || args.some((a) => a.includes('disruptive'));

let passed = 0;
let failed = 0;
let skipped = 0;
let status = 0;
for (const [i, r] of runs.entries()) {
  if (i > 0 && !wantsDisruptive) continue;
  rmSync(r.report, { force: true });
  const run = spawnSync('npx', ['vitest', 'run', ...r.config, ...args, '--passWithNoTests'], {
    stdio: 'inherit',
  });
  if (existsSync(r.report)) {
    const j = JSON.parse(readFileSync(r.report, 'utf8'));
    passed += j.numPassedTests ?? 0;
    failed +=
      (j.numFailedTests ?? 0) + (j.numFailedTestSuites && !j.numFailedTests ? j.numFailedTestSuites : 0);
    skipped += (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0);
  } else {
    failed += 1;
    process.stderr.write(`test: vitest wrote no report (${r.report}); counting the run as one failure\n`);
  }
  if ((run.status ?? 1) !== 0) status = run.status ?? 1;
}
const servedAfter = snapshot();
const touched = [...new Set([...servedBefore.keys(), ...servedAfter.keys()])].filter(
  (p) => servedBefore.get(p) !== servedAfter.get(p),
);
if (touched.length > 0) {
  failed += 1;
  status = status || 1;
  process.stderr.write(
    `test: the run changed files a running Berth serves (${touched.length}, e.g. ${touched.slice(0, 3).join(', ')}); counted as one failure\n`,
  );
}
// Checks run before the tests by .ci/run (typecheck, lint, OpenAPI drift) count as failures too.
const checksFailed = Number(process.env.BERTH_CHECKS_FAILED ?? 0) || 0;
failed += checksFailed;
const code = checksFailed > 0 ? 1 : status;
if (code !== 0 && failed === 0) failed = 1;
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code);
