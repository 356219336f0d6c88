/**
 * packages/sdk/package.json is written by hand beside the root's: its version and its dependencies'
 * ranges must be the root's, or the SDK would be tested with one zod and shipped with another.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (p: string) => JSON.parse(readFileSync(join(ROOT, p), 'utf8'));

it("@berth/sdk has the root's version and dependency ranges, and nothing else to install", () => {
  const root = read('package.json');
  const sdk = read('packages/sdk/package.json');
  expect(sdk.version).toBe(root.version);
  expect(sdk.engines).toEqual(root.engines);
  expect(Object.keys(sdk.dependencies).sort()).toEqual(['ws', 'zod']);
  for (const [name, range] of Object.entries(sdk.dependencies)) expect(range).toBe(root.dependencies[name]);
});
