/**
 * The control plane's sandbox service: creates sandboxes (from the warm pool when it can), tracks
 * them in the store, proxies actions while recording every action and observation, enforces
 * lifetimes and idle limits, and reconciles its records with the engine after a restart.
 */

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import {
  type CreateSandboxBody,
  PLUGINS_ENV,
  type Sandbox,
  type SandboxEvent,
  type SandboxState,
  type SandboxUser,
  STATES_WITH_CONTAINER,
} from '../protocol/api.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import type { Observation } from '../protocol/openhands.js';
import { parseVolume } from '../protocol/volumes.js';
import { RuntimeServerClient } from '../sdk/runtime-client.js';
import type { SandboxRecord } from '../store/sandboxes.js';
import { toApiSandbox } from '../store/sandboxes.js';
import type { Store } from '../store/store.js';
import { checkCreateRequest, type SandboxPolicy } from './policy.js';
import { WarmPool } from './pool.js';
import { waitUntilAlive } from './readiness.js';
import { Reaper } from './reaper.js';
import type {
  NetworkSpec,
  ResourceUse,
  SandboxChange,
  SandboxEndpoint,
  SandboxRuntime,
  SandboxSpec,
} from './types.js';

/** What the manager needs from the configuration (mapped from the config file and environment). */
export interface ManagerSettings {
  defaultImage: () => Promise<string>;
  workspaceHostPath?: string | undefined;
  /** Where this process sees workspaceHostPath (WORKSPACE_BASE, when Berth runs in a container). */
  workspaceLocalPath?: string | undefined;
  workspaceMountPathInSandbox: string;
  volumes: string[];
  /** SANDBOX_USER_ID; null: each sandbox takes its workspace owner's ids (see sandboxUser). */
  userId: number | null;
  /** Name of the sandbox user's account (SANDBOX_USER_NAME). */
  userName?: string | undefined;
  bindingAddress: string;
  network: string;
  useHostNetwork: boolean;
  env: Record<string, string>;
  limits: { cpus?: number; memoryMb?: number; pids?: number; diskMb?: number };
  ociRuntime?: string | undefined;
  enableGpu: boolean;
  startTimeoutMs: number;
  lifetimeSeconds: number;
  idleTimeoutSeconds: number;
  keepRuntimeAlive: boolean;
  poolSize: number;
  /** Default hard timeout of an action when it carries none (SANDBOX_TIMEOUT). */
  actionTimeoutSeconds: number;
  /** What API callers may ask for. */
  policy: SandboxPolicy;
}

export interface ManagerEvents {
  event: [SandboxEvent];
  sandbox: [Sandbox];
}

/** The sandbox user's uid and gid without a workspace to take them from: the reference's default. */
export const DEFAULT_SANDBOX_UID = 1000;

/** Starts in a row that may fail before an exited or stopped sandbox counts as broken (state error). */
const MAX_FAILED_STARTS = 3;
/** How long a reset may take: killing a fork bomb's thousands of processes takes a moment. */
const RESET_TIMEOUT_MS = 60_000;
/** Extra seconds the proxy waits beyond an action's own timeout before giving up on the runtime server. */
const PROXY_GRACE_SECONDS = 30;

export class SandboxManager extends EventEmitter<ManagerEvents> {
  private readonly clients = new Map<string, RuntimeServerClient>();
  /** Host ports published for each sandbox's apps (APP_PORT_1, APP_PORT_2), as last started. */
  private readonly appPorts = new Map<string, number[]>();
  private readonly inFlight = new Map<string, number>();
  /** Sandboxes whose container this manager is starting now, for a create. */
  private readonly starting = new Set<string>();
  /** Deletes and stops under way, by sandbox id (see settling). */
  private readonly ending = new Map<string, Promise<void>>();
  /** Deletes under way, by sandbox (see delete). */
  private readonly deleting = new Map<string, Promise<boolean>>();
  /** Lifecycle operations of Berth's own under way, by sandbox id (see own). */
  private readonly ownOps = new Map<string, number>();
  /** Failed starts in a row of an exited or stopped sandbox, by id (see MAX_FAILED_STARTS). */
  private readonly failedStarts = new Map<string, number>();
  /** Sandboxes the engine reported OOM-killed, until their exit is recorded. */
  private readonly oomKilled = new Set<string>();
  private unwatch: (() => void) | undefined;
  /** Lifetimes, idle limits and unowned containers, on its own timer (started by whoever runs Berth). */
  readonly reaper: Reaper;
  private readonly pool: WarmPool;

