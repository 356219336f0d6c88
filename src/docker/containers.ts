/**
 * Container and network operations on the Docker Engine, for sandboxes. Like images.ts, only the engine
 * constructs these; the rest of Berth sees the interfaces.
 */
import { PassThrough, Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { type BerthError, ErrorCode } from '../protocol/errors.js';
import { engineName } from './names.js';

export type ToError = (err: unknown, what: string) => BerthError;

export interface ContainerInfo {
  id: string;
  name: string;
  state: 'running' | 'paused' | 'exited' | 'created' | 'restarting' | 'dead' | 'removing';
  exitCode: number;
  /** The container's init process on the engine's host (0 when not running). */
  pid: number;
  labels: Record<string, string>;
  env: string[];
  /** Network name -> container IP address on it. */
  networks: Record<string, string>;
  /** "8000/tcp" -> host port bindings. */
  ports: Record<string, Array<{ hostIp: string; hostPort: number }>>;
  networkMode: string;
}

export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

export interface ContainerClient {
  /** Creates and starts; returns the container id. */
  run(options: Dockerode.ContainerCreateOptions): Promise<string>;
  inspect(idOrName: string): Promise<ContainerInfo>;
  /** undefined when there is no such container. */
  find(idOrName: string): Promise<ContainerInfo | undefined>;
  start(id: string): Promise<void>;
  stop(id: string, timeoutSeconds?: number): Promise<void>;
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  /** Force-removes; false when it did not exist. */
  remove(id: string): Promise<boolean>;
  list(labels: Record<string, string | true>): Promise<ContainerSummary[]>;
  /** The last lines of stdout and stderr. */
  logs(id: string, tail: number): Promise<string>;
  /** stdout and stderr as one text stream: the last `tail` lines, then (with follow) new ones as they come. */
  logStream(id: string, opts: { tail: number; follow: boolean }): Promise<Readable>;
  /** Runs a command in the container and returns its exit code and output (for tests and diagnostics). */
  exec(id: string, cmd: string[], user?: string): Promise<{ exitCode: number; output: string }>;
  /** Streams container state events ("die", "oom", ...) for the given container until the signal aborts. */
  /** One sample of the engine's resource figures for the container (CPU over the engine's last second). */
  stats(id: string): Promise<ResourceSample>;
}

/** What the engine measures of a container, in plain units. */
export interface ResourceSample {
  /** Percent of `cpuCount` CPUs in use. */
  cpuUsedPct: number;
  /** The container's CPU limit, or the CPUs it may use when it has none. */
  cpuCount: number;
  memUsed: number;
  /** The memory limit (the host's memory when there is none). */
  memTotal: number;
  /** Page cache counted in memUsed that the kernel can take back. */
  memCache: number;
}

export interface NetworkOptions {
  name: string;
  internal: boolean;
  /** Containers on the network may talk to each other. */
  interContainer: boolean;
  labels: Record<string, string>;
}

export interface NetworkClient {
  /** Creates the network if there is none by that name; returns its id. */
  ensure(options: NetworkOptions): Promise<string>;
  exists(name: string): Promise<boolean>;
  connect(network: string, container: string): Promise<void>;
  disconnect(network: string, container: string): Promise<void>;
  remove(name: string): Promise<boolean>;
  list(labels: Record<string, string | true>): Promise<Array<{ id: string; name: string }>>;
  details(name: string): Promise<NetworkDetails>;
}

export interface NetworkDetails {
  id: string;
  name: string;
  ranges: Array<{ subnet: string; gateway?: string | undefined }>;
  options: Record<string, string>;
}

function labelFilter(labels: Record<string, string | true>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === true ? k : `${k}=${v}`));
}

export class DockerContainerClient implements ContainerClient {
  constructor(
    private readonly docker: Dockerode,
    private readonly toError: ToError,
  ) {}

  async run(options: Dockerode.ContainerCreateOptions): Promise<string> {
    let id: string | undefined;
    try {
      const c = await this.docker.createContainer(options);
      id = c.id;
      await c.start();
      return c.id;
    } catch (err) {
      if (id) await this.remove(id).catch(() => undefined);
      throw this.toError(err, `start container ${options.name ?? ''}`.trim());
    }
  }

