/**
 * Runtime images: any glibc base image plus one Berth layer (pinned Node, the bundled runtime server, the
 * packages it loads at run time, and the entrypoint that makes the sandbox user). The tag is a content
 * hash of the base image ID and every layer input, so an unchanged build is answered by one image
 * inspect, and a changed input can never be served a stale image.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pack } from 'tar-stream';
import { DEFAULT_BASE_IMAGE } from '../config/docker.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageProgressListener } from './build-stream.js';
import type { DockerEngine } from './engine.js';
import type { ImageDetails } from './images.js';
import { ensureNodeBinary, type NodeArch, type NodeBinary, nodeArchForDocker } from './node-binary.js';

/** Repository name of runtime images; the tag is the content hash. */
export const RUNTIME_IMAGE_REPO = 'berth-runtime';
/** Hex digits of the sha256 kept in the tag: 64 bits, no collisions among one user's images. */
export const TAG_HASH_LENGTH = 16;
/** Bumped when the way inputs are hashed changes, so old tags are not mistaken for new ones. */
const HASH_SCHEME = 'berth-runtime-image/1';

/** Used when the base image sets no PATH: the engine's own default. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const BERTH_BIN = '/berth/bin';

/** berth.kind of images `berth image build` makes: they carry the runtime server and its entrypoint. */
export const RUNTIME_IMAGE_KIND = 'runtime-image';

export const RUNTIME_IMAGE_LABELS = {
  managed: 'berth.managed',
  kind: 'berth.kind',
  base: 'berth.base',
  baseId: 'berth.base.id',
  contentHash: 'berth.content-hash',
  nodeVersion: 'berth.node.version',
} as const;

export interface BuildRuntimeImageOptions {
  /** Base image, present locally (nothing is pulled). @default SANDBOX_BASE_CONTAINER_IMAGE, else berth-base:bookworm */
  base?: string;
  /** Build even when an image with the same content hash exists, without the engine's layer cache. */
  force?: boolean;
  /** A shell snippet run as root on the base before the Berth files are added (`--extra-deps`). */
  extraDeps?: string;
  onProgress?: ImageProgressListener;
  signal?: AbortSignal;
}

export interface RuntimeImageBuildResult {
  /** `berth-runtime:<16 hex>` */
  tag: string;
  /** True when an image with this content hash already existed and nothing was built. */
  cached: boolean;
  durationMs: number;
  imageId: string;
  base: string;
  baseId: string;
}

/** Where the layer's inputs live; defaults are this checkout (or installed package). */
export interface RuntimeImagePaths {
  /** Holds Dockerfile.berth.tmpl, entrypoint.sh and drop-privileges.mjs. */
  imageDir: string;
  /**
   * The runtime server bundle as scripts/bundle-runtime-server.mjs writes it: runtime-server.mjs, the
   * chunks it loads (chunks/), and externals.json. Every file but externals.json goes into /berth/.
   */
  bundleDir: string;
  /** A package.json whose node_modules hold the bundle's external packages. */
  packageJson: string;
}

export interface RuntimeImageBuilderDeps {
  engine: DockerEngine;
  /** Cache for the pinned Node download (src/config/docker.ts: ~/.cache/berth). */
  cacheDir: string;
  defaultBase?: string;
  paths?: Partial<RuntimeImagePaths>;
  /** For tests: where the pinned Node comes from. */
  ensureNode?: (arch: NodeArch, onProgress?: ImageProgressListener) => Promise<NodeBinary>;
}

/** The repository root: two levels above both src/docker/*.ts and dist/docker/*.js. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function defaultRuntimeImagePaths(root = PACKAGE_ROOT): RuntimeImagePaths {
  return {
    imageDir: join(root, 'image'),
    bundleDir: join(root, 'dist', 'runtime-server-bundle'),
    packageJson: join(root, 'package.json'),
  };
}

/** One file of the build context. `source` is either the bytes or a file streamed at pack time. */
export interface ContextEntry {
  name: string;
  mode: number;
  size: number;
  source: Buffer | { path: string };
  /** What identifies the content in the tag hash: sha256 of the bytes, or of the file's origin. */
  digest: string;
}

export class RuntimeImageBuilder {
  private readonly paths: RuntimeImagePaths;

  constructor(private readonly deps: RuntimeImageBuilderDeps) {
    this.paths = { ...defaultRuntimeImagePaths(), ...deps.paths };
  }

