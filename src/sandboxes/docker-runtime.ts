/**
 * SandboxRuntime on a Docker Engine: one container per sandbox, published ports allocated without
 * races, networks made on demand, readiness by polling /alive, and labels on everything so a reaper
 * can find what no record owns.
 */
import type { Logger } from 'pino';
import {
  containerCreateOptions,
  containerName,
  INTERNAL_NETWORK,
  ISOLATED_NETWORK,
  SANDBOX_LABELS,
} from '../docker/container-spec.js';
import type { ContainerInfo } from '../docker/containers.js';
import type { DockerodeEngine } from '../docker/engine.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { PortAllocator } from './ports.js';
import { waitUntilAlive } from './readiness.js';
import type { ContainerState, SandboxEndpoint, SandboxRuntime, SandboxSpec } from './types.js';

/** App ports per sandbox, exported as APP_PORT_1 and APP_PORT_2 inside, as in the reference. */
export const APP_PORT_COUNT = 2;
/** Tries with fresh ports when Docker reports the chosen ones taken after all. */
const PORT_RETRIES = 5;
/** Container log lines quoted when a sandbox fails to start. */
const FAILURE_LOG_LINES = 30;

export interface DockerRuntimeOptions {
  engine: DockerodeEngine;
  ports: PortAllocator;
  logger: Logger;
  /** Labels every container with this owner; list and reap see only containers of the same owner. */
  owner: string;
  /**
   * How this process reaches runtime servers: through published host ports (Berth on the host), or,
   * when Berth itself runs in a container, over a small internal network per sandbox that only that
   * sandbox and Berth's container join. One shared network would let sandboxes reach each other.
   */
  reach: { kind: 'host-ports' } | { kind: 'link'; selfContainer: string };
}

export function linkNetwork(id: string): string {
  return `berth-link-${id}`;
}

export class DockerSandboxRuntime implements SandboxRuntime {
  constructor(private readonly opts: DockerRuntimeOptions) {}

  private get engine() {
    return this.opts.engine;
  }

  async start(spec: SandboxSpec, onProgress?: (message: string) => void): Promise<SandboxEndpoint> {
    await this.ensureNetwork(spec);
    let lastError: unknown;
    for (let attempt = 0; attempt < PORT_RETRIES; attempt++) {
      const lease = await this.opts.ports.reserve(spec.id, 1 + APP_PORT_COUNT);
      const [runtime, ...app] = lease.ports as [number, ...number[]];
      const options = containerCreateOptions(spec, { runtime, app });
      options.Labels = { ...options.Labels, [SANDBOX_LABELS.owner]: this.opts.owner };
      const link =
        this.opts.reach.kind === 'link' && spec.network.mode !== 'host' ? linkNetwork(spec.id) : undefined;
      if (link) options.Labels = { ...options.Labels, [SANDBOX_LABELS.reachVia]: link };
      let id: string;
      try {
        onProgress?.('creating container');
        id = await this.engine.containers.run(options);
      } catch (err) {
        await lease.release();
        lastError = err;
        if (/port is already allocated|address already in use/i.test((err as Error).message)) continue;
        throw err;
      }
      try {
        if (link && this.opts.reach.kind === 'link') {
          await this.engine.networks.ensure({
            name: link,
            internal: true,
            interContainer: true,
            labels: {
              [SANDBOX_LABELS.managed]: 'true',
              [SANDBOX_LABELS.kind]: 'link',
              [SANDBOX_LABELS.id]: spec.id,
            },
          });
          await this.engine.networks.connect(link, id);
          await this.engine.networks.connect(link, this.opts.reach.selfContainer);
        }
        const info = await this.engine.containers.inspect(id);
        const ep = this.endpoint(info, spec.sessionApiKey);
        onProgress?.('waiting for the runtime server');
        await waitUntilAlive({
          url: ep.url,
          timeoutMs: spec.startTimeoutMs,
          check: () => this.failIfExited(id),
        });
        return ep;
      } catch (err) {
        const logs = await this.engine.containers.logs(id, FAILURE_LOG_LINES).catch(() => '');
        await this.remove(spec.id).catch(() => undefined);
        const message = (err as Error).message;
        throw new BerthError(
          ErrorCode.UNAVAILABLE,
          `Sandbox ${spec.id} failed to start: ${message}${logs.trim() ? `\nLast container log lines:\n${logs.trimEnd()}` : ''}`,
        );
      }
    }
    throw lastError instanceof Error ? lastError : new BerthError(ErrorCode.UNAVAILABLE, 'no free ports');
  }

  private async failIfExited(id: string): Promise<void> {
    const info = await this.engine.containers.find(id);
    if (!info) throw new Error('the container disappeared');
    if (info.state === 'exited' || info.state === 'dead') {
      throw new Error(`the container exited with code ${info.exitCode}`);
    }
  }

