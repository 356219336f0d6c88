/**
 * Settings of the Docker layer that come from the environment. Read once here, so nothing under
 * src/docker touches process.env.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The base image `berth image bootstrap` creates and runtime images build on by default. */
export const DEFAULT_BASE_IMAGE = 'berth-base:bookworm';

export interface DockerConfig {
  /**
   * Docker Engine address: `unix:///path/to/docker.sock` or `tcp://host:port`.
   * @default the DOCKER_HOST environment variable, else unix:///var/run/docker.sock
   */
  dockerHost: string | undefined;
  /**
   * Where downloaded build inputs (the pinned Node binary) are kept between builds.
   * @default BERTH_CACHE_DIR, else $XDG_CACHE_HOME/berth, else ~/.cache/berth
   */
  cacheDir: string;
  /**
   * Base image of runtime images when none is named.
   * @default SANDBOX_BASE_CONTAINER_IMAGE (the name OpenHands and src/config/control-plane.ts use), else berth-base:bookworm
   */
  baseImage: string;
}

export function loadDockerConfig(env: NodeJS.ProcessEnv = process.env): DockerConfig {
  const cacheRoot = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return Object.freeze({
    dockerHost: env.DOCKER_HOST || undefined,
    cacheDir: env.BERTH_CACHE_DIR || join(cacheRoot, 'berth'),
    baseImage: env.SANDBOX_BASE_CONTAINER_IMAGE || DEFAULT_BASE_IMAGE,
  });
}
