/**
 * The one build path of Berth's own images (runtime images, image-builder.ts; the control plane image,
 * control-plane-image.ts): a build context of files, a tag that is a content hash of the base image ID
 * and every input, the berth.* labels, the cache check that makes an unchanged build one image inspect,
 * the build, and dropping the image a forced rebuild took the tag from. Each image kind brings only its
 * inputs: the Dockerfile, the files, the repository name and its extra labels.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { DEFAULT_BASE_IMAGE } from '../config/docker.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageProgressListener } from './build-stream.js';
import type { ImageClient, ImageDetails } from './images.js';
import { type NodeArch, nodeArchForDocker } from './node-binary.js';

/** Hex digits of the sha256 kept in the tag: 64 bits, no collisions among one user's images. */
export const TAG_HASH_LENGTH = 16;
/**
 * Bumped when the way inputs are hashed changes, so old tags are not mistaken for new ones. The scheme
 * string is `<repo>-image/<version>` (`berth-runtime-image/1`), so each image kind hashes apart.
 */
export const HASH_SCHEME_VERSION = 1;

/** The berth.* label keys every image Berth builds carries. */
export const IMAGE_LABELS = {
  managed: 'berth.managed',
  kind: 'berth.kind',
  base: 'berth.base',
  baseId: 'berth.base.id',
  contentHash: 'berth.content-hash',
  nodeVersion: 'berth.node.version',
} as const;

/** Context files are readable by all; executables (the mode has any x bit) by all too. */
export const FILE_MODE = 0o644;
export const EXECUTABLE_MODE = 0o755;
const DIRECTORY_MODE = 0o755;
/** Fixed mtime in the tar, so the context of the same inputs is the same bytes. */
const EPOCH = new Date(0);
/**
 * The line of a Dockerfile the labels replace. A Dockerfile without it gets them appended as its last
 * step. Either way they are filled in after hashing, since one of them is the hash.
 */
const LABELS_PLACEHOLDER = /^LABEL \{\{LABELS\}\}$/m;
/** Type declarations and source maps: in installed packages, never loaded at run time. */
export const TYPES_AND_SOURCE_MAPS = /\.(d\.[cm]?ts|map)$/;

/** One file of the build context. `source` is either the bytes or a file streamed at pack time. */
export interface ContextEntry {
  name: string;
  mode: number;
  size: number;
  source: Buffer | { path: string };
  /** What identifies the content in the tag hash: sha256 of the bytes, or of the file's origin. */
  digest: string;
}

/** A context file held in memory. */
export function bytesEntry(name: string, bytes: Buffer, mode = FILE_MODE): ContextEntry {
  return { name, mode, size: bytes.length, source: bytes, digest: sha256(bytes) };
}

/**
 * A context file streamed from disk when the context is packed. Its digest is the sha256 of its content
 * (read once here) unless `digest` is given; its mode is `mode`, else 0755 or 0644 by its x bits.
 */
export async function fileEntry(
  name: string,
  path: string,
  options: { mode?: number; digest?: string } = {},
): Promise<ContextEntry> {
  // stat, not lstat: the size must be that of what is streamed, a link's target.
  const st = await stat(path);
  let digest = options.digest;
  if (digest === undefined) {
    const hash = createHash('sha256');
    await pipeline(createReadStream(path), hash);
    digest = hash.digest('hex');
  }
  return {
    name,
    mode: options.mode ?? (st.mode & 0o111 ? EXECUTABLE_MODE : FILE_MODE),
    size: st.size,
    source: { path },
    digest,
  };
}

/**
 * Regular files under `dir` that `keep` accepts, relative and with `/` separators, sorted. Symbolic links
 * (node_modules/.bin) and nested node_modules directories are left out.
 */
export async function listFiles(dir: string, keep: (relative: string) => boolean): Promise<string[]> {
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

/** A file an image needs; a missing one is NOT_FOUND naming `what` (and what to run to make it). */
export async function readRequired(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new BerthError(ErrorCode.NOT_FOUND, `${what} is missing: ${path}`);
    }
    throw err;
  }
}

/**
 * sha256 over the scheme (`<repo>-image/<version>`), the base image ID, the architecture and every
 * entry's name, mode and content digest. Entries are hashed in name order, so the order they were
 * collected in does not matter.
 */
export function contentHash(
  repo: string,
  baseId: string,
  arch: string,
  entries: readonly ContextEntry[],
): string {
  const hash = createHash('sha256');
  hash.update(`${repo}-image/${HASH_SCHEME_VERSION}\0${baseId}\0${arch}\0`);
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    hash.update(`${e.name}\0${e.mode.toString(8)}\0${e.digest}\0`);
  }
  return hash.digest('hex');
}

/** The build context as a tar stream; big files are streamed from disk, not held in memory. */
export function packContext(entries: readonly ContextEntry[]): Readable {
  const p = pack();
  const dirs = new Set<string>();
  (async () => {
    for (const e of entries) {
      // Explicit directory entries so COPY creates them with a sane mode.
      const parts = e.name.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        p.entry({ name: `${dir}/`, type: 'directory', mode: DIRECTORY_MODE, mtime: EPOCH });
      }
      if (Buffer.isBuffer(e.source)) {
        p.entry({ name: e.name, mode: e.mode, mtime: EPOCH }, e.source);
      } else {
        const path = e.source.path;
        await new Promise<void>((resolveEntry, reject) => {
          const sink = p.entry({ name: e.name, mode: e.mode, size: e.size, mtime: EPOCH }, (err) =>
            err ? reject(err) : resolveEntry(),
          );
          // Destroying the pack passes the error to this entry too; unheard, it would end the process.
          sink.on('error', reject);
          const src = createReadStream(path);
          src.on('error', reject);
          src.pipe(sink);
        });
      }
    }
    p.finalize();
  })().catch((err: unknown) => p.destroy(err as Error));
  return p as unknown as Readable;
}

