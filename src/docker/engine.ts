/**
 * The Docker Engine client: a small facade over dockerode, in the style of testcontainers-node's
 * container-runtime clients. This folder is the only code that imports dockerode; everything else talks
 * to the `DockerEngine` interface, so another backend can stand beside it.
 *
 * dockerode puts create options (environment included) into URL query strings: never log request
 * options or dockerode errors' request details.
 */
import { createRequire } from 'node:module';
import Dockerode from 'dockerode';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import {
  type ContainerClient,
  DockerContainerClient,
  DockerNetworkClient,
  type NetworkClient,
} from './containers.js';
import { type ContainerEvent, type EventSubscription, followContainerEvents } from './events.js';
import { DockerImageClient, type ImageClient } from './images.js';

/** Used when DOCKER_HOST is unset, like the docker CLI. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** How long a ping may take before the engine counts as unreachable: it answers in milliseconds when up. */
export const PING_TIMEOUT_MS = 5_000;

export interface EngineOptions {
  /**
   * Engine address: `unix:///path/docker.sock`, `tcp://host:port` or `http://host:port`.
   * @default unix:///var/run/docker.sock (src/config/docker.ts fills it from DOCKER_HOST)
   */
  dockerHost?: string | undefined;
}

export interface EngineVersion {
  version: string;
  apiVersion: string;
  os: string;
  /** Docker's architecture name of the engine host: `amd64`, `arm64`, ... */
  arch: string;
}

/** The engine's storage driver, from `docker info`: what decides whether a disk limit can be set. */
export interface EngineStorage {
  /** `overlay2`, `btrfs`, `zfs`, `devicemapper`, `vfs`, `fuse-overlayfs`, ... */
  driver: string;
  /** DriverStatus "Backing Filesystem" (`xfs`, `extfs`, `btrfs`, ...), when the driver reports one. */
  backingFilesystem?: string | undefined;
}

export interface DockerEngine {
  /** The address this client talks to, for messages: `unix:///var/run/docker.sock`. */
  readonly endpoint: string;
  readonly images: ImageClient;
  readonly containers: ContainerClient;
  readonly networks: NetworkClient;
  /** Resolves when the engine answers; otherwise throws one UNAVAILABLE error that says what to do. */
  ping(): Promise<void>;
  version(): Promise<EngineVersion>;
}

interface Endpoint {
  display: string;
  options: Dockerode.DockerOptions;
}

/** Turns a DOCKER_HOST value into dockerode options. Every field is set so dockerode's own env reading is overridden. */
export function parseDockerHost(dockerHost: string | undefined): Endpoint {
  const value = dockerHost?.trim() || `unix://${DEFAULT_DOCKER_SOCKET}`;
  const unset = { host: undefined, port: undefined, protocol: undefined } as const;
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET;
    return { display: `unix://${socketPath}`, options: { ...unset, socketPath } };
  }
  if (value.startsWith('/')) {
    return { display: `unix://${value}`, options: { ...unset, socketPath: value } };
  }
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `tcp://${value}`);
  } catch {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `DOCKER_HOST=${value} is not an engine address; use unix:///var/run/docker.sock or tcp://host:2375`,
    );
  }
  if (!['tcp:', 'http:', 'https:'].includes(url.protocol) || !url.hostname) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `DOCKER_HOST=${value} is not supported; use unix:///path/to/docker.sock or tcp://host:port`,
    );
  }
  const protocol = url.protocol === 'https:' ? 'https' : 'http';
  const port = url.port || (protocol === 'https' ? '2376' : '2375');
  return {
    display: `${url.protocol}//${url.hostname}:${port}`,
    options: { socketPath: undefined, host: url.hostname, port, protocol },
  };
}

/**
 * The Engine API never redirects a well-formed request; it answers 301 only to a path it had to
 * clean (`..` segments). docker-modem follows such a redirect on a new request that has no error
 * listener, which took the whole process down; with no redirects allowed, it is an ordinary error.
 */
const fromDockerode = createRequire(createRequire(import.meta.url).resolve('dockerode'));
(fromDockerode('docker-modem/lib/http.js') as { maxRedirects: number }).maxRedirects = 0;

/** Creates a client for the engine at `dockerHost`. Connects lazily: call `ping()` to check it is there. */
export function connectEngine(options: EngineOptions = {}): DockerodeEngine {
  const endpoint = parseDockerHost(options.dockerHost);
  return new DockerodeEngine(new Dockerode(endpoint.options), endpoint.display);
}

/** The dockerode-backed engine. Other modules in src/docker may use `docker`; nothing outside may. */
export class DockerodeEngine implements DockerEngine {
  readonly images: DockerImageClient;
  readonly containers: DockerContainerClient;
  readonly networks: DockerNetworkClient;

  constructor(
    readonly docker: Dockerode,
    readonly endpoint: string,
  ) {
    const toError = (err: unknown, what: string) => this.toError(err, what);
    this.images = new DockerImageClient(docker, toError);
    this.containers = new DockerContainerClient(docker, toError);
    this.networks = new DockerNetworkClient(docker, toError);
  }

