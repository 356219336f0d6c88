/**
 * Starts the whole control plane from configuration: Docker engine, store, port allocator, runtime,
 * image, HTTP server; then reconciles with the engine, fills the warm pool and runs the reaper.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type ControlPlaneConfig, isLoopbackHost } from '../config/control-plane.js';
import { loadDockerConfig } from '../config/docker.js';
import { connectEngine } from '../docker/engine.js';
import { IdmappedMounts, idmapDir } from '../docker/idmapped-mounts.js';
import { buildRuntimeImage } from '../docker/image-builder.js';
import { PortAllocator } from '../docker/ports.js';
import { DockerRuntimeImages } from '../docker/runtime-images.js';
import { DockerSandboxRuntime } from '../docker/sandbox-runtime.js';
import type { RetentionPolicy } from '../store/events.js';
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

  const store = Store.open(join(config.data_dir, 'berth.db'), {
    maxEventPayloadBytes: config.events.max_payload_bytes,
  });
  const ports = new PortAllocator({
    lockDir: config.sandbox.port_lock_dir,
    bindHost: config.sandbox.runtime_binding_address,
  });
  const self = config.control_plane_container;
  const workspaceIdmap = await workspaceViews(config, docker.dockerHost, logger);
  const runtime = new DockerSandboxRuntime({
    engine,
    ports,
    logger,
    owner: instanceOwner(config.data_dir),
    reach: self ? { kind: 'link', selfContainer: self } : { kind: 'host-ports' },
    workspaceIdmap,
    diskLimit: config.sandbox.disk_limit,
  });
  const cp = await buildControlPlane({
    store,
    runtime,
    settings: managerSettings(config, defaultImage),
    apiKeys: config.api_keys,
    logger,
    webDir: options.webDir,
    images: new DockerRuntimeImages(engine, docker.cacheDir),
    engineHealthy: () => engine.ping().then(() => true),
  });

  await defaultImage();
  await cp.manager.reconcile();
  cp.manager.followEngine();
  await cp.manager.reap().catch((err) => logger.warn({ err }, 'first reap failed'));
  // Sandboxes never talk to the control plane: connections from their addresses end at once (in
  // container mode they share link networks with it; on the host they may reach it through a bridge
  // gateway when it listens beyond loopback).
  cp.app.server.on('connection', (socket) => {
    if (runtime.isSandboxAddress(socket.remoteAddress)) socket.destroy();
  });
  await cp.app.listen({ host: config.host, port: config.port });
  const address = cp.app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // Listening beyond loopback, the port is also closed to sandbox bridges in the host's firewall.
  if (!isLoopbackHost(config.host)) await runtime.protectHostPort(port);

  const retention = eventRetention(config);
  const prune = () => {
    try {
      const r = store.prune(retention);
      if (r.deleted > 0) logger.info({ ...r }, 'event log retention removed old events');
    } catch (err) {
      logger.warn({ err }, 'event log retention failed');
    }
  };
  // After reconcile, which answered the actions a crash left open.
  prune();
  cp.manager.reaper.start(config.sandbox.reaper_interval_seconds * 1000, () => {
    prune();
    cp.manager.refill().catch((err) => logger.warn({ err }, 'pool refill failed'));
  });
  cp.manager.refill().catch((err) => logger.warn({ err }, 'pool refill failed'));

  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    ...cp,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    logger,
    async close() {
      cp.manager.reaper.stop();
      await cp.close();
      store.close();
    },
  };
}

/** The event log's retention policy from configuration (0: no limit of that kind). */
export function eventRetention(config: ControlPlaneConfig): RetentionPolicy {
  const mib = 1024 * 1024;
  return {
    maxAgeMs: config.events.max_age_days * 24 * 3600 * 1000,
    maxSandboxBytes: config.events.max_sandbox_mb * mib,
    maxTotalBytes: config.events.max_total_mb * mib,
  };
}

/**
 * Idmapped workspace views (sandbox.workspace_idmap), when this process can make them where dockerd
 * sees them: as root, in the host's mount namespace (not in a container), with dockerd on a local
 * socket. Where it cannot, says once what that leaves open.
 */
async function workspaceViews(
  config: ControlPlaneConfig,
  dockerHost: string | undefined,
  logger: Logger,
): Promise<{ mounts: IdmappedMounts; mode: 'auto' | 'require' } | undefined> {
  const mode = config.sandbox.workspace_idmap;
  if (mode === 'off') return undefined;
  const remote = dockerHost !== undefined && !dockerHost.startsWith('unix://');
  const unavailable = config.control_plane_container
    ? "Berth runs in a container, so a mount it makes is not in dockerd's mount namespace"
    : remote
      ? `dockerd is not on a local socket (DOCKER_HOST=${dockerHost})`
      : undefined;
  const mounts = new IdmappedMounts({ dir: idmapDir(config.data_dir), unavailable });
  const why = await mounts.probe();
  if (why !== undefined) {
    logger.warn(
      { reason: why, mode },
      mode === 'require'
        ? 'sandboxes with a workspace will not start: no idmapped workspace view can be made'
        : 'workspaces are mounted without an idmapped view: root in a sandbox (sudo) can create root-owned files in them and chown files to other users (setuid/setgid bits, file capabilities and device nodes stay refused)',
    );
  }
  return { mounts, mode };
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