  async build(options: BuildRuntimeImageOptions = {}): Promise<RuntimeImageBuildResult> {
    const started = performance.now();
    const { images } = this.deps.engine;
    const progress = options.onProgress;
    const base = options.base ?? this.deps.defaultBase ?? DEFAULT_BASE_IMAGE;

    const baseInfo = await inspectBaseImage(this.deps.engine, base);
    if (baseInfo.os && baseInfo.os !== 'linux') {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `base image ${base} is for ${baseInfo.os}; Berth needs Linux`,
      );
    }
    const arch = nodeArchForDocker(baseInfo.architecture);
    const node = await (this.deps.ensureNode ?? ((a, p) => this.ensureNode(a, p)))(arch, progress);

    const entries = await this.collectContext(node, arch);
    const dockerfile = await this.renderDockerfile(baseInfo, options.extraDeps);
    const contentHash = hashInputs(baseInfo.id, arch, [
      bufferEntry('Dockerfile', 0o644, Buffer.from(dockerfile)),
      ...entries,
    ]);
    const tag = `${RUNTIME_IMAGE_REPO}:${contentHash.slice(0, TAG_HASH_LENGTH)}`;

    const existing = await images.inspect(tag).catch((err: unknown) => {
      if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) return undefined;
      throw err;
    });
    if (!options.force) {
      if (existing) {
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
    }

    progress?.({ type: 'phase', message: `checking that ${base} is a glibc-based image` });
    await this.checkBaseFilesystem(base, arch);
    progress?.({ type: 'phase', message: `building ${tag} on ${base}` });
    // Labels go into the Dockerfile as one LABEL step (the build API's labels cost one step each).
    const labels = formatLabels({
      [RUNTIME_IMAGE_LABELS.managed]: 'true',
      [RUNTIME_IMAGE_LABELS.kind]: RUNTIME_IMAGE_KIND,
      [RUNTIME_IMAGE_LABELS.base]: base,
      [RUNTIME_IMAGE_LABELS.baseId]: baseInfo.id,
      [RUNTIME_IMAGE_LABELS.contentHash]: contentHash,
      [RUNTIME_IMAGE_LABELS.nodeVersion]: node.version,
    });
    const finalDockerfile = dockerfile.replace(/^LABEL \{\{LABELS\}\}$/m, () => `LABEL ${labels}`);
    const context = [bufferEntry('Dockerfile', 0o644, Buffer.from(finalDockerfile)), ...entries];
    const { id } = await images.build(packContext(context), {
      tag,
      noCache: options.force ?? false,
      ...(progress ? { onProgress: progress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (existing && existing.id !== id) {
      // The forced build took the tag; drop the image it replaced unless a container still uses it.
      await images.remove(existing.id).catch(() => false);
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

  private ensureNode(arch: NodeArch, onProgress?: ImageProgressListener): Promise<NodeBinary> {
    return ensureNodeBinary({ cacheDir: this.deps.cacheDir, arch, ...(onProgress ? { onProgress } : {}) });
  }

  /**
   * Rejects bases the layer cannot run on, by looking at files of a created (never started) container:
   * the dynamic loader the pinned Node needs, a musl loader (Alpine), and /bin/sh for the entrypoint.
   */
  private async checkBaseFilesystem(base: string, arch: NodeArch): Promise<void> {
    const glibcLoader = arch === 'x64' ? '/lib64/ld-linux-x86-64.so.2' : '/lib/ld-linux-aarch64.so.1';
    const muslLoader = arch === 'x64' ? '/lib/ld-musl-x86_64.so.1' : '/lib/ld-musl-aarch64.so.1';
    const found = await this.deps.engine.images.pathsExist(base, [glibcLoader, muslLoader, '/bin/sh']);
    if (!found.get(glibcLoader)) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        found.get(muslLoader)
          ? `musl-based images are not supported: Berth needs glibc (${base} has ${muslLoader}, no ${glibcLoader}); use a Debian, Ubuntu, Fedora or other glibc-based image`
          : `base image ${base} has no glibc dynamic loader (${glibcLoader}): Berth needs a glibc-based Linux image`,
        { image: base },
      );
    }
    if (!found.get('/bin/sh')) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `base image ${base} has no /bin/sh, which the Berth entrypoint needs (distroless images are not supported)`,
        { image: base },
      );
    }
  }

  private async renderDockerfile(baseInfo: ImageDetails, extraDeps: string | undefined): Promise<string> {
    const template = await readInput(
      join(this.paths.imageDir, 'Dockerfile.berth.tmpl'),
      'the Dockerfile template',
    );
    const basePath = baseInfo.env.find((e) => e.startsWith('PATH='))?.slice('PATH='.length) || DEFAULT_PATH;
    const path = basePath.split(':').includes(BERTH_BIN) ? basePath : `${basePath}:${BERTH_BIN}`;
    const values: Record<string, string> = {
      BASE_IMAGE: baseInfo.id,
      // Exec form with a JSON string: a multi-line snippet stays one Dockerfile line, nothing is re-parsed.
      EXTRA_DEPS: extraDeps?.trim() ? `RUN ["/bin/sh", "-c", ${JSON.stringify(extraDeps)}]` : '',
      PATH: dockerfileQuote(path),
    };
    return template
      .toString('utf8')
      .split('\n')
      .map((line) =>
        // LABELS stays as it is: it is filled in after hashing.
        line.startsWith('#')
          ? line
          : line.replace(/\{\{([A-Z_]+)\}\}/g, (m, key: string) => values[key] ?? m),
      )
      .join('\n');
  }

  /** Every file of the layer except the Dockerfile, with the digests the tag is made of. */
  private async collectContext(node: NodeBinary, arch: NodeArch): Promise<ContextEntry[]> {
    const { imageDir, bundleDir } = this.paths;
    const entries: ContextEntry[] = [];
    const nodeStat = await stat(node.path);
    entries.push({
      name: 'berth/bin/node',
      mode: 0o755,
      size: nodeStat.size,
      source: { path: node.path },
      // The binary is fully determined by its integrity-checked registry tarball.
      digest: `node-tarball:${node.tarballSha256}`,
    });
    entries.push(
      bufferEntry(
        'berth/entrypoint.sh',
        0o755,
        await readInput(join(imageDir, 'entrypoint.sh'), 'the entrypoint'),
      ),
      bufferEntry(
        'berth/drop-privileges.mjs',
        0o644,
        await readInput(join(imageDir, 'drop-privileges.mjs'), 'the privilege-dropping launcher'),
      ),
    );
    entries.push(...(await this.bundleEntries()));
    const manifest = JSON.parse(
      (
        await readInput(join(bundleDir, 'externals.json'), 'the bundle manifest (run `npm run build`)')
      ).toString(),
    ) as { packages?: string[] };
    for (const dir of this.externalPackageDirs(manifest.packages ?? [], arch)) {
      for (const file of await listPackageFiles(dir.path)) {
        const bytes = await readFile(join(dir.path, file.relative));
        entries.push(bufferEntry(`berth/node_modules/${dir.name}/${file.relative}`, file.mode, bytes));
      }
    }
    return entries;
  }

  /**
   * The runtime server bundle, every file of it (the entry and the chunks it imports), as berth/bundle/,
   * which the Dockerfile copies into /berth/ as a whole. The manifest is read here, not copied.
   */
  private async bundleEntries(): Promise<ContextEntry[]> {
    const { bundleDir } = this.paths;
    await readInput(join(bundleDir, 'runtime-server.mjs'), 'the runtime server bundle (run `npm run build`)');
    const entries: ContextEntry[] = [];
    for (const file of await listBundleFiles(bundleDir)) {
      if (file === 'externals.json') continue;
      entries.push(bufferEntry(`berth/bundle/${file}`, 0o644, await readFile(join(bundleDir, file))));
    }
    return entries;
  }

  /**
   * The external packages and what they load at run time: their dependencies, and those optional
   * dependencies that are platform packages for linux on `arch` with glibc (node-pty's prebuilt addon).
   */
  private externalPackageDirs(names: string[], arch: NodeArch): { name: string; path: string }[] {
    const require = createRequire(this.paths.packageJson);
    const found = new Map<string, string>();
    const visit = (name: string, from: string, optional: boolean) => {
      if (found.has(name)) return;
      let pkgJsonPath: string;
      try {
        pkgJsonPath = createRequire(from).resolve(`${name}/package.json`);
      } catch {
        if (optional) return;
        throw new BerthError(
          ErrorCode.NOT_FOUND,
          `package ${name}, which the runtime server loads at run time, is not installed (run npm install)`,
        );
      }
      const pkg = require(pkgJsonPath) as PackageJson;
      if (optional && !fitsPlatform(pkg, arch)) return;
      found.set(name, dirname(pkgJsonPath));
      for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, pkgJsonPath, false);
      const platformDeps = Object.keys(pkg.optionalDependencies ?? {});
      for (const dep of platformDeps) visit(dep, pkgJsonPath, true);
      const wantsLinuxBinary = platformDeps.some((d) => d.includes('linux'));
      if (wantsLinuxBinary && !platformDeps.some((d) => found.has(d))) {
        throw new BerthError(
          ErrorCode.NOT_FOUND,
          `${name} needs its prebuilt linux-${arch} package (${platformDeps.filter((d) => d.includes(`linux-${arch}`)).join(', ') || `a linux-${arch} build`}), which is not installed; ` +
            `install it with npm install --no-save --os=linux --cpu=${arch} ${name}`,
        );
      }
    };
    for (const name of names) visit(name, this.paths.packageJson, false);
    return [...found].map(([name, path]) => ({ name, path }));
  }
}

