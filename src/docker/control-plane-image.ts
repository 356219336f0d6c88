/**
 * The control plane's own image, for running Berth in a container (docs/running-in-a-container.md): a
 * glibc base, the pinned Node (the same cached download the runtime image uses, placed where the runtime
 * image builder inside the container looks for it), the production dependencies as installed in this
 * checkout (native addons included, so the base must match this machine's architecture and have a glibc
 * at least as new as the one they were built against), and the built package: dist/, web/dist/, bin/,
 * image/, package.json. Recipe: image/control-plane.Dockerfile. Like runtime images, the tag is a content
 * hash of the base image ID and every input, so an unchanged build is one image inspect.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DEFAULT_BASE_IMAGE, loadDockerConfig } from '../config/docker.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageProgressListener } from './build-stream.js';
import type { DockerEngine } from './engine.js';
import {
  type ContextEntry,
  inspectBaseImage,
  PACKAGE_ROOT,
  packContext,
  RUNTIME_IMAGE_LABELS,
  TAG_HASH_LENGTH,
} from './image-builder.js';
import { ensureNodeBinary, type NodeArch, type NodeBinary, nodeArchForDocker } from './node-binary.js';

/** Repository name of control plane images; the tag is the content hash. */
export const CONTROL_PLANE_IMAGE_REPO = 'berth-control-plane';
/** Bumped when the way inputs are hashed changes, so old tags are not mistaken for new ones. */
const HASH_SCHEME = 'berth-control-plane-image/1';
/** Where the image keeps its files; the Dockerfile and the entrypoint say the same. */
const RECIPE = 'image/control-plane.Dockerfile';

/** The same berth.* label keys as runtime images. */
export const CONTROL_PLANE_IMAGE_LABELS = RUNTIME_IMAGE_LABELS;

/** Value of the berth.kind label on control plane images (`berth gc` leaves them alone). */
export const CONTROL_PLANE_IMAGE_KIND = 'control-plane-image';

export interface BuildControlPlaneImageOptions {
  engine: DockerEngine;
  /** Base image, present locally (nothing is pulled); glibc, same architecture as this machine. @default berth-base:bookworm */
  base?: string;
  /**
   * Cache of the pinned Node download, shared with the runtime image builder.
   * @default BERTH_CACHE_DIR, else $XDG_CACHE_HOME/berth, else ~/.cache/berth (src/config/docker.ts)
   */
  cacheDir?: string;
  /** Build even when an image with the same content hash exists, without the engine's layer cache. */
  force?: boolean;
  /** The checkout (or installed package) to take dist/, web/dist/, node_modules/ ... from. @default this package */
  root?: string;
  onProgress?: ImageProgressListener;
  signal?: AbortSignal;
  /** For tests: where the pinned Node comes from. */
  ensureNode?: (arch: NodeArch, onProgress?: ImageProgressListener) => Promise<NodeBinary>;
}

export interface ControlPlaneImageBuildResult {
  /** `berth-control-plane:<16 hex>` */
  tag: string;
  /** True when an image with this content hash already existed and nothing was built. */
  cached: boolean;
  durationMs: number;
  imageId: string;
  base: string;
  baseId: string;
}

