/**
 * The offline base image: Debian bookworm bootstrapped from Debian packages by image/bootstrap-base.sh
 * (mmdebstrap + docker import), for machines that reach no container registry.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DEFAULT_BASE_IMAGE } from '../config/docker.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { ImageProgressListener } from './build-stream.js';
import type { DockerEngine } from './engine.js';
import { PACKAGE_ROOT } from './image-builder.js';

/** Lines of bootstrap output kept to explain a failure. */
const BOOTSTRAP_ERROR_LINES = 30;

export interface BootstrapBaseImageOptions {
  engine: DockerEngine;
  /** @default SANDBOX_BASE_CONTAINER_IMAGE, else berth-base:bookworm */
  tag?: string;
  /** Rebuild even when the image exists. */
  force?: boolean;
  /** An apt sources file to use instead of the host's bookworm entries. */
  sources?: string;
  onProgress?: ImageProgressListener;
  signal?: AbortSignal;
  /**
   * Environment of the script (it runs the docker CLI, which reads DOCKER_HOST).
   * @default this process's environment
   */
  env?: NodeJS.ProcessEnv;
  /** @default image/bootstrap-base.sh of this package */
  script?: string;
}

export interface BootstrapBaseImageResult {
  tag: string;
  imageId: string;
  /** True when the image already existed and nothing was built. */
  cached: boolean;
  durationMs: number;
}

/** Creates the base image unless it exists (or `force`), streaming the bootstrap's progress lines. */
export async function bootstrapBaseImage(
  options: BootstrapBaseImageOptions,
): Promise<BootstrapBaseImageResult> {
  const started = performance.now();
  const tag = options.tag ?? DEFAULT_BASE_IMAGE;
  const { images } = options.engine;
  if (!options.force && (await images.exists(tag))) {
    const { id } = await images.inspect(tag);
    options.onProgress?.({ type: 'phase', message: `${tag} already exists` });
    return { tag, imageId: id, cached: true, durationMs: performance.now() - started };
  }
  const script = options.script ?? join(PACKAGE_ROOT, 'image', 'bootstrap-base.sh');
  const args = [script, '--tag', tag];
  if (options.force) args.push('--force');
  if (options.sources) args.push('--sources', options.sources);
  options.onProgress?.({
    type: 'phase',
    message: `bootstrapping ${tag} from Debian packages (takes a few minutes)`,
  });

  const recent: string[] = [];
  const child = spawn('bash', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env ? { env: options.env } : {}),
    ...(options.signal ? { signal: options.signal, killSignal: 'SIGTERM' as const } : {}),
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  const lines = createInterface({ input: child.stderr });
  lines.on('line', (line) => {
    recent.push(line);
    if (recent.length > BOOTSTRAP_ERROR_LINES) recent.shift();
    options.onProgress?.({ type: 'log', line });
  });
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new BerthError(ErrorCode.UNAVAILABLE, 'bash is needed to run the base image bootstrap'));
      } else if (err.name === 'AbortError') {
        reject(new BerthError(ErrorCode.TIMEOUT, `bootstrap of ${tag} was aborted`));
      } else {
        reject(err);
      }
    });
    child.once('close', resolve);
  });
  if (exitCode !== 0) {
    throw new BerthError(
      ErrorCode.INTERNAL,
      `bootstrap of ${tag} failed (exit ${exitCode}):\n${recent.join('\n')}`,
      { tag, output: recent },
    );
  }
  const imageId = stdout.trim().split('\n').pop() ?? '';
  return {
    tag,
    imageId: imageId.startsWith('sha256:') ? imageId : (await images.inspect(tag)).id,
    cached: false,
    durationMs: performance.now() - started,
  };
}