  constructor(
    private readonly store: Store,
    private readonly runtime: SandboxRuntime,
    private readonly settings: ManagerSettings,
    private readonly logger: Logger,
  ) {
    super();
    this.reaper = new Reaper({
      store,
      runtime,
      logger,
      isStarting: (id) => this.starting.has(id),
      isBusy: (id) => this.busy(id),
      delete: async (id, reason) => {
        await this.delete(id, { reason });
      },
      pause: async (id, reason) => {
        const rec = this.get(id);
        // Paused or stopped already (its lifetime ended while it was): only the lifetime goes.
        if (rec.state === 'running') await this.pause(id, reason);
        this.store.sandboxes.update(id, { expires_at: null });
        this.changed(id);
      },
    });
    this.pool = new WarmPool({
      store,
      runtime,
      logger,
      size: settings.poolSize,
      defaultImage: () => settings.defaultImage(),
      usable: () => this.poolable({}),
      newId: newSandboxId,
      specFor: (id, image, key) => this.buildSpec(id, image, key, {}, null, true),
      onStarted: (id, ep) => this.remember(id, ep),
    });
  }

  // ---- queries -------------------------------------------------------------------------------

  get(id: string): SandboxRecord {
    const rec = this.store.sandboxes.get(id);
    if (rec.pool_image !== null) throw new BerthError(ErrorCode.NOT_FOUND, `No sandbox ${id}`);
    return rec;
  }

  list(filter: {
    state?: SandboxState | readonly SandboxState[];
    labels?: Record<string, string>;
  }): SandboxRecord[] {
    return this.store.sandboxes.list({ ...filter, pooled: false });
  }

  /** URLs of a sandbox's app ports on the host ({url: port}), for clients that show them. */
  appHosts(id: string): Record<string, number> {
    const out: Record<string, number> = {};
    const host = this.settings.bindingAddress.includes(':')
      ? `[${this.settings.bindingAddress}]`
      : this.settings.bindingAddress === '0.0.0.0'
        ? '127.0.0.1'
        : this.settings.bindingAddress;
    for (const port of this.appPorts.get(id) ?? []) if (port > 0) out[`http://${host}:${port}`] = port;
    return out;
  }

