/**
 * Writes the control plane's OpenAPI document (generated from the route schemas) to openapi.json,
 * or with --check fails when the committed file differs from what the code generates.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { buildControlPlane } from '../src/api/server.js';
import type { ManagerSettings } from '../src/sandboxes/manager.js';
import type { SandboxRuntime } from '../src/sandboxes/types.js';
import { Store } from '../src/store/store.js';

const FILE = resolve(import.meta.dirname, '../openapi.json');

// Only the routes' schemas are read; nothing here starts a sandbox.
const noRuntime = new Proxy({} as SandboxRuntime, {
  get: () => () => Promise.reject(new Error('not available while generating the OpenAPI document')),
});
const settings = { poolSize: 0, defaultImage: async () => 'unused' } as unknown as ManagerSettings;
const store = Store.open(':memory:');
const cp = await buildControlPlane({
  store,
  runtime: noRuntime,
  settings,
  apiKeys: [],
  logger: pino({ level: 'silent' }),
});
await cp.app.ready();
const doc = `${JSON.stringify(cp.app.swagger(), null, 2)}\n`;
await cp.close();
store.close();

if (process.argv.includes('--check')) {
  const committed = readFileSync(FILE, 'utf8');
  if (committed !== doc) {
    process.stderr.write('openapi.json is out of date: run `npm run openapi` and commit the result.\n');
    process.exit(1);
  }
  process.stdout.write('openapi.json matches the routes.\n');
} else {
  writeFileSync(FILE, doc);
  process.stdout.write(`wrote ${FILE}\n`);
}