/** A value for a Dockerfile ENV or LABEL, inside double quotes: `\`, `"` and `$` escaped. */
export function dockerfileQuote(value: string): string {
  return value.replace(/[\\"$]/g, (c) => `\\${c}`);
}

/** `"k"="v" ...`, the arguments of one LABEL instruction. */
export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `"${dockerfileQuote(k)}"="${dockerfileQuote(v)}"`)
    .join(' ');
}

/**
 * The Dockerfile with its labels: in place of `LABEL {{LABELS}}`, else as a last step. One LABEL step,
 * since the build API's labels cost one step each.
 */
export function withLabels(dockerfile: Buffer, labels: Record<string, string>): Buffer {
  const text = dockerfile.toString('utf8');
  const instruction = `LABEL ${formatLabels(labels)}`;
  if (LABELS_PLACEHOLDER.test(text)) return Buffer.from(text.replace(LABELS_PLACEHOLDER, () => instruction));
  return Buffer.concat([dockerfile, Buffer.from(`\n${instruction}\n`)]);
}

/** The base image's details and the Node architecture for it; Linux only, never pulled. */
export async function inspectBaseImage(
  images: ImageClient,
  base: string,
): Promise<{ info: ImageDetails; arch: NodeArch }> {
  let info: ImageDetails;
  try {
    info = await images.inspect(base);
  } catch (err) {
    if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) {
      const hint =
        base === DEFAULT_BASE_IMAGE
          ? 'create it with `berth image bootstrap`'
          : 'pull, load or build it first';
      throw new BerthError(
        ErrorCode.NOT_FOUND,
        `base image ${base} not found locally; Berth never pulls images: ${hint}`,
        { image: base },
      );
    }
    throw err;
  }
  if (info.os && info.os !== 'linux') {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `base image ${base} is for ${info.os}; Berth needs Linux`,
    );
  }
  return { info, arch: nodeArchForDocker(info.architecture) };
}

/** What one image kind builds: its inputs; the rest is this module's. */
export interface ImageBuildSpec {
  /** Repository name; the tag is the content hash. Also names the hash scheme. */
  repo: string;
  /** Value of the berth.kind label. */
  kind: string;
  /** The base as the user named it, and its image ID (which is what is hashed). */
  base: string;
  baseId: string;
  arch: NodeArch;
  /** Hashed as it is; the labels are put in afterwards (`LABEL {{LABELS}}`, else appended). */
  dockerfile: Buffer;
  /** Every other file of the context. */
  entries: readonly ContextEntry[];
  /** Labels besides managed, kind, base, base.id and content-hash. */
  labels?: Record<string, string>;
  buildArgs?: Record<string, string>;
  /** Checks worth making only when something is built (they cost more than the cache check). */
  beforeBuild?: () => Promise<void>;
}

export interface ImageBuildOptions {
  /** Build even when an image with the same content hash exists, without the engine's layer cache. */
  force?: boolean;
  onProgress?: ImageProgressListener;
  signal?: AbortSignal;
}

export interface ImageBuildResult {
  /** `<repo>:<16 hex>` */
  tag: string;
  /** True when an image with this content hash already existed and nothing was built. */
  cached: boolean;
  imageId: string;
}

/**
 * The image for `spec`: the one already tagged with its content hash (unless `force`), else a fresh
 * build. A forced build that gives the tag to a new image drops the old one, unless a container still
 * uses it (the engine refuses to remove an image in use; that refusal is fine).
 */
export async function buildImage(
  images: ImageClient,
  spec: ImageBuildSpec,
  options: ImageBuildOptions = {},
): Promise<ImageBuildResult> {
  const progress = options.onProgress;
  const dockerfile = bytesEntry('Dockerfile', spec.dockerfile);
  const hash = contentHash(spec.repo, spec.baseId, spec.arch, [dockerfile, ...spec.entries]);
  const tag = `${spec.repo}:${hash.slice(0, TAG_HASH_LENGTH)}`;

  const existing = await images.inspect(tag).catch((err: unknown) => {
    if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) return undefined;
    throw err;
  });
  if (existing && !options.force) {
    progress?.({ type: 'phase', message: `${tag} is up to date` });
    return { tag, cached: true, imageId: existing.id };
  }

  await spec.beforeBuild?.();
  progress?.({
    type: 'phase',
    message: `building ${tag} on ${spec.base} (${spec.entries.length + 1} files)`,
  });
  const labelled = withLabels(spec.dockerfile, {
    [IMAGE_LABELS.managed]: 'true',
    [IMAGE_LABELS.kind]: spec.kind,
    [IMAGE_LABELS.base]: spec.base,
    [IMAGE_LABELS.baseId]: spec.baseId,
    [IMAGE_LABELS.contentHash]: hash,
    ...spec.labels,
  });
  const { id } = await images.build(packContext([bytesEntry('Dockerfile', labelled), ...spec.entries]), {
    tag,
    noCache: options.force ?? false,
    ...(spec.buildArgs ? { buildArgs: spec.buildArgs } : {}),
    ...(progress ? { onProgress: progress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (existing && existing.id !== id) await images.remove(existing.id).catch(() => false);
  return { tag, cached: false, imageId: id };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