  async inspect(idOrName: string): Promise<ContainerInfo> {
    try {
      const i = await this.docker.getContainer(engineName('container', idOrName)).inspect();
      const networks: Record<string, string> = {};
      for (const [name, n] of Object.entries(i.NetworkSettings?.Networks ?? {})) networks[name] = n.IPAddress;
      const ports: ContainerInfo['ports'] = {};
      for (const [p, b] of Object.entries(i.NetworkSettings?.Ports ?? {})) {
        ports[p] = (b ?? []).map((x) => ({ hostIp: x.HostIp, hostPort: Number(x.HostPort) }));
      }
      return {
        id: i.Id,
        name: i.Name.replace(/^\//, ''),
        state: i.State.Status as ContainerInfo['state'],
        exitCode: i.State.ExitCode,
        pid: i.State.Pid ?? 0,
        labels: i.Config.Labels ?? {},
        env: i.Config.Env ?? [],
        networks,
        ports,
        networkMode: i.HostConfig.NetworkMode ?? '',
      };
    } catch (err) {
      throw this.toError(err, `inspect container ${idOrName}`);
    }
  }

  async find(idOrName: string): Promise<ContainerInfo | undefined> {
    try {
      return await this.inspect(idOrName);
    } catch (err) {
      if ((err as BerthError).code === ErrorCode.NOT_FOUND) return undefined;
      throw err;
    }
  }

  private async op(
    what: string,
    id: string,
    fn: (c: Dockerode.Container) => Promise<unknown>,
  ): Promise<void> {
    try {
      await fn(this.docker.getContainer(engineName('container', id)));
    } catch (err) {
      // 304: already in the wanted state.
      if ((err as { statusCode?: number }).statusCode === 304) return;
      throw this.toError(err, `${what} container ${id}`);
    }
  }

  start(id: string) {
    return this.op('start', id, (c) => c.start());
  }
  async stats(id: string): Promise<ResourceSample> {
    const c = this.docker.getContainer(engineName('container', id));
    let s: Dockerode.ContainerStats;
    let nanoCpus = 0;
    try {
      // Not one-shot: the engine answers with the previous sample too, so CPU use is over an interval.
      [s, nanoCpus] = await Promise.all([
        c.stats({ stream: false }) as Promise<Dockerode.ContainerStats>,
        c.inspect().then((i) => i.HostConfig?.NanoCpus ?? 0),
      ]);
    } catch (err) {
      throw this.toError(err, `read the stats of container ${id}`);
    }
    const online = s.cpu_stats?.online_cpus || s.cpu_stats?.cpu_usage?.percpu_usage?.length || 1;
    const cpuDelta =
      (s.cpu_stats?.cpu_usage?.total_usage ?? 0) - (s.precpu_stats?.cpu_usage?.total_usage ?? 0);
    const systemDelta = (s.cpu_stats?.system_cpu_usage ?? 0) - (s.precpu_stats?.system_cpu_usage ?? 0);
    const coresUsed = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online : 0;
    const cpuCount = nanoCpus > 0 ? nanoCpus / 1e9 : online;
    const mem = s.memory_stats ?? ({} as Dockerode.ContainerStats['memory_stats']);
    const stats = (mem.stats ?? {}) as Record<string, number | undefined>;
    // cgroup v2 names the reclaimable cache inactive_file; v1 cache.
    const memCache = stats.inactive_file ?? stats.total_inactive_file ?? stats.cache ?? 0;
    return {
      cpuUsedPct: Math.round((coresUsed / cpuCount) * 10000) / 100,
      cpuCount,
      memUsed: mem.usage ?? 0,
      memTotal: mem.limit ?? 0,
      memCache,
    };
  }
  stop(id: string, timeoutSeconds = 10) {
    return this.op('stop', id, (c) => c.stop({ t: timeoutSeconds }));
  }
  pause(id: string) {
    return this.op('pause', id, (c) => c.pause());
  }
  unpause(id: string) {
    return this.op('unpause', id, (c) => c.unpause());
  }

  async remove(id: string): Promise<boolean> {
    try {
      await this.docker.getContainer(engineName('container', id)).remove({ force: true, v: true });
      return true;
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) return false;
      // 409 "removal already in progress" counts as gone.
      if (status === 409) return true;
      throw this.toError(err, `remove container ${id}`);
    }
  }

  async list(labels: Record<string, string | true>): Promise<ContainerSummary[]> {
    try {
      const list = await this.docker.listContainers({ all: true, filters: { label: labelFilter(labels) } });
      return list.map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        state: c.State,
        labels: c.Labels ?? {},
      }));
    } catch (err) {
      throw this.toError(err, 'list containers');
    }
  }

  async logs(id: string, tail: number): Promise<string> {
    try {
      const buf = (await this.docker
        .getContainer(engineName('container', id))
        .logs({ stdout: true, stderr: true, tail, follow: false })) as Buffer;
      return demux(buf);
    } catch (err) {
      throw this.toError(err, `logs of container ${id}`);
    }
  }

  async logStream(id: string, opts: { tail: number; follow: boolean }): Promise<Readable> {
    if (!opts.follow) return Readable.from([await this.logs(id, opts.tail)]);
    try {
      const raw = (await this.docker
        .getContainer(engineName('container', id))
        .logs({ stdout: true, stderr: true, tail: opts.tail, follow: true })) as unknown as Readable;
      const out = new PassThrough();
      // Frames of both streams into one, in the order the engine sent them.
      this.docker.modem.demuxStream(raw, out, out);
      raw.once('end', () => out.end());
      raw.once('error', (err) => out.destroy(err));
      out.once('close', () => raw.destroy());
      return out;
    } catch (err) {
      throw this.toError(err, `logs of container ${id}`);
    }
  }

  async exec(id: string, cmd: string[], user?: string): Promise<{ exitCode: number; output: string }> {
    try {
      const e = await this.docker
        .getContainer(engineName('container', id))
        .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: user });
      const stream = await e.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => resolve());
        stream.on('error', reject);
      });
      const info = await e.inspect();
      return { exitCode: info.ExitCode ?? -1, output: demux(Buffer.concat(chunks)) };
    } catch (err) {
      throw this.toError(err, `exec in container ${id}`);
    }
  }
}

