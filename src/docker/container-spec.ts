/**
 * Translates a SandboxSpec into Docker create options: the hardened defaults live here.
 */
import type Dockerode from 'dockerode';
import type { SandboxSpec } from '../sandboxes/types.js';
import { seccompSecurityOpt } from './seccomp.js';

export const SANDBOX_LABELS = {
  managed: 'berth.managed',
  kind: 'berth.kind',
  id: 'berth.sandbox.id',
  /** Which Berth instance (data directory) made it: reapers only touch their own. */
  owner: 'berth.owner',
  runtimePort: 'berth.sandbox.runtime-port',
  appPorts: 'berth.sandbox.app-ports',
  reachVia: 'berth.sandbox.reach-via',
  /** "<uid>": the workspace is bind-mounted through an idmapped view holding only this uid. */
  workspaceIdmap: 'berth.sandbox.workspace-idmap',
  /** The workspace's host path (for remaking its idmapped view before a restart). */
  workspace: 'berth.sandbox.workspace',
} as const;

/** Network names Berth creates for the built-in modes. */
export const ISOLATED_NETWORK = 'berth-isolated';
export const INTERNAL_NETWORK = 'berth-internal';

/**
 * Capabilities a sandbox keeps: what sudo, su, chown and a shell need. Docker's defaults minus
 * NET_RAW (raw sockets, ARP spoofing on the bridge), MKNOD (device nodes) and SETFCAP (file
 * capabilities: a `setcap`ed file in the workspace would give its capabilities to whoever runs it on the
 * host; package scripts that try setcap fall back to other means).
 */
export const SANDBOX_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'AUDIT_WRITE',
];

/** Restarts of a sandbox whose runtime server keeps dying before the engine gives up on it. */
export const SERVER_RESTARTS = 5;

export function containerName(id: string): string {
  return `berth-sandbox-${id}`;
}

export function networkName(spec: SandboxSpec): string {
  switch (spec.network.mode) {
    case 'isolated':
      return ISOLATED_NETWORK;
    case 'internal':
      return INTERNAL_NETWORK;
    case 'host':
      return 'host';
    case 'named':
      return spec.network.name;
  }
}

export interface PortPlan {
  runtime: number;
  app: number[];
}

/**
 * `workspaceView`: an idmapped view of the workspace (see idmapped-mounts.ts) to bind in its place. It
 * is bound as a Mount, which Docker refuses when the source is missing, never silently made empty.
 */
export function containerCreateOptions(
  spec: SandboxSpec,
  ports: PortPlan,
  workspaceView?: string,
): Dockerode.ContainerCreateOptions {
  const hostNetwork = spec.network.mode === 'host';
  const env: Record<string, string> = {
    ...spec.env,
    SESSION_API_KEY: spec.sessionApiKey,
    SANDBOX_USER_ID: String(spec.userId),
    SANDBOX_GROUP_ID: String(spec.groupId ?? spec.userId),
    ...(spec.userName ? { SANDBOX_USER_NAME: spec.userName } : {}),
    WORKSPACE_MOUNT_PATH_IN_SANDBOX: spec.workspaceMountPathInSandbox,
    port: String(ports.runtime),
    PYTHONUNBUFFERED: '1',
    // The container is a PID namespace of its own: a reset may end every process of the sandbox user.
    BERTH_OWN_PID_NAMESPACE: '1',
    PIP_BREAK_SYSTEM_PACKAGES: '1',
  };
  ports.app.forEach((p, i) => {
    env[`APP_PORT_${i + 1}`] = String(p);
  });

  const binds: string[] = [];
  const mounts: Dockerode.MountSettings[] = [];
  if (spec.workspaceHostPath && workspaceView) {
    mounts.push({
      Type: 'bind',
      Source: workspaceView,
      Target: spec.workspaceMountPathInSandbox,
      ReadOnly: false,
    });
  } else if (spec.workspaceHostPath) {
    binds.push(`${spec.workspaceHostPath}:${spec.workspaceMountPathInSandbox}:rw`);
  }
  for (const m of spec.mounts) {
    if (m.kind === 'bind') binds.push(`${m.source}:${m.target}:${m.readOnly ? 'ro' : 'rw'}`);
    else mounts.push({ Type: 'volume', Source: m.source, Target: m.target, ReadOnly: m.readOnly });
  }

  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of [ports.runtime, ...ports.app]) {
    exposed[`${p}/tcp`] = {};
    // Same number inside and out, as the reference does: services inside listen on the port the
    // outside sees, and nested runtimes work.
    if (!hostNetwork) bindings[`${p}/tcp`] = [{ HostIp: spec.bindingAddress, HostPort: String(p) }];
  }

  const labels: Record<string, string> = {
    ...spec.labels,
    [SANDBOX_LABELS.managed]: 'true',
    [SANDBOX_LABELS.kind]: 'sandbox',
    [SANDBOX_LABELS.id]: spec.id,
    [SANDBOX_LABELS.runtimePort]: String(ports.runtime),
    [SANDBOX_LABELS.appPorts]: ports.app.join(','),
  };
  if (spec.workspaceHostPath && workspaceView) {
    labels[SANDBOX_LABELS.workspace] = spec.workspaceHostPath;
    labels[SANDBOX_LABELS.workspaceIdmap] = String(spec.userId);
  }

  const hostConfig: Dockerode.HostConfig = {
    Init: true,
    Binds: binds,
    Mounts: mounts,
    PortBindings: bindings,
    NetworkMode: networkName(spec),
    CapDrop: ['ALL'],
    CapAdd: SANDBOX_CAPABILITIES,
    Privileged: false,
    // A runtime server that dies (a crash, an OOM kill of the server) is started again by the engine in
    // the same container, files and installed packages kept; a container Berth (or anyone) stopped or
    // killed on purpose is not. After this many failures in a row it stays down.
    RestartPolicy: { Name: 'on-failure', MaximumRetryCount: SERVER_RESTARTS },
    // Berth's own profile (seccomp.ts) in place of Docker's default.
    SecurityOpt: [seccompSecurityOpt()],
    ...(hostNetwork ? {} : { ExtraHosts: ['host.docker.internal:host-gateway'] }),
  };
  if (spec.limits.cpus) hostConfig.NanoCpus = Math.round(spec.limits.cpus * 1e9);
  if (spec.limits.memoryMb) {
    hostConfig.Memory = spec.limits.memoryMb * 1024 * 1024;
    hostConfig.MemorySwap = hostConfig.Memory; // no swap beyond the limit
  }
  if (spec.limits.pids) hostConfig.PidsLimit = spec.limits.pids;
  // Taken only by some storage drivers; the runtime leaves it out where the engine cannot (disk-limit.ts).
  if (spec.limits.diskMb) hostConfig.StorageOpt = { size: `${spec.limits.diskMb}M` };
  if (spec.ociRuntime) hostConfig.Runtime = spec.ociRuntime;
  if (spec.gpu?.enabled) {
    hostConfig.DeviceRequests = [
      spec.gpu.deviceIds?.length
        ? { Driver: '', DeviceIDs: spec.gpu.deviceIds, Capabilities: [['gpu']] }
        : { Driver: '', Count: -1, Capabilities: [['gpu']] },
    ];
  }

  return {
    name: containerName(spec.id),
    Image: spec.image,
    Cmd: ['--port', String(ports.runtime), '--working-dir', spec.workspaceMountPathInSandbox],
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: labels,
    ExposedPorts: exposed,
    HostConfig: hostConfig,
  };
}