  private async ensureNetwork(spec: SandboxSpec): Promise<void> {
    const labels = { [SANDBOX_LABELS.managed]: 'true', [SANDBOX_LABELS.kind]: 'network' };
    if (spec.network.mode === 'isolated') {
      await this.engine.networks.ensure({
        name: ISOLATED_NETWORK,
        internal: false,
        interContainer: false,
        labels,
      });
    } else if (spec.network.mode === 'internal') {
      await this.engine.networks.ensure({
        name: INTERNAL_NETWORK,
        internal: true,
        interContainer: false,
        labels,
      });
    } else if (spec.network.mode === 'named') {
      if (!(await this.engine.networks.exists(spec.network.name))) {
        throw new BerthError(
          ErrorCode.VALIDATION_FAILED,
          `Docker network "${spec.network.name}" does not exist`,
        );
      }
    }
  }

  /** Where this process reaches the runtime server of a container. */
  private endpoint(info: ContainerInfo, sessionApiKey: string): SandboxEndpoint {
    const id = info.labels[SANDBOX_LABELS.id] ?? '';
    const runtime = Number(info.labels[SANDBOX_LABELS.runtimePort]);
    const app = (info.labels[SANDBOX_LABELS.appPorts] ?? '').split(',').filter(Boolean).map(Number);
    let host: string;
    if (info.networkMode === 'host') host = '127.0.0.1';
    else if (info.labels[SANDBOX_LABELS.reachVia]) {
      const link = info.labels[SANDBOX_LABELS.reachVia]!;
      host = info.networks[link] ?? '';
      if (!host)
        throw new BerthError(ErrorCode.UNAVAILABLE, `sandbox ${id} is not on its link network ${link}`);
    } else if (info.networkMode === INTERNAL_NETWORK) {
      // Docker publishes no ports for internal networks; the host reaches the container's address directly.
      host = info.networks[INTERNAL_NETWORK] ?? '';
    } else {
      const bound = info.ports[`${runtime}/tcp`]?.[0]?.hostIp ?? '127.0.0.1';
      host = bound === '0.0.0.0' || bound === '' || bound === '::' ? '127.0.0.1' : bound;
    }
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${runtime}`;
    return { id, containerId: info.id, url, sessionApiKey, ports: { runtime, app } };
  }

  async attach(id: string): Promise<SandboxEndpoint> {
    const info = await this.engine.containers.find(containerName(id));
    if (!info) throw new BerthError(ErrorCode.NOT_FOUND, `No container for sandbox ${id}`);
    if (info.state === 'exited' || info.state === 'created') await this.engine.containers.start(info.id);
    const key =
      info.env.find((e) => e.startsWith('SESSION_API_KEY='))?.slice('SESSION_API_KEY='.length) ?? '';
    return this.endpoint(await this.engine.containers.inspect(info.id), key);
  }

  async state(id: string): Promise<ContainerState> {
    const info = await this.engine.containers.find(containerName(id));
    if (!info) return 'missing';
    return info.state === 'removing' ? 'missing' : info.state;
  }

  async pause(id: string): Promise<void> {
    await this.engine.containers.pause(containerName(id));
  }

  async resume(id: string): Promise<void> {
    await this.engine.containers.unpause(containerName(id));
  }

  async stop(id: string): Promise<void> {
    await this.engine.containers.stop(containerName(id));
  }

  async restart(id: string): Promise<SandboxEndpoint> {
    const name = containerName(id);
    await this.engine.containers.start(name);
    const ep = await this.attach(id);
    await waitUntilAlive({ url: ep.url, timeoutMs: 60_000, check: () => this.failIfExited(name) });
    return ep;
  }

  async remove(id: string): Promise<void> {
    await this.engine.containers.remove(containerName(id));
    if (this.opts.reach.kind === 'link') {
      await this.engine.networks.disconnect(linkNetwork(id), this.opts.reach.selfContainer);
      await this.engine.networks.remove(linkNetwork(id));
    }
    await this.opts.ports.releaseOwner(id);
  }

  async list(): Promise<Array<{ id: string; state: ContainerState; labels: Record<string, string> }>> {
    const list = await this.engine.containers.list({
      [SANDBOX_LABELS.managed]: 'true',
      [SANDBOX_LABELS.kind]: 'sandbox',
      [SANDBOX_LABELS.owner]: this.opts.owner,
    });
    return list.map((c) => ({
      id: c.labels[SANDBOX_LABELS.id] ?? c.name,
      state: c.state as ContainerState,
      labels: c.labels,
    }));
  }

  async reap(keep: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const c of await this.list()) {
      if (keep.has(c.id)) continue;
      await this.remove(c.id).catch((err) => this.opts.logger.warn({ err, id: c.id }, 'reap failed'));
      removed.push(c.id);
    }
    await this.opts.ports.sweep(keep).catch(() => 0);
    return removed;
  }
}