  /** Sandboxes currently running an action (never counted as idle). */
  /**
   * Marks the sandbox busy (not idle-reaped) until the returned function is called: for work that runs
   * outside actions, such as an exec socket.
   */
  hold(id: string): () => void {
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight.set(id, (this.inFlight.get(id) ?? 1) - 1);
      this.touch(id);
    };
  }

  busy(id: string): boolean {
    return (this.inFlight.get(id) ?? 0) > 0;
  }

  countByState(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.store.sandboxes.list({ includeDeleted: false })) {
      const key = r.pool_image ? 'pooled' : r.state;
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /**
   * Creates a sandbox. `own.labels` are Berth's own labels (reserved "berth." keys a request may not
   * set), e.g. the OpenHands session a sandbox serves.
   */
  async create(
    body: CreateSandboxBody,
    own: { labels?: Record<string, string> } = {},
  ): Promise<SandboxRecord> {
    checkCreateRequest(body, (body.volumes ?? []).map(parseVolume), this.settings.policy);
    const labels = { ...(body.labels ?? {}), ...(own.labels ?? {}) };
    // The configured image is the operator's choice; one a request names must be a runtime image.
    if (body.image !== undefined) await this.runtime.checkRuntimeImage?.(body.image);
    const image = body.image ?? (await this.settings.defaultImage());
    const lifetime = body.timeout_seconds ?? this.settings.lifetimeSeconds;
    if (this.poolable(body)) {
      const claimed = this.store.sandboxes.claimPooled(image, {
        labels,
        spec: body,
        expires_at: expiry(lifetime),
        idle_timeout_seconds: idleLimit(body.idle_timeout_seconds ?? this.settings.idleTimeoutSeconds),
        keep_alive: body.keep_alive ?? this.settings.keepRuntimeAlive,
        last_activity_at: new Date(),
      });
      if (claimed) {
        this.reaper.lifetimesChanged();
        this.pool.refillSoon(image);
        if (body.env && Object.keys(body.env).length > 0) await this.addEnvVars(claimed, body.env);
        this.lifecycle(claimed.id, 'created', 'claimed from the warm pool');
        return this.changed(claimed.id);
      }
      this.pool.refillSoon(image);
    }
    const id = newSandboxId();
    const key = randomBytes(24).toString('base64url');
    const workspace = body.workspace ?? this.settings.workspaceHostPath ?? null;
    this.sandboxUser(workspace, body.user); // refuses a root-owned workspace before any record exists
    this.store.sandboxes.insert({
      id,
      state: 'starting',
      image,
      session_api_key: key,
      spec: body,
      workspace,
      labels,
      expires_at: expiry(lifetime),
      idle_timeout_seconds: idleLimit(body.idle_timeout_seconds ?? this.settings.idleTimeoutSeconds),
      keep_alive: body.keep_alive ?? this.settings.keepRuntimeAlive,
    });
    this.lifecycle(id, 'created', 'requested');
    this.reaper.lifetimesChanged();
    this.changed(id);
    const spec = this.buildSpec(id, image, key, { ...body, labels }, workspace);
    return this.own(id, () => this.startContainer(id, spec));
  }

  private async startContainer(id: string, spec: SandboxSpec): Promise<SandboxRecord> {
    this.starting.add(id);
    try {
      const ep = await this.runtime.start(spec);
      this.remember(id, ep);
      this.store.sandboxes.update(id, { state: 'running', url: ep.url, container_id: ep.containerId });
      this.lifecycle(id, 'started', 'container ready');
      return this.changed(id);
    } catch (err) {
      const message = (err as Error).message;
      this.store.sandboxes.update(id, { state: 'error', error: message });
      this.lifecycle(id, 'failed', message);
      this.changed(id);
      await this.runtime.remove(id).catch(() => undefined);
      throw err instanceof BerthError
        ? err
        : new BerthError(ErrorCode.UNAVAILABLE, `Sandbox failed to start: ${message}`);
    } finally {
      this.starting.delete(id);
    }
  }

  /** A create can use a pooled sandbox when it needs nothing fixed at container start. */
  private poolable(body: CreateSandboxBody): boolean {
    return (
      this.settings.poolSize > 0 &&
      body.workspace === undefined &&
      this.settings.workspaceHostPath === undefined &&
      (body.volumes ?? []).length === 0 &&
      this.settings.volumes.length === 0 &&
      body.limits === undefined &&
      body.network === undefined &&
      body.user === undefined &&
      body.working_dir === undefined &&
      body.plugins === undefined &&
      body.oci_runtime === undefined
    );
  }

  private buildSpec(
    id: string,
    image: string,
    key: string,
    body: CreateSandboxBody,
    workspace: string | null,
    pooled = false,
  ): SandboxSpec {
    const network = this.networkSpec(body.network);
    const user = this.sandboxUser(workspace, body.user);
    const userName = body.user?.name ?? (user.uid === 0 ? 'root' : this.settings.userName);
    return {
      id,
      image,
      workspaceHostPath: workspace ?? undefined,
      workspaceMountPathInSandbox: body.working_dir ?? this.settings.workspaceMountPathInSandbox,
      mounts: [...this.settings.volumes, ...(body.volumes ?? [])].map(parseVolume),
      userId: user.uid,
      groupId: user.gid,
      userName,
      bindingAddress: this.settings.bindingAddress,
      network,
      env: {
        ...this.settings.env,
        ...(body.env ?? {}),
        ...(body.plugins ? { [PLUGINS_ENV]: body.plugins.join(',') } : {}),
      },
      limits: {
        cpus: body.limits?.cpus ?? this.settings.limits.cpus,
        memoryMb: body.limits?.memory_mb ?? this.settings.limits.memoryMb,
        pids: body.limits?.pids ?? this.settings.limits.pids,
        diskMb: body.limits?.disk_mb ?? this.settings.limits.diskMb,
      },
      ociRuntime: body.oci_runtime ?? this.settings.ociRuntime,
      gpu: this.settings.enableGpu ? { enabled: true } : undefined,
      labels: { ...(body.labels ?? {}), ...(pooled ? { 'berth.pool': 'true' } : {}) },
      startTimeoutMs: this.settings.startTimeoutMs,
      sessionApiKey: key,
    };
  }

  /**
   * The sandbox user's uid and gid. SANDBOX_USER_ID when set (its default is the uid running Berth,
   * unless that is root). Under a root Berth with it unset: the owner of the workspace directory, so
   * files agents make there belong to whoever owns it, or 1000 without a workspace. A root-owned
   * workspace is refused: agents run as root only when the operator sets SANDBOX_USER_ID=0 or a
   * request asks for uid 0. A request's own uid comes first.
   */
  private sandboxUser(workspace: string | null, requested?: SandboxUser): { uid: number; gid: number } {
    if (requested?.uid !== undefined) return { uid: requested.uid, gid: requested.gid ?? requested.uid };
    if (requested?.name === 'root') return { uid: 0, gid: requested.gid ?? 0 };
    const chosen = this.settings.userId;
    if (chosen !== null) return { uid: chosen, gid: chosen };
    if (workspace === null) return { uid: DEFAULT_SANDBOX_UID, gid: DEFAULT_SANDBOX_UID };
    const how = 'set SANDBOX_USER_ID (sandbox.user_id) to the uid agents should run as (0 runs them as root)';
    let owner: { uid: number; gid: number };
    try {
      const local =
        workspace === this.settings.workspaceHostPath ? this.settings.workspaceLocalPath : undefined;
      owner = statSync(local ?? workspace);
    } catch (err) {
      throw new BerthError(
        ErrorCode.CONFLICT,
        `Cannot tell who owns the workspace ${workspace} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}), so no sandbox user can be chosen for it: ${how}`,
        { rule: 'sandbox.user_id', workspace },
      );
    }
    if (owner.uid === 0) {
      throw new BerthError(
        ErrorCode.CONFLICT,
        `The workspace ${workspace} belongs to root, and agents do not run as root unless the operator asks for it. Either chown the directory to the user who should own the agent's files (e.g. chown 1000:1000 ${workspace}), or ${how}`,
        { rule: 'sandbox.user_id', workspace, owner_uid: 0 },
      );
    }
    return { uid: owner.uid, gid: owner.gid };
  }

  private networkSpec(choice: string | undefined): NetworkSpec {
    if (this.settings.useHostNetwork && choice === undefined) return { mode: 'host' };
    const c = choice ?? this.settings.network;
    if (c === 'isolated' || c === 'internal' || c === 'host') return { mode: c };
    return { mode: 'named', name: c };
  }

  /** Deletes the sandbox; false if it was already deleted when this delete's turn came (a racing one). */
  delete(id: string, opts: { keep?: boolean; reason?: string } = {}): Promise<boolean> {
    // One delete at a time per sandbox: a second (the reaper's and a user's kill at the same moment)
    // waits for the first instead of removing and recording the deletion twice.
    const under = this.deleting.get(id);
    if (under) return under.then(() => false);
    const done = this.settling(id, () => this.deleteNow(id, opts));
    this.deleting.set(id, done);
    const forget = () => {
      if (this.deleting.get(id) === done) this.deleting.delete(id);
    };
    done.then(forget, forget);
    return done;
  }

  private async deleteNow(id: string, opts: { keep?: boolean; reason?: string }): Promise<boolean> {
    const rec = this.store.sandboxes.get(id);
    if (rec.state === 'deleted') return false;
    const keep = opts.keep ?? rec.keep_alive;
    this.forget(id);
    if (!keep) await this.runtime.remove(id).catch((err) => this.logger.warn({ err, id }, 'remove failed'));
    // Recorded, so the reaper knows the container was left on purpose.
    else if (!rec.keep_alive) this.store.sandboxes.update(id, { keep_alive: true });
    this.store.sandboxes.markDeleted(id);
    this.lifecycle(id, 'deleted', opts.reason ?? 'requested');
    this.changed(id);
    return true;
  }

  pause(id: string, reason = 'requested'): Promise<SandboxRecord> {
    return this.own(id, () => this.pauseNow(id, reason));
  }

  private async pauseNow(id: string, reason: string): Promise<SandboxRecord> {
    const rec = this.get(id);
    if (rec.state === 'paused') return rec;
    this.requireState(rec, ['running']);
    await this.runtime.pause(id);
    this.store.sandboxes.update(id, { state: 'paused' });
    this.lifecycle(id, 'paused', reason);
    return this.changed(id);
  }

  resume(id: string, reason = 'requested'): Promise<SandboxRecord> {
    return this.own(id, () => this.resumeNow(id, reason));
  }

  private async resumeNow(id: string, reason: string): Promise<SandboxRecord> {
    let rec = this.get(id);
    if (rec.state === 'running') {
      // The record may be behind the engine: a `docker pause` done outside Berth.
      const actual = await this.runtime.state(id).catch(() => 'missing' as const);
      if (actual !== 'paused') {
        throw new BerthError(
          ErrorCode.CONFLICT,
          `Sandbox ${id} is running, not paused or stopped: nothing to resume`,
        );
      }
      this.store.sandboxes.update(id, { state: 'paused' });
      this.lifecycle(id, 'paused', 'container was paused outside Berth');
      rec = this.get(id);
      reason = `${reason} (it had been paused outside Berth)`;
    }
    this.requireState(rec, ['paused', 'stopped', 'exited']);
    if (rec.state === 'paused') await this.runtime.resume(id);
    else {
      let ep: SandboxEndpoint;
      try {
        ep = await this.runtime.restart(id, this.settings.startTimeoutMs);
      } catch (err) {
        // A container that will not start again, time after time, is broken: say so and stop trying.
        // UNAVAILABLE is the host's trouble, not the sandbox's (a host port taken by another process
        // while it was stopped, an engine that does not answer): it does not count, and the sandbox
        // stays resumable for when the host is well again.
        const message = (err as Error).message;
        const code = (err as BerthError).code;
        if (code === ErrorCode.UNAVAILABLE) {
          this.lifecycle(id, 'start_failed', `not counted (the host cannot start it now): ${message}`);
          throw err;
        }
        const failures = (this.failedStarts.get(id) ?? 0) + 1;
        this.failedStarts.set(id, failures);
        if (code === ErrorCode.NOT_FOUND) {
          // Removed outside Berth (the engine's destroy event may still be on its way): what the
          // event would have recorded, not a start failure.
          this.failedStarts.delete(id);
          this.store.sandboxes.update(id, { state: 'vanished', error: 'container no longer exists' });
          this.lifecycle(id, 'vanished', 'container no longer exists');
          this.changed(id);
        } else if (failures >= MAX_FAILED_STARTS) {
          this.failedStarts.delete(id);
          this.store.sandboxes.update(id, { state: 'error', error: `failed to start again: ${message}` });
          this.lifecycle(id, 'failed', `did not start again ${failures} time(s) in a row: ${message}`);
          this.changed(id);
        } else this.lifecycle(id, 'start_failed', `attempt ${failures} of ${MAX_FAILED_STARTS}: ${message}`);
        throw err instanceof BerthError
          ? err
          : new BerthError(ErrorCode.UNAVAILABLE, `Sandbox ${id} failed to start again: ${message}`);
      }
      this.failedStarts.delete(id);
      this.remember(id, ep);
      this.store.sandboxes.update(id, { url: ep.url, container_id: ep.containerId });
    }
    this.store.sandboxes.update(id, { state: 'running', error: null, last_activity_at: new Date() });
    this.lifecycle(id, 'resumed', reason);
    return this.changed(id);
  }

  /** Stops the container: processes end, files and ~/.bashrc stay; resume starts it again. */
  stop(id: string, reason = 'requested'): Promise<SandboxRecord> {
    return this.settling(id, () => this.stopNow(id, reason));
  }

  private async stopNow(id: string, reason: string): Promise<SandboxRecord> {
    const rec = this.get(id);
    if (rec.state === 'stopped') return rec;
    this.requireState(rec, ['running', 'paused']);
    this.forget(id);
    if (rec.state === 'paused') await this.runtime.resume(id);
    await this.runtime.stop(id);
    this.store.sandboxes.update(id, { state: 'stopped' });
    this.lifecycle(id, 'stopped', reason);
    return this.changed(id);
  }

  /**
   * Ends every process of the sandbox user (a fork bomb, a runaway tree) and starts a fresh shell, so
   * the sandbox is usable again without a restart. Works while an action is stuck: the runtime
   * server answers it outside its action queue.
   */
  async reset(id: string, reason = 'requested'): Promise<SandboxRecord> {
    const rec = this.get(id);
    this.requireState(rec, ['running']);
    const r = await this.proxy(id, (c) =>
      c.json<{ killed: number; left: number }>('POST', '/berth/reset', {}, RESET_TIMEOUT_MS),
    );
    this.lifecycle(
      id,
      'reset',
      `${reason}: ended ${r.killed} process${r.killed === 1 ? '' : 'es'}${r.left ? ` (${r.left} would not end)` : ''}; fresh shell`,
    );
    return this.changed(id);
  }

  /** Adds environment variables to the live shell and to ~/.bashrc (they survive stop and start). */
  async setEnv(id: string, env: Record<string, string>): Promise<SandboxRecord> {
    const rec = this.get(id);
    this.requireState(rec, ['running']);
    await this.addEnvVars(rec, env);
    this.lifecycle(id, 'env_added', Object.keys(env).join(', '));
    return this.changed(id);
  }

  /** The container's own output (its runtime server's log): the last `tail` lines, then live with `follow`. */
  async logs(id: string, opts: { tail: number; follow: boolean }): Promise<Readable> {
    const rec = this.get(id);
    if (!rec.container_id)
      throw new BerthError(ErrorCode.CONFLICT, `Sandbox ${id} has no container (it is ${rec.state})`);
    return this.runtime.logs(id, opts);
  }

  /**
   * The sandbox's resource use now: CPU and memory from the engine against the sandbox's limits, disk
   * from its runtime server (the filesystem its processes see). Only for a running sandbox.
   */
  async resources(id: string): Promise<ResourceUse & { diskUsed: number; diskTotal: number }> {
    this.requireState(this.get(id), ['running']);
    if (!this.runtime.resources)
      throw new BerthError(ErrorCode.UNAVAILABLE, 'This backend does not report resource use');
    const [engine, info] = await Promise.all([
      this.runtime.resources(id),
      this.proxy(id, (client) => client.serverInfo()).catch(() => undefined),
    ]);
    const disk = ((info as { resources?: { disk?: { used?: number; total?: number } } } | undefined)
      ?.resources?.disk ?? {}) as { used?: number; total?: number };
    return { ...engine, diskUsed: disk.used ?? 0, diskTotal: disk.total ?? 0 };
  }

  extendTimeout(id: string, seconds: number): SandboxRecord {
    this.get(id);
    this.store.sandboxes.update(id, { expires_at: new Date(Date.now() + seconds * 1000) });
    this.reaper.lifetimesChanged();
    this.lifecycle(id, 'timeout_extended', `expires in ${seconds} s`);
    return this.changed(id);
  }

  // ---- actions and proxying ------------------------------------------------------------------

  /** The runtime server client of a running sandbox. */
  client(id: string): RuntimeServerClient {
    const rec = this.get(id);
    this.requireState(rec, ['running']);
    let c = this.clients.get(id);
    if (!c) {
      c = new RuntimeServerClient(rec.url, rec.session_api_key);
      this.clients.set(id, c);
    }
    return c;
  }

  /** Runs an action; the action and its observation are both stored before this returns. */
  async executeAction(id: string, body: unknown): Promise<Observation> {
    await this.startIfExited(id, 'started again for an action');
    const client = this.client(id);
    const action = (body as { action?: { timeout?: number } } | undefined)?.action;
    const timeoutSeconds =
      typeof action?.timeout === 'number' ? action.timeout : this.settings.actionTimeoutSeconds;
    this.appendEvent(id, 'action', body, null);
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
    const started = performance.now();
    try {
      const obs = await client.executeAction(body, (timeoutSeconds + PROXY_GRACE_SECONDS) * 1000);
      this.appendEvent(id, 'observation', obs, performance.now() - started);
      return obs;
    } catch (err) {
      const e = err as BerthError;
      this.appendEvent(
        id,
        'observation',
        { error: { code: e.code ?? ErrorCode.INTERNAL, message: e.message } },
        performance.now() - started,
      );
      await this.afterProxyFailure(id, err);
      throw err;
    } finally {
      // No separate touch: appending the action and the observation already marks activity.
      this.inFlight.set(id, (this.inFlight.get(id) ?? 1) - 1);
    }
  }

  /**
   * The sandbox's record, after starting its container again if it exited (killed, OOM, its server
   * died): what every request that needs the runtime server does first.
   */
  async startIfExited(id: string, reason: string): Promise<SandboxRecord> {
    if (this.get(id).state === 'exited') await this.resume(id, reason);
    return this.get(id);
  }

  /** Marks activity for a sandbox (file transfers, terminal input). */
  touch(id: string): void {
    this.store.sandboxes.touch(id);
  }

  /**
   * Runs a call through a sandbox's runtime server client (files, stats). A call that a delete, a stop
   * or a vanished container cut off answers as a call after it would (404 or 409), not 503.
   */
  async proxy<T>(id: string, call: (client: RuntimeServerClient) => Promise<T>): Promise<T> {
    const client = this.client(id);
    try {
      return await call(client);
    } catch (err) {
      await this.afterProxyFailure(id, err);
      throw err;
    }
  }

  /**
   * After a proxied call failed to reach the runtime server: waits for a delete or stop under way to
   * settle, then throws what a call made now would get (404 when deleted or vanished, 409 when
   * stopped or paused); returns when the sandbox is still running, so the caller rethrows the cause.
   */
  private async afterProxyFailure(id: string, err: unknown): Promise<void> {
    const code = (err as { code?: unknown } | undefined)?.code;
    if (code !== ErrorCode.UNAVAILABLE && code !== ErrorCode.TIMEOUT) return;
    await this.ending.get(id);
    if (this.get(id).state === 'running') await this.checkAlive(id);
    this.requireState(this.get(id), ['running']);
  }

  /** Whether a delete or stop of the sandbox has been asked for and is not done yet. */
  isEnding(id: string): boolean {
    return this.ending.has(id);
  }

  /** Runs a delete or stop, noted so that proxied calls it cuts off can wait for it (afterProxyFailure). */
  private async settling<T>(id: string, work: () => Promise<T>): Promise<T> {
    const done = this.own(id, work);
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.ending.set(id, settled);
    try {
      return await done;
    } finally {
      if (this.ending.get(id) === settled) this.ending.delete(id);
    }
  }

  /** After a failed proxy call: is the container still there? Records what happened if not. */
  private async checkAlive(id: string): Promise<void> {
    const state = await this.runtime.state(id).catch(() => 'missing' as const);
    if (state === 'running') return;
    const next: SandboxState =
      state === 'missing'
        ? 'vanished'
        : state === 'paused'
          ? 'paused'
          : state === 'exited' || state === 'dead'
            ? 'exited'
            : 'error';
    this.store.sandboxes.update(id, { state: next, error: `container is ${state}` });
    this.lifecycle(id, next, `container is ${state}`);
    this.changed(id);
  }

  // ---- background work -----------------------------------------------------------------------

  /**
   * Follows the engine's reports of container state changes, so a pause, unpause, kill, OOM, exit or
   * removal done outside Berth shows in the sandbox's state (and its event log, with the reason)
   * within moments instead of when the next action hangs. Stopped by dispose().
   */
  followEngine(): void {
    if (this.unwatch || !this.runtime.watch) return;
    this.unwatch = this.runtime.watch((change) => {
      try {
        this.onEngineChange(change);
      } catch (err) {
        this.logger.warn({ err, id: change.id }, 'engine event not applied');
      }
    });
  }

  private onEngineChange(change: SandboxChange): void {
    const { id, action } = change;
    if (action === 'resync') {
      this.resyncStates().catch((err) =>
        this.logger.warn({ err }, 'state resync after the engine came back failed'),
      );
      return;
    }
    if (action === 'oom') {
      this.oomKilled.add(id);
      return;
    }
    // Berth's own pause, stop, delete or start records its outcome itself.
    if (this.ownOps.has(id)) return;
    const rec = this.store.sandboxes.find(id);
    if (!rec || rec.state === 'deleted') return;
    if (rec.pool_image !== null) {
      // A warm sandbox that is no longer usable is dropped; the pool refills.
      if (action === 'die' || action === 'destroy' || action === 'pause') {
        const what = action === 'die' ? 'exited' : action === 'destroy' ? 'removed' : 'paused';
        this.delete(id, { reason: `pooled container ${what} outside Berth` }).catch((err) =>
          this.logger.warn({ err, id }, 'could not drop a broken warm sandbox'),
        );
      }
      return;
    }
    const set = (state: SandboxState, event: string, reason: string, error: string | null = null) => {
      this.store.sandboxes.update(id, { state, error });
      this.lifecycle(id, event, reason);
      this.changed(id);
    };
    switch (action) {
      case 'pause':
        if (rec.state === 'running') set('paused', 'paused', 'paused outside Berth (docker pause)');
        break;
      case 'unpause':
        if (rec.state === 'paused') set('running', 'resumed', 'unpaused outside Berth (docker unpause)');
        break;
      case 'die': {
        if (rec.state !== 'running' && rec.state !== 'paused' && rec.state !== 'starting') break;
        const oom = this.oomKilled.delete(id);
        const code = change.exitCode;
        const why = oom
          ? `killed for using more memory than its limit (exit code ${code ?? '?'})`
          : code === undefined
            ? 'found stopped after the engine restarted (or while its events were missed)'
            : code === 137
              ? 'killed (exit code 137: SIGKILL, by docker kill or of its runtime server)'
              : `its main process ended with exit code ${code ?? '?'} (the runtime server stopped)`;
        this.forget(id);
        set('exited', 'exited', `container exited: ${why}; resume or the next action starts it again`, why);
        break;
      }
      case 'start':
        if (rec.state === 'exited' || rec.state === 'stopped') {
          // Started outside Berth: find its server again.
          void this.runtime
            .attach(id)
            .then(async (ep) => {
              // Running once its server answers again.
              await waitUntilAlive({
                url: ep.url,
                timeoutMs: this.settings.startTimeoutMs,
                check: async () => {},
              });
              this.remember(id, ep);
              this.store.sandboxes.update(id, { url: ep.url, container_id: ep.containerId });
              set(
                'running',
                'resumed',
                'container started again (its restart policy after a crash, or docker start)',
              );
            })
            .catch((err) => this.logger.warn({ err, id }, 'could not attach to a container started again'));
        }
        break;
      case 'destroy':
        if (rec.state !== 'vanished')
          set('vanished', 'vanished', 'container removed outside Berth', 'container no longer exists');
        break;
    }
  }

  /**
   * After the engine's event stream was lost (dockerd restarted, say): compares every live record
   * with its container and applies what the missed events would have said.
   */
  private async resyncStates(): Promise<void> {
    for (const rec of this.store.sandboxes.list({ state: ['running', 'paused', 'exited'], pooled: false })) {
      if (this.ownOps.has(rec.id)) continue;
      const actual = await this.runtime.state(rec.id).catch(() => undefined);
      if (actual === undefined) continue;
      const seen = (action: SandboxChange['action'], exitCode?: number) =>
        this.onEngineChange({
          id: rec.id,
          action,
          at: new Date(),
          ...(exitCode === undefined ? {} : { exitCode }),
        });
      if (actual === 'missing') seen('destroy');
      else if (actual === 'paused') seen('pause');
      else if (actual === 'running' && rec.state === 'paused') seen('unpause');
      else if (actual === 'running' && rec.state === 'exited') seen('start');
      else if ((actual === 'exited' || actual === 'dead') && rec.state !== 'exited') seen('die');
    }
  }

  /** Marks a lifecycle operation of Berth's own as under way, so engine events it causes are not news. */
  private async own<T>(id: string, work: () => Promise<T>): Promise<T> {
    this.ownOps.set(id, (this.ownOps.get(id) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.ownOps.get(id) ?? 1) - 1;
      if (left > 0) this.ownOps.set(id, left);
      else this.ownOps.delete(id);
    }
  }

  /** Brings records in line with the engine after a restart of the control plane. */
  async reconcile(): Promise<void> {
    this.answerInterruptedActions();
    for (const rec of this.store.sandboxes.list({ state: [...STATES_WITH_CONTAINER] })) {
      const state = await this.runtime.state(rec.id).catch(() => 'missing' as const);
      try {
        if (state === 'running') {
          const ep = await this.runtime.attach(rec.id);
          this.remember(rec.id, ep);
          if (rec.state !== 'running' || rec.url !== ep.url) {
            this.store.sandboxes.update(rec.id, {
              state: 'running',
              url: ep.url,
              container_id: ep.containerId,
            });
            this.lifecycle(rec.id, 'reattached', 'control plane restarted');
          }
        } else if (state === 'paused') {
          if (rec.state !== 'paused') this.store.sandboxes.update(rec.id, { state: 'paused' });
        } else if (state === 'exited' || state === 'created') {
          if (rec.pool_image) await this.delete(rec.id, { reason: 'stale pool member' });
          else if (rec.state !== 'stopped') {
            this.store.sandboxes.update(rec.id, { state: 'stopped' });
            this.lifecycle(rec.id, 'stopped', 'container found stopped after a restart');
          }
        } else {
          this.store.sandboxes.update(rec.id, { state: 'vanished', error: 'container no longer exists' });
          this.lifecycle(rec.id, 'vanished', 'container no longer exists');
        }
      } catch (err) {
        this.logger.warn({ err, id: rec.id }, 'reconcile failed');
      }
    }
  }

  /**
   * After a crash (or a restart mid-action), every action still without an observation gets one, so
   * each event log is a sequence of complete pairs: an INTERRUPTED error, since the outcome is unknown.
   */
  private answerInterruptedActions(): void {
    for (const { sandboxId, count, lastAt } of this.store.events.unanswered()) {
      for (let i = 0; i < count; i++) {
        this.appendEvent(
          sandboxId,
          'observation',
          {
            error: {
              code: ErrorCode.INTERRUPTED,
              message: `The control plane stopped while this action was in flight (after ${lastAt.toISOString()}, the last event recorded before it stopped); its outcome is unknown.`,
            },
          },
          null,
        );
      }
      this.logger.warn({ id: sandboxId, count }, 'recorded interrupted actions');
    }
  }

  /** One pass of the reaper (see reaper.ts). */
  reap(): Promise<void> {
    return this.reaper.pass();
  }

  /** Keeps `poolSize` started sandboxes for the default image (see pool.ts). */
  refill(image?: string): Promise<void> {
    return this.pool.refill(image);
  }

  poolSize(): number {
    return this.pool.size();
  }

  async dispose(): Promise<void> {
    this.reaper.stop();
    this.pool.dispose();
    this.unwatch?.();
    this.unwatch = undefined;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  // ---- helpers -------------------------------------------------------------------------------

  /**
   * The reference's add_env_vars, done by the runtime server (POST /berth/env): for every later
   * process, exported into the live shell, and recorded so they survive a stop and start.
   */
  private async addEnvVars(rec: SandboxRecord, env: Record<string, string>): Promise<void> {
    // Nothing to add (an empty `env`): no request.
    if (Object.keys(env).length === 0) return;
    // The sandbox's own kept-alive client, the one actions go through.
    await this.client(rec.id).setEnv(env);
  }

  /** Drops what was kept of a container that is gone or stopped: its client and its app ports. */
  private forget(id: string): void {
    this.clients.get(id)?.close();
    this.clients.delete(id);
    this.appPorts.delete(id);
  }

  private remember(id: string, ep: SandboxEndpoint): void {
    this.appPorts.set(id, ep.ports.app);
    this.clients.get(id)?.close();
    this.clients.set(id, new RuntimeServerClient(ep.url, ep.sessionApiKey));
  }

  private requireState(rec: SandboxRecord, states: SandboxState[]): void {
    if (!states.includes(rec.state)) {
      throw new BerthError(
        rec.state === 'deleted' || rec.state === 'vanished' ? ErrorCode.NOT_FOUND : ErrorCode.CONFLICT,
        `Sandbox ${rec.id} is ${rec.state}${rec.error ? ` (${rec.error})` : ''}; this needs it ${states.join(' or ')}`,
      );
    }
  }

  private appendEvent(
    id: string,
    kind: SandboxEvent['kind'],
    payload: unknown,
    durationMs: number | null,
  ): void {
    const e = this.store.events.append({ sandbox_id: id, kind, payload, duration_ms: durationMs });
    this.emit('event', e);
  }

  private lifecycle(id: string, event: string, reason: string): void {
    this.appendEvent(id, 'lifecycle', { event, reason }, null);
  }

  private changed(id: string): SandboxRecord {
    const rec = this.store.sandboxes.get(id);
    if (rec.pool_image === null) this.emit('sandbox', toApiSandbox(rec));
    return rec;
  }
}

/** A lifetime of 0 means no limit. */
function expiry(lifetimeSeconds: number): Date | null {
  return lifetimeSeconds > 0 ? new Date(Date.now() + lifetimeSeconds * 1000) : null;
}

/** An idle limit of 0 means never idle-reaped. */
function idleLimit(seconds: number): number | null {
  return seconds > 0 ? seconds : null;
}

export function newSandboxId(): string {
  return randomBytes(6).toString('hex');
}
