import type { Readable } from 'node:stream';
import type { VolumeMount } from '../protocol/volumes.js';
/**
 * The sandbox lifecycle contract that the control plane and the CLI use. The Docker backend
 * (src/docker/sandbox-runtime.ts over src/docker/) implements it; a Kubernetes or Swarm backend
 * would implement the same interface beside it.
 */

/** One mount of a sandbox, as parseVolume (protocol/volumes.ts) reads it. */
export type MountSpec = VolumeMount;

export type NetworkSpec =
  | { mode: 'isolated' } // Berth's bridge network, inter-container traffic disabled
  | { mode: 'internal' } // no egress at all
  | { mode: 'host' }
  | { mode: 'named'; name: string };

export interface SandboxSpec {
  /** Berth's id for the sandbox; names its container `berth-sandbox-<id>`. */
  id: string;
  image: string;
  /** Host path of the workspace (as the Docker daemon's host sees it), mounted at workspaceMountPathInSandbox. */
  workspaceHostPath?: string | undefined;
  workspaceMountPathInSandbox: string;
  mounts: MountSpec[];
  /** uid of the sandbox user (0: the agent runs as root). */
  userId: number;
  /** gid of the sandbox user. @default userId */
  groupId?: number | undefined;
  /** Name for the sandbox user's account, when the image has none with its uid. @default "openhands" */
  userName?: string | undefined;
  /** Host address every published port binds to. */
  bindingAddress: string;
  network: NetworkSpec;
  /** Environment for the sandbox (startup env and SANDBOX_ENV_* already merged by the caller). */
  env: Record<string, string>;
  limits: {
    cpus?: number | undefined;
    memoryMb?: number | undefined;
    pids?: number | undefined;
    /** Size of the container's writable layer in MiB, where the storage driver can limit it (disk-limit.ts). */
    diskMb?: number | undefined;
  };
  ociRuntime?: string | undefined;
  gpu?: { enabled: boolean; deviceIds?: string[] | undefined } | undefined;
  labels: Record<string, string>;
  startTimeoutMs: number;
  /** Session key for the runtime server; random per sandbox. */
  sessionApiKey: string;
}

export interface SandboxEndpoint {
  id: string;
  containerId: string;
  /** Base URL of the runtime server, reachable from this process. */
  url: string;
  sessionApiKey: string;
  /** Host ports (0 when not published, e.g. host networking). */
  ports: { runtime: number; app: number[] };
}

export type ContainerState = 'running' | 'paused' | 'exited' | 'created' | 'restarting' | 'dead' | 'missing';

/** A change of a sandbox container's state that the engine reported. */
export interface SandboxChange {
  id: string;
  /** `resync`: the engine's stream was lost for a while (events missed); re-read this sandbox's state. */
  action: 'pause' | 'unpause' | 'die' | 'oom' | 'destroy' | 'start' | 'resync';
  /** For `die`. */
  exitCode?: number;
  at: Date;
}

export interface SandboxRuntime {
  /** Creates and starts the container and waits until the runtime server answers /alive. */
  start(spec: SandboxSpec, onProgress?: (message: string) => void): Promise<SandboxEndpoint>;
  /** Finds the running sandbox with this id again (after a restart of this process). */
  attach(id: string): Promise<SandboxEndpoint>;
  state(id: string): Promise<ContainerState>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** Stops the container (processes end; env vars survive through ~/.bashrc). */
  stop(id: string): Promise<void>;
  /** Starts a stopped container again and waits until it answers. */
  restart(id: string, startTimeoutMs: number): Promise<SandboxEndpoint>;
  /** Removes the container (and nothing else Berth did not make for it). */
  remove(id: string): Promise<void>;
  /** Ids of every sandbox container Berth labelled, with their states. */
  list(): Promise<Array<{ id: string; state: ContainerState; labels: Record<string, string> }>>;
  /**
   * Refuses (400) an image a request names that cannot run a sandbox: one without Berth's runtime
   * server and entrypoint. Not found: 404.
   */
  checkRuntimeImage?(image: string): Promise<void>;
  /**
   * The container's own output (the runtime server's log), as text: the last `tail` lines, then with
   * `follow` new lines until the container stops or the stream is destroyed.
   */
  logs(id: string, opts: { tail: number; follow: boolean }): Promise<Readable>;
  /** Removes labelled containers whose id is not in `keep`; returns the ids removed. */
  reap(keep: Set<string>): Promise<string[]>;
  /** The engine's current figures of the sandbox's CPU and memory use, against its limits. */
  resources?(id: string): Promise<ResourceUse>;
  /**
   * Follows the engine's reports of this runtime's containers changing state (pause, unpause, exit,
   * OOM, removal, start), whoever caused them; returns the function that stops following.
   */
  watch?(onChange: (change: SandboxChange) => void): () => void;
}

export interface ResourceUse {
  /** Percent of `cpuCount` CPUs in use. */
  cpuUsedPct: number;
  cpuCount: number;
  memUsed: number;
  memTotal: number;
  memCache: number;
}

/** A local image as the image routes describe it. */
export interface ImageInfo {
  id: string;
  /** ISO 8601 */
  created: string;
  sizeBytes: number;
  /** Carries Berth's runtime server and entrypoint (a sandbox can run on it as is). */
  runtime: boolean;
}

/** The images sandboxes run on: looked up, made from any glibc image, and named. */
export interface RuntimeImages {
  /** The local image by that name, or undefined when there is none (nothing is pulled). */
  describe(ref: string): Promise<ImageInfo | undefined>;
  /**
   * An image that runs a sandbox made from `ref`: `ref` itself when it is a runtime image, else Berth's
   * runtime layer built onto it (cached by content hash, so the second time costs nothing).
   * @throws BerthError NOT_FOUND when `ref` is not a local image; VALIDATION_FAILED when it cannot carry the layer.
   */
  runtimeImageFor(ref: string, onProgress?: (message: string) => void): Promise<string>;
  /** Gives `source` the extra name `target`. */
  tag(source: string, target: string): Promise<void>;
}
