/** Runs every benchmark and writes bench/results/all.json. Run: npm run bench */

import { printTable, writeJson } from './lib/stats.js';
import { benchRuntimeServer } from './runtime-server.js';

const results: Record<string, unknown> = {};
const rows = await benchRuntimeServer();
printTable('Runtime server action round trips (one kept-alive HTTP connection)', rows);
results.runtimeServer = rows;
process.stdout.write(`\nJSON: ${writeJson('all', { ...results, at: new Date().toISOString() })}\n`);
