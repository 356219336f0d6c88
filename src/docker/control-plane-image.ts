/**
 * The control plane's own image, for running Berth in a container (docs/running-in-a-container.md): a
 * glibc base, the pinned Node (the same cached download the runtime image uses, placed where the runtime
 * image builder inside the container looks for it), the production dependencies as installed in this
 * checkout (native addons included, so the base must match this machine's architecture and have a glibc
 * at least as new as the one they were built against), and the built package: dist/, web/dist/, bin/,
 * image/, package.json. Recipe: image/control-plane.Dockerfile. Like runtime images, the tag is a content
 * hash of the base image ID and every input, so an unchanged build is one image inspect.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_BASE_IMAGE, loadDockerConfig } from '../config/docker.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageProgressListener } from './build-stream.js';
import type { DockerEngine } from './engine.js';
import {
  buildImage,
  bytesEntry,
  type ContextEntry,
  EXECUTABLE_MODE,
  fileEntry,
  IMAGE_LABELS,
  inspectBaseImage,
  listFiles,
  readRequired,
  TYPES_AND_SOURCE_MAPS,
} from './image-build.js';
import { PACKAGE_ROOT } from './image-builder.js';
import { ensureNodeBinary, type NodeArch, type NodeBinary } from './node-binary.js';

/** Repository name of control plane images; the tag is the content hash. */
export const CONTROL_PLANE_IMAGE_REPO = 'berth-control-plane';
/** Where the image keeps its files; the Dockerfile and the entrypoint say the same. */
const RECIPE = 'image/control-plane.Dockerfile';

/** The same berth.* label keys as runtime images (image-build.ts). */
export const CONTROL_PLANE_IMAGE_LABELS = IMAGE_LABELS;

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

  const { info: baseInfo, arch } = await inspectBaseImage(engine.images, base);
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
  const built = await buildImage(
    engine.images,
    {
      repo: CONTROL_PLANE_IMAGE_REPO,
      kind: CONTROL_PLANE_IMAGE_KIND,
      base,
      baseId: baseInfo.id,
      arch,
      dockerfile: await readRequired(join(root, RECIPE), 'the control plane Dockerfile'),
      entries: await collectContext(root, node, nodeDir),
      labels: { [CONTROL_PLANE_IMAGE_LABELS.nodeVersion]: node.version },
      buildArgs: { BASE_IMAGE: baseInfo.id, NODE_DIR: nodeDir },
    },
    options,
  );
  return { ...built, durationMs: performance.now() - started, base, baseId: baseInfo.id };
}

/** Every file of the build context but the Dockerfile, with the digests the tag is made of. */
async function collectContext(root: string, node: NodeBinary, nodeDir: string): Promise<ContextEntry[]> {
  const entries: ContextEntry[] = [];
  entries.push(await fileEntry(`node/${nodeDir}/node`, node.path, { mode: EXECUTABLE_MODE }));
  entries.push(bytesEntry(`node/${nodeDir}/tarball.sha256`, Buffer.from(`${node.tarballSha256}\n`)));

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
    if (TYPES_AND_SOURCE_MAPS.test(relative)) return false;
    if (native) {
      if (parts[0] === 'deps' || parts[0] === 'src') return false;
      if (parts[0] === 'build')
        return relative.endsWith('.node') && !parts.includes('obj.target') && !parts.includes('obj');
    }
    return true;
  };
}
