/**
 * The one parser of Berth's mount syntax, host:container[:ro|rw], used by the configuration
 * (SANDBOX_VOLUMES) and by the manager (the configured mounts and a request's `volumes`). The API
 * schema's VOLUME_SPEC (limits.ts) is only the pattern the OpenAPI document shows; this is the check.
 */
import { BerthError, ErrorCode } from './errors.js';

export interface VolumeMount {
  /** Host path (bind mount) or volume name (named volume). */
  source: string;
  /** Path inside the sandbox. */
  target: string;
  readOnly: boolean;
  kind: 'bind' | 'volume';
}

/**
 * host:container[:ro|rw]: a bind mount when host is a path (starts with / or .), else a named volume,
 * which the configuration may also write volume:<name>:container[:mode].
 */
export function parseVolume(spec: string): VolumeMount {
  const parts = spec.split(':');
  // volume:<name>:/path[:mode]; "volume:/path" stays a volume named "volume".
  if (parts[0] === 'volume' && parts.length >= 3 && parts[2]?.startsWith('/')) parts.shift();
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid volume "${spec}": expected host:container[:ro|rw]`,
    );
  }
  const mode = parts[2] ?? 'rw';
  if (mode !== 'ro' && mode !== 'rw') {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid volume mode "${mode}" in "${spec}": use ro or rw`,
    );
  }
  if (!parts[1].startsWith('/')) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid volume "${spec}": the container path must be absolute`,
    );
  }
  return {
    source: parts[0],
    target: parts[1],
    readOnly: mode === 'ro',
    kind: parts[0].startsWith('/') || parts[0].startsWith('.') ? 'bind' : 'volume',
  };
}

/** Whether `spec` is a valid mount (for schemas that only accept or refuse). */
export function isVolumeSpec(spec: string): boolean {
  try {
    parseVolume(spec);
    return true;
  } catch {
    return false;
  }
}