  /** Follows container events of containers with these labels; see followContainerEvents. */
  followContainerEvents(
    labels: Record<string, string>,
    onEvent: (e: ContainerEvent) => void,
    onError?: (err: unknown) => void,
    onFollowing?: (again: boolean) => void,
  ): EventSubscription {
    return followContainerEvents(this.docker, labels, onEvent, onError, onFollowing);
  }

  async ping(): Promise<void> {
    const signal = AbortSignal.timeout(PING_TIMEOUT_MS);
    try {
      // dockerode accepts an abort signal here; its type declarations do not say so.
      const docker = this.docker as unknown as { ping(opts: { abortSignal: AbortSignal }): Promise<unknown> };
      await docker.ping({ abortSignal: signal });
    } catch (err) {
      if (signal.aborted) throw this.unavailable(`no answer within ${PING_TIMEOUT_MS} ms`);
      throw this.toError(err, 'ping');
    }
  }

  async version(): Promise<EngineVersion> {
    try {
      const v = await this.docker.version();
      return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
    } catch (err) {
      throw this.toError(err, 'version');
    }
  }

  async storage(): Promise<EngineStorage> {
    try {
      const info = (await this.docker.info()) as { Driver?: string; DriverStatus?: Array<[string, string]> };
      const backing = (info.DriverStatus ?? []).find(([k]) => k === 'Backing Filesystem')?.[1];
      return { driver: info.Driver ?? '', backingFilesystem: backing };
    } catch (err) {
      throw this.toError(err, 'info');
    }
  }

  /** Maps a dockerode failure to a BerthError; an unreachable engine always becomes the same UNAVAILABLE error. */
  toError(err: unknown, what: string): BerthError {
    if (err instanceof BerthError) return err;
    const e = err as { code?: string; statusCode?: number; message?: string; json?: { message?: string } };
    if (e?.code && UNREACHABLE_CODES.has(e.code)) {
      return this.unavailable(e.code === 'EACCES' ? 'permission denied on the socket' : e.code);
    }
    const message = engineMessage(err);
    const taken = takenHostPorts(message);
    if (taken) {
      // Not Berth's fault nor the request's: a host port the container publishes is in use by another
      // process or container. Retryable once it is free, so 503, naming the port.
      return new BerthError(
        ErrorCode.UNAVAILABLE,
        `${what}: ${taken.length ? `host port ${taken.join(', ')}` : 'a host port'} is in use by another process or container: ${message}`,
        { ports: taken },
      );
    }
    switch (e?.statusCode) {
      case 404:
        return new BerthError(ErrorCode.NOT_FOUND, `${what}: ${message}`);
      case 409:
        return new BerthError(ErrorCode.CONFLICT, `${what}: ${message}`);
      case 400:
        return new BerthError(ErrorCode.VALIDATION_FAILED, `${what}: ${message}`);
      default:
        return new BerthError(ErrorCode.INTERNAL, `${what}: ${message}`);
    }
  }

  private unavailable(reason: string): BerthError {
    const access =
      reason === 'permission denied on the socket'
        ? ' Run Berth as a user in the "docker" group (sudo usermod -aG docker $USER, then log in again).'
        : ' Start it with `sudo systemctl start docker` (or `sudo dockerd &` where there is no systemd).';
    return new BerthError(
      ErrorCode.UNAVAILABLE,
      `Docker engine not reachable at ${this.endpoint} (${reason}).${access} ` +
        'Berth honours DOCKER_HOST (e.g. DOCKER_HOST=unix:///run/user/1000/docker.sock for rootless Docker).',
      { endpoint: this.endpoint },
    );
  }
}

const UNREACHABLE_CODES = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ETIMEDOUT',
]);

/** The engine's own message from a dockerode error, without the request details dockerode adds. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: unknown; message?: string } | undefined;
  const json = e?.json;
  if (json && typeof json === 'object' && 'message' in json && typeof json.message === 'string') {
    return json.message;
  }
  if (typeof json === 'string' && json.trim()) return json.trim();
  if (Buffer.isBuffer(json) && json.length) return json.toString('utf8').trim();
  const message = e?.message ?? String(err);
  // dockerode prefixes "(HTTP code N) unexpected - "; keep the engine's words.
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/**
 * The host ports an engine error says are taken ("Bind for 127.0.0.1:31000 failed: port is already
 * allocated", "... listen tcp4 127.0.0.1:31000: bind: address already in use"), or undefined when the
 * error is not about a taken port. An empty list: taken, but the message names no port.
 */
export function takenHostPorts(message: string): number[] | undefined {
  if (!/port is already allocated|address already in use/i.test(message)) return undefined;
  const ports = [...message.matchAll(/:(\d{2,5})\b/g)].map((m) => Number(m[1]));
  return [...new Set(ports)].filter((p) => p >= 1 && p <= 65535);
}