/** Docker's multiplexed log format: 8-byte frame headers (stream, 0, 0, 0, size32) before each chunk. */
function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2 || buf[i] === 0) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    parts.push(buf.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return (i === 0 ? buf : Buffer.concat(parts)).toString('utf8');
}

export class DockerNetworkClient implements NetworkClient {
  private readonly ensuring = new Map<string, Promise<string>>();

  constructor(
    private readonly docker: Dockerode,
    private readonly toError: ToError,
  ) {}

  ensure(options: NetworkOptions): Promise<string> {
    let p = this.ensuring.get(options.name);
    if (!p) {
      p = this.create(options).finally(() => this.ensuring.delete(options.name));
      this.ensuring.set(options.name, p);
    }
    return p;
  }

  private async create(options: NetworkOptions): Promise<string> {
    try {
      if ((await this.named(options.name)).length > 0) return await this.settle(options.name);
      await this.docker.createNetwork({
        Name: options.name,
        Driver: 'bridge',
        Internal: options.internal,
        CheckDuplicate: true,
        Labels: options.labels,
        Options: { 'com.docker.network.bridge.enable_icc': String(options.interContainer) },
      });
    } catch (err) {
      // Another process created it between our list and create.
      if ((err as { statusCode?: number }).statusCode !== 409)
        throw this.toError(err, `create network ${options.name}`);
    }
    return await this.settle(options.name).catch((err: unknown) => {
      throw this.toError(err, `create network ${options.name}`);
    });
  }

  private async named(name: string): Promise<Dockerode.NetworkInspectInfo[]> {
    const list = await this.docker.listNetworks({ filters: { name: [name] } });
    return list.filter((n) => n.Name === name);
  }

  /**
   * The one network of this name. The engine's duplicate check is not atomic: two processes creating
   * the same name at once can both succeed, and then every use of the name is "ambiguous". Every caller
   * picks the same survivor (oldest, then lowest id) and removes the others it can (the engine refuses
   * while a container is attached), so racers, and leftovers of an earlier race, converge on one.
   */
  private async settle(name: string): Promise<string> {
    const found = await this.named(name);
    const time = (n: Dockerode.NetworkInspectInfo) => Date.parse(n.Created ?? '') || 0;
    found.sort((a, b) => time(a) - time(b) || a.Id.localeCompare(b.Id));
    const [keep, ...extra] = found;
    if (!keep) throw new Error(`network ${name} vanished while it was being created`);
    for (const n of extra)
      await this.docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
    return keep.Id;
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.docker.getNetwork(engineName('network', name)).inspect();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw this.toError(err, `inspect network ${name}`);
    }
  }

  async connect(network: string, container: string): Promise<void> {
    try {
      await this.docker.getNetwork(engineName('network', network)).connect({ Container: container });
    } catch (err) {
      const msg = String((err as { message?: string }).message ?? '');
      if (/already exists|already attached/i.test(msg)) return;
      throw this.toError(err, `connect ${container} to network ${network}`);
    }
  }

  async disconnect(network: string, container: string): Promise<void> {
    try {
      await this.docker
        .getNetwork(engineName('network', network))
        .disconnect({ Container: container, Force: true });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404 || status === 403) return;
      throw this.toError(err, `disconnect ${container} from network ${network}`);
    }
  }

  async remove(name: string): Promise<boolean> {
    try {
      await this.docker.getNetwork(engineName('network', name)).remove();
      return true;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return false;
      throw this.toError(err, `remove network ${name}`);
    }
  }

  /** The network's id, address ranges (with their gateways) and driver options. */
  async details(name: string): Promise<NetworkDetails> {
    try {
      const n = await this.docker.getNetwork(engineName('network', name)).inspect();
      const ranges = ((n.IPAM?.Config ?? []) as Array<{ Subnet?: string; Gateway?: string }>)
        .filter((c) => c.Subnet)
        .map((c) => ({ subnet: c.Subnet as string, gateway: c.Gateway }));
      return { id: n.Id, name: n.Name, ranges, options: n.Options ?? {} };
    } catch (err) {
      throw this.toError(err, `inspect network ${name}`);
    }
  }

  async list(labels: Record<string, string | true>): Promise<Array<{ id: string; name: string }>> {
    try {
      const list = await this.docker.listNetworks({ filters: { label: labelFilter(labels) } });
      return list.map((n) => ({ id: n.Id, name: n.Name }));
    } catch (err) {
      throw this.toError(err, 'list networks');
    }
  }
}