interface PackageJson {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

function fitsPlatform(pkg: PackageJson, arch: NodeArch): boolean {
  const allows = (list: string[] | undefined, value: string) =>
    !list || list.length === 0 || (list.includes(value) && !list.includes(`!${value}`));
  return allows(pkg.os, 'linux') && allows(pkg.cpu, arch) && allows(pkg.libc, 'glibc');
}

/** Files of an installed package, without what is only for compilers and editors. */
async function listPackageFiles(dir: string): Promise<{ relative: string; mode: number }[]> {
  const out: { relative: string; mode: number }[] = [];
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') await walk(full);
      } else if (entry.isFile() && !/\.(d\.[cm]?ts|map)$/.test(entry.name)) {
        const { mode } = await stat(full);
        out.push({
          relative: relative(dir, full).split(sep).join(posix.sep),
          mode: mode & 0o111 ? 0o755 : 0o644,
        });
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
}

/** Every file under the bundle directory, relative and with `/` separators, in a stable order. */
async function listBundleFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile())
      out.push(relative(dir, join(entry.parentPath, entry.name)).split(sep).join(posix.sep));
  }
  return out.sort();
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new BerthError(ErrorCode.NOT_FOUND, `${what} is missing: ${path}`);
    }
    throw err;
  }
}

