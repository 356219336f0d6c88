#!/usr/bin/env node
// Entry point of the `berth` command: runs the compiled CLI (npm run build makes dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write('berth: dist/ is missing. Run `npm ci && npm run build` in the repository first.\n');
  process.exit(1);
}
await import(entry);
