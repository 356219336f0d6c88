/**
 * SandboxRuntime on a Docker Engine: one container per sandbox, published ports allocated without
 * races, networks made on demand, readiness by polling /alive, and labels on everything so a reaper
 * can find what no record owns.
 */

import { statSync } from 'node:fs';
import { BlockList, isIPv6 } from 'node:net';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { waitUntilAlive } from '../sandboxes/readiness.js';
import type {
  ContainerState,
  ResourceUse,
  SandboxChange,
  SandboxEndpoint,
  SandboxRuntime,
  SandboxSpec,
} from '../sandboxes/types.js';
import {
  containerCreateOptions,
  containerName,
  INTERNAL_NETWORK,
  ISOLATED_NETWORK,
  SANDBOX_LABELS,
} from './container-spec.js';
import type { ContainerInfo } from './containers.js';
import { type DiskLimitMode, DiskLimits } from './disk-limit.js';
import { type DockerodeEngine, takenHostPorts } from './engine.js';
import { bridgeInterface, HostFirewall } from './host-firewall.js';
import { containerMountIsIdmapped, type IdmappedMounts } from './idmapped-mounts.js';
import { RUNTIME_IMAGE_KIND, RUNTIME_IMAGE_LABELS } from './image-builder.js';
import type { PortAllocator } from './ports.js';
import { Semaphore } from './semaphore.js';

/** App ports per sandbox, exported as APP_PORT_1 and APP_PORT_2 inside, as in the reference. */
export const APP_PORT_COUNT = 2;
/** Tries with fresh ports when Docker reports the chosen ones taken after all. */
const PORT_RETRIES = 5;
/**
 * Sandboxes starting at once. Each start costs the engine and the new server CPU; on a small machine
 * fifty at once all finish late together (measured: 50 on 2 cores, every one ~25 s), while a few at a
 * time finish early one after another and the whole burst is no slower.
 */
export const MAX_CONCURRENT_STARTS = 4;
/** Container log lines quoted when a sandbox fails to start. */
const FAILURE_LOG_LINES = 30;
/** The runtime server's own port, leased before the app ports (the first port of a lease). */
const RUNTIME_PORT_COUNT = 1;
/** How a dual-stack socket reports an IPv4 peer (::ffff:a.b.c.d); the networks are matched on a.b.c.d. */
const IPV4_MAPPED_PREFIX = '::ffff:';

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
  /**
   * Idmapped views of workspaces (see src/docker/idmapped-mounts.ts): with them, root in a sandbox can
   * neither create files in the workspace nor chown them away from the sandbox user. `require`: a
   * sandbox with a workspace does not start when no view can be made; `auto`: it starts without one.
   * Undefined: never.
   */
  workspaceIdmap?: { mounts: IdmappedMounts; mode: 'auto' | 'require' } | undefined;
  /**
   * Sandboxes with limits.diskMb where the engine's storage driver cannot limit the writable layer:
   * `auto` creates them without a limit (one warning in the log), `require` refuses them. @default auto
   */
  diskLimit?: DiskLimitMode | undefined;
}

const LINK_PREFIX = 'berth-link-';

interface GuardedNetwork {
  bridge: string;
  blocks: BlockList;
  gateways: Set<string>;
}

export function linkNetwork(id: string): string {
  return `${LINK_PREFIX}${id}`;
}

export class DockerSandboxRuntime implements SandboxRuntime {
  private readonly starts = new Semaphore(MAX_CONCURRENT_STARTS);

  private readonly firewall: HostFirewall;
  /** Sandbox networks seen, with their host-side bridge and address ranges (see guardNetwork). */
  private readonly guarded = new Map<string, GuardedNetwork>();
  private readonly protectedPorts = new Set<number>();
  private readonly disk: DiskLimits;

  constructor(private readonly opts: DockerRuntimeOptions) {
    this.firewall = new HostFirewall(opts.logger);
    this.disk = new DiskLimits(opts.engine, opts.diskLimit ?? 'auto', opts.logger);
  }

