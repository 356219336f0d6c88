#!/usr/bin/env node
// Bundles the in-sandbox runtime server (src/runtime-server/bundle-entry.ts) into its own directory,
// dist/runtime-server-bundle/, which the image builder copies whole into the Berth image layer (/berth/):
//   runtime-server.mjs   the entry, started as /berth/runtime-server.mjs;
//   chunks/*.mjs         code split off the entry: what a sandbox needs only when it is first used (the
//                        Python kernel, the file editor, file transfer, terminals) is loaded by a dynamic
//                        import() then, so it is not parsed and run on every sandbox's cold start, plus the
//                        code those lazy parts share with the entry;
//   externals.json       the manifest described below.
//
// Packages that cannot live inside a bundle stay external; the image builder copies them (and the
// platform package each needs) into /berth/node_modules, reading the list from externals.json:
//   - @lydell/node-pty: a native addon (.node file) loaded at run time;
//   - sh-syntax: reads its main.wasm relative to its own file, which a bundle would move.
//
// Usage: node scripts/bundle-runtime-server.mjs [--outdir DIR] [--quiet]
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { outdir: { type: 'string' }, quiet: { type: 'boolean', default: false } },
});
const outdir = resolve(values.outdir ?? join(root, 'dist', 'runtime-server-bundle'));
const entry = join(root, 'src', 'runtime-server', 'bundle-entry.ts');
const outfile = join(outdir, 'runtime-server.mjs');

/** Loaded from /berth/node_modules at run time instead of being bundled (see the header). */
export const EXTERNAL_PACKAGES = ['@lydell/node-pty', 'sh-syntax'];

/**
 * Modules Fastify requires only for features the runtime server does not use, left out of the bundle so
 * that no sandbox parses them at start-up (some 300 KiB): the schema compilers, Ajv and
 * fast-json-stringify, which the server replaces with its own that never load them (noSchemas in
 * src/runtime-server/http.ts), and light-my-request, which only app.inject() loads. Each is replaced
 * by a module that throws, naming itself, should anything ever require it.
 */
const LEFT_OUT = ['@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'light-my-request'];
const leaveOut = {
  name: 'leave-out',
  setup(b) {
    const filter = new RegExp(`^(${LEFT_OUT.map((n) => n.replace(/[/.]/g, '\\$&')).join('|')})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'left-out' }));
    b.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is left out of the runtime server bundle (scripts/bundle-runtime-server.mjs)`)});`,
      loader: 'js',
    }));
  },
};

// CommonJS dependencies call require(), __filename and __dirname, which an ES module lacks. The banner
// starts every output file, chunks included; each is a module of its own, so the names do not clash.
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
// Chunk names change with their content, and the image builder copies every file of the directory:
// chunks of an earlier build must not linger.
await rm(join(outdir, 'chunks'), { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
let result;
try {
  result = await build({
    entryPoints: { 'runtime-server': entry },
    outdir,
    outExtension: { '.js': '.mjs' },
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    splitting: true,
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
    plugins: [leaveOut],
    logLevel: 'warning',
  });
} catch {
  // esbuild has already printed the errors with file and line.
  console.error('bundle-runtime-server: bundling failed');
  process.exit(1);
}
// `import { z } from 'zod'` keeps all of zod, its 60-odd locales included (some 350 KiB, parsed on every
// cold start); `import * as z from 'zod'` lets esbuild keep only what is used. Catch a slip back.
const zodLocales = Object.values(result.metafile.outputs)
  .flatMap((o) => Object.keys(o.inputs))
  .filter((f) => /node_modules\/zod\/.*\/locales\//.test(f) && !f.endsWith('/en.js'));
if (zodLocales.length > 0) {
  console.error(
    `bundle-runtime-server: the bundle holds zod's locales (${zodLocales.length} files): import zod as \`import * as z from 'zod'\`, not \`import { z } from 'zod'\``,
  );
  process.exit(1);
}
await writeFile(
  join(outdir, 'externals.json'),
  `${JSON.stringify({ packages: EXTERNAL_PACKAGES }, null, 2)}\n`,
);

if (!values.quiet) {
  const { size } = await stat(outfile);
  const outputs = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.mjs'));
  const total = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
  const inputs = Object.keys(result.metafile.inputs).length;
  const ms = Math.round(performance.now() - started);
  console.log(
    `bundle-runtime-server: ${relative(process.cwd(), outfile)} ${(size / 1024).toFixed(0)} KiB ` +
      `(+ ${outputs.length - 1} chunks, ${(total / 1024).toFixed(0)} KiB in all) from ${inputs} files in ${ms} ms`,
  );
}
