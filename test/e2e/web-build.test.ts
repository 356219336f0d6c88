/**
 * The web UI that `berth up` serves is React's production build, and so is the one the browser tests
 * build (into a directory of their own: web/dist belongs to a running Berth). A development build
 * (what Vite makes under vitest's NODE_ENV=test) ships React's dev-only checks and jsxDEV calls.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildWeb, REPO } from './browser.js';

function bundle(dir: string): string {
  const assets = path.join(dir, 'assets');
  return readdirSync(assets)
    .filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(path.join(assets, f), 'utf8'))
    .join('\n');
}

function expectProduction(js: string): void {
  expect(js).toContain('Minified React error');
  expect(js).not.toContain('jsxDEV');
  expect(js).not.toContain('react-stack-bottom-frame');
}

describe('web UI builds', () => {
  it('the build in web/dist (what `berth up` serves, made by npm run build) is a production build', () => {
    expectProduction(bundle(path.join(REPO, 'web/dist')));
  });

  it("the tests' own build is a production build, outside web/dist", { timeout: 120_000 }, () => {
    const dir = buildWeb();
    expect(path.resolve(dir).startsWith(path.join(REPO, 'web/dist'))).toBe(false);
    expectProduction(bundle(dir));
  });

  it('refuses to build into web/dist', () => {
    expect(() => buildWeb(path.join(REPO, 'web/dist'))).toThrow(/own directory/);
  });
});
