/**
 * Starts the whole control plane from configuration: Docker engine, store, port allocator, runtime,
 * image, HTTP server; then reconciles with the engine, fills the warm pool and runs the reaper.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ControlPlaneConfig } from '../config/control-plane.js';
import { loadDockerConfig } from '../config/docker.js';
import { connectEngine } from '../docker/engine.js';
import { buildRuntimeImage } from '../docker/image-builder.js';
import { DockerSandboxRuntime } from '../sandboxes/docker-runtime.js';
import { PortAllocator } from '../sandboxes/ports.js';
import { Store } from '../store/store.js';
import { buildControlPlane, type ControlPlane, defaultLogger, managerSettings } from './server.js';

export interface StartOptions {
  config: ControlPlaneConfig;
  /** Built web UI to serve at /. */
  webDir?: string;
  /** Progress lines for the CLI (image builds, pool fill). */
  onProgress?: (message: string) => void;
  /** Environment of this process, for the Docker settings (DOCKER_HOST, cache dir). */
  env?: NodeJS.ProcessEnv;
}

export interface RunningControlPlane extends ControlPlane {
  url: string;
  port: number;
  logger: Logger;
}

export async function startControlPlane(options: StartOptions): Promise<RunningControlPlane> {
  const { config } = options;
  const progress = options.onProgress ?? (() => undefined);
  const logger = defaultLogger(config.log_level);
  const docker = loadDockerConfig(options.env);
  const engine = connectEngine({ dockerHost: docker.dockerHost });
  await engine.ping();

  let image: Promise<string> | undefined;
  const defaultImage = () => {
    image ??= (async () => {
      if (config.sandbox.runtime_container_image) return config.sandbox.runtime_container_image;
      progress(`preparing the runtime image on ${config.sandbox.base_container_image}`);
      const built = await buildRuntimeImage({
        engine,
        cacheDir: docker.cacheDir,
        base: config.sandbox.base_container_image,
        onProgress: (e) => {
          if ('message' in e && typeof e.message === 'string') progress(e.message);
        },
      });
      progress(
        `runtime image ${built.tag}${built.cached ? ' (cached)' : ` built in ${Math.round(built.durationMs)} ms`}`,
      );
      return built.tag;
    })();
    image.catch(() => {
      image = undefined;
    });
    return image;
  };

  const store = Store.open(join(config.data_dir, 'berth.db'));
  const ports = new PortAllocator({
    lockDir: join(config.data_dir, 'ports'),
    bindHost: config.sandbox.runtime_binding_address,
  });
  const self = config.control_plane_container;
  const runtime = new DockerSandboxRuntime({
    engine,
    ports,
    logger,
    owner: instanceOwner(config.data_dir),
    reach: self ? { kind: 'link', selfContainer: self } : { kind: 'host-ports' },
  });
  const cp = await buildControlPlane({
    store,
    runtime,
    settings: managerSettings(config, defaultImage),
    apiKeys: config.api_keys,
    logger,
    webDir: options.webDir,
    engineHealthy: () => engine.ping().then(() => true),
  });

  await defaultImage();
  await cp.manager.reconcile();
  await cp.manager.reap().catch((err) => logger.warn({ err }, 'first reap failed'));
  await cp.app.listen({ host: config.host, port: config.port });
  const address = cp.app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;

  const reaper = setInterval(() => {
    cp.manager.reap().catch((err) => logger.warn({ err }, 'reap failed'));
    cp.manager.refill().catch((err) => logger.warn({ err }, 'pool refill failed'));
  }, config.sandbox.reaper_interval_seconds * 1000);
  reaper.unref();
  cp.manager.refill().catch((err) => logger.warn({ err }, 'pool refill failed'));

  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    ...cp,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    logger,
    async close() {
      clearInterval(reaper);
      await cp.close();
      store.close();
    },
  };
}

/**
 * This Berth instance's id, kept in its data directory (made on first use): the owner label on its
 * containers, so reapers of other instances on the same engine leave them alone.
 */
export function instanceOwner(dataDir: string): string {
  const file = join(dataDir, 'instance-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{12}$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = randomBytes(6).toString('hex');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${id}\n`, { mode: 0o600 });
  return id;
}