  /**
   * Keeps sandboxes away from a port of this host (the control plane's own): on every sandbox network
   * Berth made, known now or made later.
   */
  async protectHostPort(port: number): Promise<void> {
    this.protectedPorts.add(port);
    const known = await this.engine.networks
      .list({ [SANDBOX_LABELS.managed]: 'true' })
      .catch(() => [] as Array<{ name: string }>);
    for (const n of known) await this.guardNetwork(n.name).catch(() => undefined);
  }

  /** Whether a connection from this address comes from inside a sandbox (not from a gateway: the host). */
  isSandboxAddress(address: string | undefined): boolean {
    if (!address) return false;
    const ip = address.startsWith(IPV4_MAPPED_PREFIX) ? address.slice(IPV4_MAPPED_PREFIX.length) : address;
    for (const n of this.guarded.values()) {
      if (n.gateways.has(ip)) continue;
      if (n.blocks.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4')) return true;
    }
    return false;
  }

  /**
   * Records a sandbox network's address ranges and closes what Docker leaves open towards the host:
   * from internal and link networks, no new connections to the host at all; from the others, none to
   * the protected ports.
   */
  private async guardNetwork(name: string): Promise<void> {
    const d = await this.engine.networks.details(name);
    const bridge = bridgeInterface(d.id, d.options);
    const blocks = new BlockList();
    const gateways = new Set<string>();
    for (const r of d.ranges) {
      const [net, bits] = r.subnet.split('/');
      if (net && bits) blocks.addSubnet(net, Number(bits), isIPv6(net) ? 'ipv6' : 'ipv4');
      if (r.gateway) gateways.add(r.gateway);
    }
    this.guarded.set(name, { bridge, blocks, gateways });
    if (name === INTERNAL_NETWORK || name.startsWith(LINK_PREFIX))
      await this.firewall.refuseNewConnections(bridge);
    else for (const port of this.protectedPorts) await this.firewall.refusePort(bridge, port);
  }

  private get engine() {
    return this.opts.engine;
  }

  start(spec: SandboxSpec, onProgress?: (message: string) => void): Promise<SandboxEndpoint> {
    return this.starts.run(() => this.startNow(spec, onProgress));
  }

  private async startNow(
    spec: SandboxSpec,
    onProgress?: (message: string) => void,
  ): Promise<SandboxEndpoint> {
    await this.ensureNetwork(spec);
    const view = await this.workspaceView(spec);
    try {
      return await this.startWithPorts(spec, view, onProgress);
    } catch (err) {
      // The container is gone (startWithPorts removes it); so must its workspace view be.
      if (view) await this.opts.workspaceIdmap?.mounts.unmount(spec.id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The idmapped view to bind in place of the workspace, or undefined to bind the workspace itself:
   * without a workspace, for a root sandbox user (SANDBOX_USER_ID=0, the operator's choice), under
   * another OCI runtime (gVisor's gofer opens the workspace as host root, which the view leaves
   * unmapped), and, in `auto` mode, where views cannot be made or the workspace directory belongs to
   * someone other than the sandbox user (through the view it would be read-only).
   */
  private async workspaceView(spec: SandboxSpec): Promise<string | undefined> {
    const idmap = this.opts.workspaceIdmap;
    if (!idmap || !spec.workspaceHostPath || spec.userId === 0) return undefined;
    if (spec.ociRuntime && spec.ociRuntime !== 'runc') return undefined;
    const why = await idmap.mounts.probe();
    if (why !== undefined) {
      if (idmap.mode === 'auto') return undefined;
      throw new BerthError(
        ErrorCode.UNAVAILABLE,
        `Sandbox ${spec.id} needs an idmapped view of its workspace (sandbox.workspace_idmap = "require") and none can be made: ${why}`,
      );
    }
    const owner = statSync(spec.workspaceHostPath).uid;
    if (owner !== spec.userId) {
      const message = `The workspace ${spec.workspaceHostPath} belongs to uid ${owner}, not to the sandbox user (uid ${spec.userId}); through an idmapped view it would be read-only. chown the directory to the sandbox user, or set SANDBOX_USER_ID to its owner`;
      if (idmap.mode === 'require') throw new BerthError(ErrorCode.CONFLICT, message);
      this.opts.logger.warn(
        { id: spec.id },
        `${message}. Mounted without the view: root in the sandbox can make root-owned files there.`,
      );
      return undefined;
    }
    return idmap.mounts.mount(spec.id, spec.workspaceHostPath, spec.userId);
  }

  /** After a start: the kernel's word that the workspace inside is the idmapped view. */
  private checkView(info: ContainerInfo, target: string): void {
    if (!info.labels[SANDBOX_LABELS.workspaceIdmap]) return;
    if (!containerMountIsIdmapped(info.pid, target)) {
      throw new BerthError(
        ErrorCode.UNAVAILABLE,
        `the workspace at ${target} inside the container is not the idmapped view Berth made (is dockerd in another mount namespace?)`,
      );
    }
  }

  /** Before starting a stopped container again: remakes its workspace view if it is gone (a reboot). */
  private async restoreView(info: ContainerInfo): Promise<void> {
    const ids = info.labels[SANDBOX_LABELS.workspaceIdmap];
    const source = info.labels[SANDBOX_LABELS.workspace];
    const id = info.labels[SANDBOX_LABELS.id];
    const mounts = this.opts.workspaceIdmap?.mounts;
    if (!ids || !source || !id) return;
    if (!mounts) {
      throw new BerthError(
        ErrorCode.UNAVAILABLE,
        `Sandbox ${id} was made with an idmapped view of its workspace, which this control plane does not make`,
      );
    }
    await mounts.mount(id, source, Number(ids));
  }

  private async startWithPorts(
    spec: SandboxSpec,
    view: string | undefined,
    onProgress?: (message: string) => void,
  ): Promise<SandboxEndpoint> {
    let lastError: unknown;
    for (let attempt = 0; attempt < PORT_RETRIES; attempt++) {
      const lease = await this.opts.ports.reserve(spec.id, RUNTIME_PORT_COUNT + APP_PORT_COUNT);
      const [runtime, ...app] = lease.ports as [number, ...number[]];
      const options = containerCreateOptions(spec, { runtime, app }, view);
      options.Labels = { ...options.Labels, [SANDBOX_LABELS.owner]: this.opts.owner };
      const link =
        this.opts.reach.kind === 'link' && spec.network.mode !== 'host' ? linkNetwork(spec.id) : undefined;
      if (link) options.Labels = { ...options.Labels, [SANDBOX_LABELS.reachVia]: link };
      options.HostConfig ??= {};
      const hostConfig = options.HostConfig;
      await this.disk.apply(spec, hostConfig).catch(async (err: unknown) => {
        await lease.release();
        throw err;
      });
      let id: string;
      try {
        onProgress?.('creating container');
        id = await this.engine.containers.run(options);
      } catch (err) {
        let refused = false;
        try {
          refused = hostConfig.StorageOpt?.size !== undefined && this.disk.refused(spec, err);
        } catch (e) {
          await lease.release();
          throw e;
        }
        if (refused) {
          // The engine's driver takes no size (learnt once per engine): again without it, not a port retry.
          await lease.release();
          attempt--;
          continue;
        }
        const taken = takenHostPorts((err as Error).message);
        // Keep the port Docker named out of the next try, then try again with fresh ones.
        for (const port of taken ?? []) {
          if (lease.ports.includes(port)) this.opts.ports.markBad(spec.id, port);
        }
        await lease.release();
        lastError = err;
        if (taken) continue;
        throw err;
      }
      try {
        if (link) await this.joinLink(spec.id, id);
        const info = await this.engine.containers.inspect(id);
        this.checkView(info, spec.workspaceMountPathInSandbox);
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
        // The runtime server found its port taken where it listens (seen once under gVisor, whose
        // sockets are the host kernel's): the same as Docker refusing a taken port, so fresh ports.
        if (/EADDRINUSE|address already in use/.test(logs) && attempt < PORT_RETRIES - 1) {
          this.opts.logger.warn(
            { id: spec.id, port: runtime, attempt },
            'the runtime server found its port taken; starting again on fresh ports',
          );
          this.opts.ports.markBad(spec.id, runtime);
          await lease.release().catch(() => undefined);
          lastError = err;
          continue;
        }
        throw new BerthError(
          ErrorCode.UNAVAILABLE,
          `Sandbox ${spec.id} failed to start: ${message}${logs.trim() ? `\nLast container log lines:\n${logs.trimEnd()}` : ''}`,
        );
      }
    }
    throw lastError instanceof Error ? lastError : new BerthError(ErrorCode.UNAVAILABLE, 'no free ports');
  }

  /**
   * Link mode: puts the sandbox's container and this control plane's container on the sandbox's own
   * internal network, making it if needed. Idempotent; also run on attach and resume, because a
   * recreated control plane container (a new id) starts on none of the link networks.
   */
  private async joinLink(id: string, containerId: string): Promise<void> {
    if (this.opts.reach.kind !== 'link') return;
    const link = linkNetwork(id);
    await this.engine.networks.ensure({
      name: link,
      internal: true,
      interContainer: true,
      labels: {
        [SANDBOX_LABELS.managed]: 'true',
        [SANDBOX_LABELS.kind]: 'link',
        [SANDBOX_LABELS.id]: id,
        [SANDBOX_LABELS.owner]: this.opts.owner,
      },
    });
    await this.guardNetwork(link);
    await this.engine.networks.connect(link, containerId);
    const self = this.opts.reach.selfContainer;
    await this.engine.networks.connect(link, self).catch((err: unknown) => {
      if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) {
        throw new BerthError(
          ErrorCode.UNAVAILABLE,
          `cannot join sandbox ${id}'s network: there is no container "${self}" (BERTH_CONTROL_PLANE_CONTAINER ` +
            'names the container the control plane runs in; the Berth image sets it to its own id)',
        );
      }
      throw err;
    });
  }

  private async failIfExited(id: string): Promise<void> {
    const info = await this.engine.containers.find(id);
    if (!info) throw new Error('the container disappeared');
    // 'restarting': it exited and its restart policy is starting it again; at first start that is a failure.
    if (info.state === 'exited' || info.state === 'dead' || info.state === 'restarting') {
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
      await this.guardNetwork(ISOLATED_NETWORK);
    } else if (spec.network.mode === 'internal') {
      await this.engine.networks.ensure({
        name: INTERNAL_NETWORK,
        internal: true,
        interContainer: false,
        labels,
      });
      await this.guardNetwork(INTERNAL_NETWORK);
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
    else if (this.opts.reach.kind === 'link' || info.labels[SANDBOX_LABELS.reachVia]) {
      // Also from the host, which has an interface on every bridge network, internal ones included.
      const link = linkNetwork(id);
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
    if (info.state === 'exited' || info.state === 'created') {
      await this.restoreView(info);
      await this.engine.containers.start(info.id);
    }
    if (info.networkMode !== 'host') await this.joinLink(id, info.id);
    const key =
      info.env.find((e) => e.startsWith('SESSION_API_KEY='))?.slice('SESSION_API_KEY='.length) ?? '';
    const now = await this.engine.containers.inspect(info.id);
    const target = now.env.find((e) => e.startsWith('WORKSPACE_MOUNT_PATH_IN_SANDBOX='))?.split('=')[1];
    if (target && now.state === 'running') this.checkView(now, target);
    return this.endpoint(now, key);
  }

  async state(id: string): Promise<ContainerState> {
    const info = await this.engine.containers.find(containerName(id));
    if (!info) return 'missing';
    return info.state === 'removing' ? 'missing' : info.state;
  }

  async pause(id: string): Promise<void> {
    await this.engine.containers.pause(containerName(id));
  }

  resources(id: string): Promise<ResourceUse> {
    return this.engine.containers.stats(containerName(id));
  }

  async resume(id: string): Promise<void> {
    await this.engine.containers.unpause(containerName(id));
    // The endpoint is remembered from before the pause; the control plane's container may be new since.
    const info = await this.engine.containers.inspect(containerName(id));
    if (info.networkMode !== 'host') await this.joinLink(id, info.id);
  }

  async stop(id: string): Promise<void> {
    await this.engine.containers.stop(containerName(id));
  }

  async restart(id: string, startTimeoutMs: number): Promise<SandboxEndpoint> {
    const name = containerName(id);
    const before = await this.engine.containers.inspect(name);
    await this.restoreView(before);
    await this.engine.containers.start(name);
    const ep = await this.attach(id);
    await waitUntilAlive({ url: ep.url, timeoutMs: startTimeoutMs, check: () => this.failIfExited(name) });
    return ep;
  }

  logs(id: string, opts: { tail: number; follow: boolean }): Promise<Readable> {
    return this.engine.containers.logStream(containerName(id), opts);
  }

  async remove(id: string): Promise<void> {
    await this.engine.containers.remove(containerName(id));
    await this.opts.workspaceIdmap?.mounts
      .unmount(id)
      .catch((err: unknown) =>
        this.opts.logger.warn({ err, id }, 'could not remove the idmapped view of the workspace'),
      );
    await this.removeLink(id);
    await this.opts.ports.releaseOwner(id);
  }

  /**
   * Removes the sandbox's link network, if it has one (whichever mode made it). Best effort: the engine
   * refuses while another container is still on it, and reap() tries again later.
   */
  private async removeLink(id: string): Promise<void> {
    const link = linkNetwork(id);
    if (this.opts.reach.kind === 'link') {
      await this.engine.networks.disconnect(link, this.opts.reach.selfContainer);
    }
    await this.engine.networks
      .remove(link)
      .catch((err: unknown) =>
        this.opts.logger.warn({ err, network: link }, 'could not remove the link network'),
      );
    const guarded = this.guarded.get(link);
    this.guarded.delete(link);
    if (guarded) await this.firewall.release(guarded.bridge);
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

  async checkRuntimeImage(image: string): Promise<void> {
    const details = await this.engine.images.inspect(image);
    if (details.labels[RUNTIME_IMAGE_LABELS.kind] !== RUNTIME_IMAGE_KIND) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `Image "${image}" is not a Berth runtime image (it has no runtime server); make one from it with \`berth image build --base ${image}\``,
        { image },
      );
    }
  }

  watch(onChange: (change: SandboxChange) => void): () => void {
    const sub = this.engine.followContainerEvents(
      { [SANDBOX_LABELS.owner]: this.opts.owner },
      (e) => {
        const id = e.labels[SANDBOX_LABELS.id];
        if (id) onChange({ id, action: e.action, exitCode: e.exitCode, at: e.at });
      },
      (err) => this.opts.logger.debug({ err }, 'engine event stream interrupted; following again'),
      (again) => {
        if (again) onChange({ id: '*', action: 'resync', at: new Date() });
      },
    );
    return () => sub.close();
  }

  async reap(keep: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const c of await this.list()) {
      if (keep.has(c.id)) continue;
      await this.remove(c.id).catch((err) => this.opts.logger.warn({ err, id: c.id }, 'reap failed'));
      removed.push(c.id);
    }
    // Link networks whose sandbox is gone (a failed removal, or a crash between the steps of one).
    const links = await this.engine.networks
      .list({
        [SANDBOX_LABELS.managed]: 'true',
        [SANDBOX_LABELS.kind]: 'link',
        [SANDBOX_LABELS.owner]: this.opts.owner,
      })
      .catch(() => []);
    for (const n of links) {
      const id = n.name.startsWith(LINK_PREFIX) ? n.name.slice(LINK_PREFIX.length) : '';
      if (id && !keep.has(id)) await this.removeLink(id);
    }
    // Workspace views whose sandbox is gone (a crash between the container's removal and the view's).
    await this.opts.workspaceIdmap?.mounts.sweep(keep).catch(() => []);
    // The lock dir is host-wide: another control plane's sandboxes (it may be down right now) keep their
    // ports while their containers exist, stopped ones included, so they can start again on them.
    const existing = await this.engine.containers
      .list({ [SANDBOX_LABELS.managed]: 'true', [SANDBOX_LABELS.kind]: 'sandbox' })
      .then((all) => all.map((c) => c.labels[SANDBOX_LABELS.id] ?? c.name))
      .catch(() => undefined);
    // Not knowing which containers exist, drop no lock at all.
    if (existing) await this.opts.ports.sweep(new Set([...keep, ...existing])).catch(() => 0);
    return removed;
  }
}