/** A value for a Dockerfile ENV or LABEL, inside double quotes: `\`, `"` and `$` escaped. */
function dockerfileQuote(value: string): string {
  return value.replace(/[\\"$]/g, (c) => `\\${c}`);
}

function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `"${dockerfileQuote(k)}"="${dockerfileQuote(v)}"`)
    .join(' ');
}

function bufferEntry(name: string, mode: number, bytes: Buffer): ContextEntry {
  return {
    name,
    mode,
    size: bytes.length,
    source: bytes,
    digest: createHash('sha256').update(bytes).digest('hex'),
  };
}

/** sha256 over the base image ID, the architecture and every context entry (name, mode, content digest). */
export function hashInputs(baseId: string, arch: string, entries: readonly ContextEntry[]): string {
  const hash = createHash('sha256');
  hash.update(`${HASH_SCHEME}\0${baseId}\0${arch}\0`);
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    hash.update(`${e.name}\0${e.mode.toString(8)}\0${e.digest}\0`);
  }
  return hash.digest('hex');
}

/** The build context as a tar stream; big files are streamed from disk, not held in memory. */
export function packContext(entries: readonly ContextEntry[]): Readable {
  const p = pack();
  const dirs = new Set<string>();
  const mtime = new Date(0);
  (async () => {
    for (const e of entries) {
      // Explicit directory entries so COPY creates them with a sane mode.
      const parts = e.name.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        p.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime });
      }
      if (Buffer.isBuffer(e.source)) {
        p.entry({ name: e.name, mode: e.mode, mtime }, e.source);
      } else {
        const path = e.source.path;
        await new Promise<void>((resolveEntry, reject) => {
          const sink = p.entry({ name: e.name, mode: e.mode, size: e.size, mtime }, (err) =>
            err ? reject(err) : resolveEntry(),
          );
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

/**
 * Builds (or finds) the runtime image for `options.base`. A convenience over `RuntimeImageBuilder` for
 * callers that already hold an engine and know the cache directory.
 */
export function buildRuntimeImage(
  options: BuildRuntimeImageOptions & { engine: DockerEngine; cacheDir: string },
): Promise<RuntimeImageBuildResult> {
  const { engine, cacheDir, ...buildOptions } = options;
  return new RuntimeImageBuilder({ engine, cacheDir }).build(buildOptions);
}

/** The base image's details; a missing base is NOT_FOUND with what to do (Berth never pulls). */
export async function inspectBaseImage(engine: DockerEngine, base: string): Promise<ImageDetails> {
  try {
    return await engine.images.inspect(base);
  } catch (err) {
    if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) {
      const hint =
        base === DEFAULT_BASE_IMAGE
          ? 'create it with `berth image bootstrap`'
          : 'pull, load or build it first';
      throw new BerthError(
        ErrorCode.NOT_FOUND,
        `base image ${base} not found locally; Berth never pulls images: ${hint}`,
        {
          image: base,
        },
      );
    }
    throw err;
  }
}
