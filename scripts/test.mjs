#!/usr/bin/env node
// Runs the whole test suite with vitest and ends with the plain line CI reads: "N passed, N failed".
// Extra arguments go to vitest (e.g. a file filter). Exit code: vitest's.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const report = '.test-results/vitest.json';
rmSync(report, { force: true });
const run = spawnSync('npx', ['vitest', 'run', ...process.argv.slice(2)], { stdio: 'inherit' });
let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed = (r.numFailedTests ?? 0) + (r.numFailedTestSuites && !r.numFailedTests ? r.numFailedTestSuites : 0);
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
} else {
  failed = 1;
  process.stderr.write('test: vitest wrote no report; counting the run as one failure\n');
}
// Checks run before the tests by .ci/run (typecheck, lint, OpenAPI drift) count as failures too.
const checksFailed = Number(process.env.BERTH_CHECKS_FAILED ?? 0) || 0;
failed += checksFailed;
const code = checksFailed > 0 ? 1 : (run.status ?? 1);
if (code !== 0 && failed === 0) failed = 1;
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code);
