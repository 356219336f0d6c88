/**
 * The operator's policy over what an API caller may ask for in a create request: which networks,
 * which host directories (as the workspace or as volumes), named volumes, and the largest limits.
 * What the operator configured (the default network, WORKSPACE_BASE, SANDBOX_VOLUMES, the default
 * limits) is not checked here: the operator chose it. A request outside the policy is refused with
 * 403 and a code naming the rule, before anything is created.
 */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, normalize, sep } from 'node:path';
import type { CreateSandboxBody } from '../protocol/api.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { RESERVED_LABEL_PREFIX } from '../protocol/limits.js';
import type { MountSpec } from './types.js';

export interface SandboxPolicy {
  /** Network choices a request may name (besides the configured default). */
  networks: readonly string[];
  /** Host directories under which requests may mount (besides workspaceBase). */
  mountRoots: readonly string[];
  namedVolumes: boolean;
  maxCpus: number;
  maxMemoryMb: number;
  maxPids: number;
  /** Largest limits.disk_mb a request may ask for; undefined: any. */
  maxDiskMb?: number | undefined;
  /** OCI runtimes a request may name (besides the configured one). */
  ociRuntimes: readonly string[];
  /** The configured OCI runtime (SANDBOX_OCI_RUNTIME): always allowed. */
  defaultOciRuntime?: string | undefined;
  /** WORKSPACE_BASE as this process sees it: allowed, with its subdirectories. */
  workspaceBase?: string | undefined;
  /** The configured network (BERTH_SANDBOX_NETWORK): always allowed. */
  defaultNetwork: string;
  /**
   * Whether host paths in requests are paths this process can see. False when Berth runs in a
   * container and requests name paths on the Docker host: then paths are checked as written.
   */
  hostPathsVisible: boolean;
}

export function checkCreateRequest(
  body: CreateSandboxBody,
  volumes: readonly MountSpec[],
  policy: SandboxPolicy,
): void {
  for (const key of Object.keys(body.labels ?? {})) {
    if (key.startsWith(RESERVED_LABEL_PREFIX)) {
      throw new BerthError(
        ErrorCode.VALIDATION_FAILED,
        `Label "${key}" is reserved: keys starting with "${RESERVED_LABEL_PREFIX}" are Berth's own`,
      );
    }
  }
  if (
    body.network !== undefined &&
    body.network !== policy.defaultNetwork &&
    !policy.networks.includes(body.network)
  ) {
    throw new BerthError(
      ErrorCode.NETWORK_NOT_ALLOWED,
      `Network "${body.network}" is not allowed by the operator's policy (policy.networks / BERTH_ALLOWED_NETWORKS: ${[...new Set([policy.defaultNetwork, ...policy.networks])].join(', ')})`,
      { rule: 'policy.networks', network: body.network },
    );
  }
  if (
    body.oci_runtime !== undefined &&
    body.oci_runtime !== policy.defaultOciRuntime &&
    !policy.ociRuntimes.includes(body.oci_runtime)
  ) {
    const allowed = [policy.defaultOciRuntime, ...policy.ociRuntimes].filter((r) => r !== undefined);
    throw new BerthError(
      ErrorCode.RUNTIME_NOT_ALLOWED,
      `OCI runtime "${body.oci_runtime}" is not allowed by the operator's policy (policy.oci_runtimes / BERTH_ALLOWED_OCI_RUNTIMES: ${allowed.join(', ') || 'none'})`,
      { rule: 'policy.oci_runtimes', oci_runtime: body.oci_runtime },
    );
  }
  const limits = body.limits ?? {};
  for (const [name, value, max, rule] of [
    ['cpus', limits.cpus, policy.maxCpus, 'policy.max_cpus'],
    ['memory_mb', limits.memory_mb, policy.maxMemoryMb, 'policy.max_memory_mb'],
    ['pids', limits.pids, policy.maxPids, 'policy.max_pids'],
    ['disk_mb', limits.disk_mb, policy.maxDiskMb ?? Number.POSITIVE_INFINITY, 'policy.max_disk_mb'],
  ] as const) {
    if (value !== undefined && value > max) {
      throw new BerthError(
        ErrorCode.LIMIT_NOT_ALLOWED,
        `limits.${name} = ${value} is above the operator's maximum of ${max} (${rule})`,
        { rule, limit: name, max },
      );
    }
  }
  if (body.workspace !== undefined) checkHostDirectory('workspace', body.workspace, policy);
  for (const m of volumes) {
    if (m.kind === 'volume') {
      if (!policy.namedVolumes) {
        throw new BerthError(
          ErrorCode.MOUNT_NOT_ALLOWED,
          `Named volume "${m.source}" is not allowed by the operator's policy (policy.named_volumes / BERTH_ALLOW_NAMED_VOLUMES)`,
          { rule: 'policy.named_volumes', volume: m.source },
        );
      }
    } else checkHostDirectory('volume', m.source, policy);
  }
}

/**
 * A host path a request wants mounted: absolute, under an allowed root (after resolving symbolic
 * links), and existing. The root is checked first, so a caller learns nothing about what exists
 * outside the allowed directories. A workspace must be a directory; a volume may also be a file.
 */
function checkHostDirectory(what: 'workspace' | 'volume', path: string, policy: SandboxPolicy): void {
  if (!isAbsolute(path) || normalize(path).replace(/(.)\/+$/, '$1') !== path.replace(/(.)\/+$/, '$1')) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid ${what} "${path}": expected an absolute host path without "." or ".." segments`,
    );
  }
  const roots = [...(policy.workspaceBase ? [policy.workspaceBase] : []), ...policy.mountRoots];
  const real = policy.hostPathsVisible ? realOrSelf(path) : path;
  const inside = roots.some((root) => isWithin(real, policy.hostPathsVisible ? realOrSelf(root) : root));
  if (!inside) {
    throw new BerthError(
      ErrorCode.MOUNT_NOT_ALLOWED,
      roots.length === 0
        ? `Mounting host directories is not allowed by the operator's policy: set WORKSPACE_BASE or policy.mount_roots (BERTH_ALLOWED_MOUNT_ROOTS) to allow ${what}s under them`
        : `The ${what} "${path}" is outside the directories the operator allows (${roots.join(', ')}; policy.mount_roots / BERTH_ALLOWED_MOUNT_ROOTS)`,
      { rule: 'policy.mount_roots', path },
    );
  }
  if (!policy.hostPathsVisible) return;
  // Docker would create a missing directory itself, owned by root: refuse instead.
  let kind: 'directory' | 'file' | 'missing' = 'missing';
  try {
    const st = statSync(real);
    kind = st.isDirectory() ? 'directory' : 'file';
  } catch {
    kind = 'missing';
  }
  if (kind === 'missing' || (what === 'workspace' && kind !== 'directory')) {
    throw new BerthError(
      ErrorCode.NOT_FOUND,
      `The ${what} "${path}" is not an existing ${what === 'workspace' ? 'directory' : 'file or directory'} on the host`,
      { path },
    );
  }
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function isWithin(path: string, root: string): boolean {
  const r = root.endsWith(sep) && root !== sep ? root.slice(0, -1) : root;
  return path === r || path.startsWith(r === sep ? sep : `${r}${sep}`);
}
