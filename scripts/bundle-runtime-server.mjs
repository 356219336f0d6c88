#!/usr/bin/env node
// Bundles the in-sandbox runtime server (src/runtime-server/bundle-entry.ts) into one ESM file,
// dist/runtime-server/runtime-server.mjs, for the Berth image layer (/berth/runtime-server.mjs).
//
// Packages that cannot live inside a bundle stay external; the image builder copies them (and the
// platform package each needs) into /berth/node_modules, reading the list from
// dist/runtime-server/externals.json, which this script writes next to the bundle:
//   - @lydell/node-pty: a native addon (.node file) loaded at run time;
//   - sh-syntax: reads its main.wasm relative to its own file, which a bundle would move.
//
// Usage: node scripts/bundle-runtime-server.mjs [--outdir DIR] [--quiet]
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { outdir: { type: 'string' }, quiet: { type: 'boolean', default: false } },
});
const outdir = resolve(values.outdir ?? join(root, 'dist', 'runtime-server'));
const entry = join(root, 'src', 'runtime-server', 'bundle-entry.ts');
const outfile = join(outdir, 'runtime-server.mjs');

/** Loaded from /berth/node_modules at run time instead of being bundled (see the header). */
export const EXTERNAL_PACKAGES = ['@lydell/node-pty', 'sh-syntax'];

// CommonJS dependencies call require(), __filename and __dirname, which an ES module lacks.
const banner = [
  "import { createRequire as __berthCreateRequire } from 'node:module';",
  "import { fileURLToPath as __berthFileURLToPath } from 'node:url';",
  "import { dirname as __berthDirname } from 'node:path';",
  'const require = __berthCreateRequire(import.meta.url);',
  'const __filename = __berthFileURLToPath(import.meta.url);',
  'const __dirname = __berthDirname(__filename);',
].join('\n');

// Every external must resolve from this checkout, or the image would get a bundle it cannot run.
const requireFromRoot = createRequire(join(root, 'package.json'));
for (const name of EXTERNAL_PACKAGES) {
  try {
    requireFromRoot.resolve(`${name}/package.json`);
  } catch {
    console.error(`bundle-runtime-server: external package ${name} is not installed (run npm install)`);
    process.exit(1);
  }
}

const started = performance.now();
await mkdir(outdir, { recursive: true });
let result;
try {
  result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL_PACKAGES,
    banner: { js: banner },
    legalComments: 'eof',
    // Smaller source parses and compiles faster: this is on every sandbox's cold start.
    minify: true,
    keepNames: true,
    metafile: true,
    logLevel: 'warning',
  });
} catch {
  // esbuild has already printed the errors with file and line.
  console.error('bundle-runtime-server: bundling failed');
  process.exit(1);
}
await writeFile(
  join(outdir, 'externals.json'),
  `${JSON.stringify({ packages: EXTERNAL_PACKAGES }, null, 2)}\n`,
);

if (!values.quiet) {
  const { size } = await stat(outfile);
  const inputs = Object.keys(result.metafile.inputs).length;
  const ms = Math.round(performance.now() - started);
  console.log(
    `bundle-runtime-server: ${relative(process.cwd(), outfile)} ${(size / 1024).toFixed(0)} KiB from ${inputs} files in ${ms} ms`,
  );
}
