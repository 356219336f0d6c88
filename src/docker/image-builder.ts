/**
 * Runtime images: any glibc base image plus one Berth layer (pinned Node, the bundled runtime server, the
 * packages it loads at run time, and the entrypoint that makes the sandbox user). The tag is a content
 * hash of the base image ID and every layer input, so an unchanged build is answered by one image
 * inspect, and a changed input can never be served a stale image.
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BASE_IMAGE } from '../config/docker.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageProgressListener } from './build-stream.js';
import type { DockerEngine } from './engine.js';
import {
  buildImage,
  bytesEntry,
  type ContextEntry,
  dockerfileQuote,
  EXECUTABLE_MODE,
  FILE_MODE,
  fileEntry,
  IMAGE_LABELS,
  inspectBaseImage,
  listFiles,
  readRequired,
  TYPES_AND_SOURCE_MAPS,
} from './image-build.js';
import type { ImageDetails } from './images.js';
import { ensureNodeBinary, type NodeArch, type NodeBinary } from './node-binary.js';

/** Repository name of runtime images; the tag is the content hash. */
export const RUNTIME_IMAGE_REPO = 'berth-runtime';

/** Used when the base image sets no PATH: the engine's own default. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const BERTH_BIN = '/berth/bin';
/** What scripts/bundle-runtime-server.mjs writes next to the bundle: the packages it left external. */
const BUNDLE_MANIFEST = 'externals.json';

/** berth.kind of images `berth image build` makes: they carry the runtime server and its entrypoint. */
export const RUNTIME_IMAGE_KIND = 'runtime-image';

/** The berth.* label keys (image-build.ts), under the name the sandbox and gc code know them by. */
export const RUNTIME_IMAGE_LABELS = IMAGE_LABELS;

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

export class RuntimeImageBuilder {
  private readonly paths: RuntimeImagePaths;

  constructor(private readonly deps: RuntimeImageBuilderDeps) {
    this.paths = { ...defaultRuntimeImagePaths(), ...deps.paths };
  }

  async build(options: BuildRuntimeImageOptions = {}): Promise<RuntimeImageBuildResult> {
    const started = performance.now();
    const progress = options.onProgress;
    const base = options.base ?? this.deps.defaultBase ?? DEFAULT_BASE_IMAGE;

    const { info: baseInfo, arch } = await inspectBaseImage(this.deps.engine.images, base);
    const node = await (this.deps.ensureNode ?? ((a, p) => this.ensureNode(a, p)))(arch, progress);
    const entries = await this.collectContext(node, arch);
    const dockerfile = await this.renderDockerfile(baseInfo, options.extraDeps);
    const built = await buildImage(
      this.deps.engine.images,
      {
        repo: RUNTIME_IMAGE_REPO,
        kind: RUNTIME_IMAGE_KIND,
        base,
        baseId: baseInfo.id,
        arch,
        dockerfile: Buffer.from(dockerfile),
        entries,
        labels: { [RUNTIME_IMAGE_LABELS.nodeVersion]: node.version },
        beforeBuild: async () => {
          progress?.({ type: 'phase', message: `checking that ${base} is a glibc-based image` });
          await this.checkBaseFilesystem(base, arch);
        },
      },
      options,
    );
    return { ...built, durationMs: performance.now() - started, base, baseId: baseInfo.id };
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
    const template = await readRequired(
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
    const entries: ContextEntry[] = [
      // The binary is fully determined by its integrity-checked registry tarball: no need to hash 100 MB.
      await fileEntry('berth/bin/node', node.path, {
        mode: EXECUTABLE_MODE,
        digest: `node-tarball:${node.tarballSha256}`,
      }),
      bytesEntry(
        'berth/entrypoint.sh',
        await readRequired(join(imageDir, 'entrypoint.sh'), 'the entrypoint'),
        EXECUTABLE_MODE,
      ),
      bytesEntry(
        'berth/drop-privileges.mjs',
        await readRequired(join(imageDir, 'drop-privileges.mjs'), 'the privilege-dropping launcher'),
      ),
    ];
    // The whole bundle (the entry and the chunks it imports) as berth/bundle/, which the Dockerfile
    // copies into /berth/ as one; the manifest is read here, not copied.
    await readRequired(
      join(bundleDir, 'runtime-server.mjs'),
      'the runtime server bundle (run `npm run build`)',
    );
    for (const file of await listFiles(bundleDir, (f) => f !== BUNDLE_MANIFEST)) {
      entries.push(await fileEntry(`berth/bundle/${file}`, join(bundleDir, file), { mode: FILE_MODE }));
    }
    const manifest = JSON.parse(
      (
        await readRequired(join(bundleDir, BUNDLE_MANIFEST), 'the bundle manifest (run `npm run build`)')
      ).toString(),
    ) as { packages?: string[] };
    for (const dir of this.externalPackageDirs(manifest.packages ?? [], arch)) {
      for (const file of await listFiles(dir.path, (f) => !TYPES_AND_SOURCE_MAPS.test(f))) {
        entries.push(await fileEntry(`berth/node_modules/${dir.name}/${file}`, join(dir.path, file)));
      }
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
