/**
 * Sandboxes on the real Docker engine for integration tests: a runtime image (built once per run,
 * cached by content hash), a DockerSandboxRuntime, and a contract-suite target factory.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadControlPlaneConfig } from '../../src/config/control-plane.js';
import { loadDockerConfig } from '../../src/config/docker.js';
import { connectEngine, type DockerodeEngine } from '../../src/docker/engine.js';
import { IdmappedMounts } from '../../src/docker/idmapped-mounts.js';
import { buildRuntimeImage } from '../../src/docker/image-builder.js';
import { PortAllocator } from '../../src/docker/ports.js';
import { DockerSandboxRuntime } from '../../src/docker/sandbox-runtime.js';
import type { SandboxSpec } from '../../src/sandboxes/types.js';
import type { RuntimeTarget, TargetOptions } from '../contract/harness.js';

export const engine: DockerodeEngine = connectEngine({ dockerHost: loadDockerConfig().dockerHost });

export async function engineAvailable(): Promise<string | undefined> {
  try {
    await engine.ping();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

let imagePromise: Promise<string> | undefined;
/** The runtime image on the bootstrapped base (`berth image bootstrap` must have run). */
export function runtimeImage(): Promise<string> {
  imagePromise ??= buildRuntimeImage({ engine, cacheDir: loadDockerConfig().cacheDir }).then((r) => r.tag);
  return imagePromise;
}

/**
 * The host-wide port locks every control plane on this host uses: a test's runtime that locked its ports
 * anywhere else could publish a port a stopped sandbox of another suite holds.
 */
export const portLockDir = loadControlPlaneConfig().sandbox.port_lock_dir;
/** Idmapped workspace views, as a control plane makes them (when this process is root). */
export const workspaceViews = new IdmappedMounts({ dir: mkdtempSync(join(tmpdir(), 'berth-it-idmap-')) });
export const runtime = new DockerSandboxRuntime({
  engine,
  ports: new PortAllocator({ lockDir: portLockDir, bindHost: '127.0.0.1' }),
  logger: pino({ level: 'warn' }),
  // Each test file has its own owner, so one file's reaper never touches another's sandboxes.
  owner: `test-${randomBytes(4).toString('hex')}`,
  reach: { kind: 'host-ports' },
  workspaceIdmap: { mounts: workspaceViews, mode: 'auto' },
});

export function newId(): string {
  return `it${randomBytes(5).toString('hex')}`;
}

export async function specFor(overrides: Partial<SandboxSpec> = {}): Promise<SandboxSpec> {
  return {
    id: newId(),
    image: await runtimeImage(),
    workspaceMountPathInSandbox: '/workspace',
    mounts: [],
    userId: 1000,
    bindingAddress: '127.0.0.1',
    network: { mode: 'isolated' },
    env: {},
    limits: { cpus: 2, memoryMb: 2048, pids: 1024 },
    labels: { 'berth.test': 'integration' },
    startTimeoutMs: 60_000,
    sessionApiKey: randomBytes(16).toString('hex'),
    ...overrides,
  };
}

/** A host directory the sandbox user can write to, for bind mounts. */
export function hostWorkspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-ws-'));
  chmodSync(dir, 0o777);
  return dir;
}

/** The contract suite's target: the runtime server inside a container, workspace bind-mounted. */
export async function startDockerTarget(options: TargetOptions = {}): Promise<RuntimeTarget> {
  const ws = hostWorkspace();
  const spec = await specFor({ workspaceHostPath: ws, env: { ...options.env } });
  const ep = await runtime.start(spec);
  return {
    url: ep.url,
    key: spec.sessionApiKey,
    workspace: '/workspace',
    async close() {
      await runtime.remove(spec.id);
      rmSync(ws, { recursive: true, force: true });
    },
  };
}