/** Builds (or finds) the control plane image on `base`. */
export async function buildControlPlaneImage(
  options: BuildControlPlaneImageOptions,
): Promise<ControlPlaneImageBuildResult> {
  const started = performance.now();
  const { engine } = options;
  const progress = options.onProgress;
  const root = options.root ?? PACKAGE_ROOT;
  const base = options.base ?? DEFAULT_BASE_IMAGE;

  const baseInfo = await inspectBaseImage(engine, base);
  const arch = nodeArchForDocker(baseInfo.architecture);
  if (baseInfo.os && baseInfo.os !== 'linux') {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `base image ${base} is for ${baseInfo.os}; Berth needs Linux`,
    );
  }
  if (process.platform !== 'linux' || process.arch !== arch) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `the control plane image takes its native addons (better-sqlite3, node-pty) from this checkout, built for ${process.platform}-${process.arch}; ` +
        `base image ${base} is linux-${arch}: build on a linux-${arch} machine`,
    );
  }
  const cacheDir = options.cacheDir ?? loadDockerConfig().cacheDir;
  const node = await (
    options.ensureNode ??
    ((a: NodeArch, p?: ImageProgressListener) =>
      ensureNodeBinary({ cacheDir, arch: a, ...(p ? { onProgress: p } : {}) }))
  )(arch, progress);

  progress?.({ type: 'phase', message: 'hashing the control plane files' });
  const nodeDir = `node-linux-${arch}-${node.version}`;
  const entries = await collectContext(root, node, nodeDir);
  const contentHash = hashEntries(baseInfo.id, arch, entries);
  const tag = `${CONTROL_PLANE_IMAGE_REPO}:${contentHash.slice(0, TAG_HASH_LENGTH)}`;

  const existing = await engine.images.inspect(tag).catch((err: unknown) => {
    if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) return undefined;
    throw err;
  });
  if (existing && !options.force) {
    progress?.({ type: 'phase', message: `${tag} is up to date` });
    return {
      tag,
      cached: true,
      durationMs: performance.now() - started,
      imageId: existing.id,
      base,
      baseId: baseInfo.id,
    };
  }

  progress?.({ type: 'phase', message: `building ${tag} on ${base} (${entries.length} files)` });
  // Labels go in as one LABEL step after the recipe (the build API's labels cost one step each); they
  // are not hashed, since one of them is the hash.
  const labels = formatLabels({
    [CONTROL_PLANE_IMAGE_LABELS.managed]: 'true',
    [CONTROL_PLANE_IMAGE_LABELS.kind]: CONTROL_PLANE_IMAGE_KIND,
    [CONTROL_PLANE_IMAGE_LABELS.base]: base,
    [CONTROL_PLANE_IMAGE_LABELS.baseId]: baseInfo.id,
    [CONTROL_PLANE_IMAGE_LABELS.contentHash]: contentHash,
    [CONTROL_PLANE_IMAGE_LABELS.nodeVersion]: node.version,
  });
  const context = entries.map((e) =>
    e.name === 'Dockerfile' && Buffer.isBuffer(e.source)
      ? bytesEntry(e.name, Buffer.concat([e.source, Buffer.from(`\nLABEL ${labels}\n`)]), e.mode)
      : e,
  );
  const { id } = await engine.images.build(packContext(context), {
    tag,
    noCache: options.force ?? false,
    buildArgs: { BASE_IMAGE: baseInfo.id, NODE_DIR: nodeDir },
    ...(progress ? { onProgress: progress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (existing && existing.id !== id) {
    // The forced build took the tag; drop the image it replaced unless a container still uses it.
    await engine.images.remove(existing.id).catch(() => false);
  }
  return {
    tag,
    cached: false,
    durationMs: performance.now() - started,
    imageId: id,
    base,
    baseId: baseInfo.id,
  };
}

/** Every file of the build context, in a fixed order, with the digests the tag is made of. */
async function collectContext(root: string, node: NodeBinary, nodeDir: string): Promise<ContextEntry[]> {
  const entries: ContextEntry[] = [];
  entries.push(await fileEntry(`node/${nodeDir}/node`, node.path, 0o755));
  entries.push(bytesEntry(`node/${nodeDir}/tarball.sha256`, Buffer.from(`${node.tarballSha256}\n`), 0o644));

  const dockerfile = await readRequired(join(root, RECIPE), 'the control plane Dockerfile');
  entries.push(bytesEntry('Dockerfile', dockerfile, 0o644));

  for (const pkgDir of await productionPackages(root)) {
    for (const file of await listFiles(
      join(root, pkgDir),
      packageFileFilter(await isNativeSource(join(root, pkgDir))),
    )) {
      entries.push(await fileEntry(`deps/${pkgDir}/${file}`, join(root, pkgDir, file)));
    }
  }

  const required: Array<[string, string]> = [
    ['dist/cli/main.js', 'the compiled CLI (run `npm run build`)'],
    ['dist/runtime-server-bundle/runtime-server.mjs', 'the runtime server bundle (run `npm run build`)'],
    ['web/dist/index.html', 'the built web UI (run `npm run build`)'],
  ];
  for (const [file, what] of required) await readRequired(join(root, file), what);
  entries.push(await fileEntry('app/package.json', join(root, 'package.json')));
  for (const dir of ['bin', 'dist', 'web/dist', 'image']) {
    for (const file of await listFiles(join(root, dir), () => true)) {
      entries.push(await fileEntry(`app/${dir}/${file}`, join(root, dir, file)));
    }
  }
  return entries;
}

interface LockPackage {
  dev?: boolean;
  optional?: boolean;
  link?: boolean;
}

/**
 * Directories (relative to `root`, e.g. `node_modules/fastify`, `node_modules/a/node_modules/b`) of the
 * installed packages a production install has: package-lock.json minus dev-only entries, minus optional
 * ones that are not installed here (other platforms' prebuilt addons).
 */
async function productionPackages(root: string): Promise<string[]> {
  const lockText = await readRequired(join(root, 'package-lock.json'), 'package-lock.json');
  const lock = JSON.parse(lockText.toString('utf8')) as { packages?: Record<string, LockPackage> };
  const dirs: string[] = [];
  for (const [key, pkg] of Object.entries(lock.packages ?? {})) {
    if (!key.startsWith('node_modules/') || pkg.dev || pkg.link) continue;
    const installed = await lstat(join(root, key)).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (installed) dirs.push(key);
    else if (!pkg.optional) {
      throw new BerthError(
        ErrorCode.NOT_FOUND,
        `package ${key} is in package-lock.json but not installed: run npm ci`,
      );
    }
  }
  return dirs.sort();
}

async function isNativeSource(dir: string): Promise<boolean> {
  return lstat(join(dir, 'binding.gyp')).then(
    () => true,
    () => false,
  );
}

/**
 * Which files of an installed package go into the image: not type declarations or source maps, and for
 * addons compiled here only the built `.node` files, not their sources and object files.
 */
function packageFileFilter(native: boolean): (relative: string) => boolean {
  return (relative) => {
    const parts = relative.split('/');
    if (/\.(d\.[cm]?ts|map)$/.test(relative)) return false;
    if (native) {
      if (parts[0] === 'deps' || parts[0] === 'src') return false;
      if (parts[0] === 'build')
        return relative.endsWith('.node') && !parts.includes('obj.target') && !parts.includes('obj');
    }
    return true;
  };
}

/**
 * Regular files under `dir`, relative and with `/` separators, sorted. Symbolic links (node_modules/.bin)
 * and nested node_modules directories are left out.
 */
async function listFiles(dir: string, keep: (relative: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const walk = async (relative: string) => {
    for (const entry of await readdir(join(dir, relative), { withFileTypes: true })) {
      const rel = relative ? posix.join(relative, entry.name) : entry.name;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') await walk(rel);
      } else if (entry.isFile() && keep(rel)) {
        out.push(rel);
      }
    }
  };
  await walk('');
  return out.sort();
}

async function fileEntry(name: string, path: string, mode?: number): Promise<ContextEntry> {
  const st = await lstat(path);
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return {
    name,
    mode: mode ?? (st.mode & 0o111 ? 0o755 : 0o644),
    size: st.size,
    source: { path },
    digest: hash.digest('hex'),
  };
}

function bytesEntry(name: string, bytes: Buffer, mode: number): ContextEntry {
  return {
    name,
    mode,
    size: bytes.length,
    source: bytes,
    digest: createHash('sha256').update(bytes).digest('hex'),
  };
}

/** `"k"="v" ...` for a LABEL line: `\\`, `"` and `$` escaped inside the double quotes. */
function formatLabels(labels: Record<string, string>): string {
  const quote = (v: string) => `"${v.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
  return Object.entries(labels)
    .map(([k, v]) => `${quote(k)}=${quote(v)}`)
    .join(' ');
}

async function readRequired(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new BerthError(ErrorCode.NOT_FOUND, `${what} is missing: ${path}`);
    }
    throw err;
  }
}

/** sha256 over the scheme, base image ID, architecture and every entry's name, mode and content digest. */
function hashEntries(baseId: string, arch: string, entries: readonly ContextEntry[]): string {
  const hash = createHash('sha256');
  hash.update(`${HASH_SCHEME}\0${baseId}\0${arch}\0`);
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    hash.update(`${e.name}\0${e.mode.toString(8)}\0${e.digest}\0`);
  }
  return hash.digest('hex');
}
