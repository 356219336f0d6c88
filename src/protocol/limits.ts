/**
 * Bounds and name rules for what clients send, shared by the request schemas (and so the OpenAPI
 * document), the configuration and the Docker layer. Each follows the rule the engine or the OS
 * applies, so a value that passes here is never refused (or misread) further down.
 */

/** Docker's rule for container, network and volume names. */
export const ENGINE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/**
 * An image reference: [registry[:port]/]path[:tag][@algo:digest], or an image id (sha256:<hex>).
 * Path components are lowercase; no empty, `.` or `..` component can appear.
 */
export const IMAGE_REFERENCE =
  /^(?:(?:[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9][A-Za-z0-9-]*)*(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?|sha256:[0-9a-f]{64})$/;

/** Environment variable names, as POSIX shells accept them. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Label keys: Docker's recommendation (letters, digits, `.`, `-`, `_`, `/`), at most 128 characters. */
export const LABEL_KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$/;

/** Label keys under this prefix are Berth's own (ownership, ports): clients may not set them. */
export const RESERVED_LABEL_PREFIX = 'berth.';

/** Text Docker and the kernel carry: no NUL. */
export const NO_NUL = /^[^\u0000]*$/;

/**
 * An absolute host path Docker can bind-mount: no NUL, and no `:` (Docker's bind syntax separates
 * host path, container path and mode with it).
 */
export const HOST_PATH = /^\/[^\u0000:]*$/;

/** host-path-or-volume:container-path[:ro|rw]. */
export const VOLUME_SPEC = /^[^\u0000:]+:\/[^\u0000:]*(?::(?:ro|rw))?$/;

export const MAX_PATH_LENGTH = 4096;
export const MAX_ENV_VALUE_LENGTH = 32 * 1024;
export const MAX_LABEL_VALUE_LENGTH = 1024;
export const MAX_VOLUMES = 32;

/**
 * Per-sandbox limit bounds: below these the runtime server (Node, ~80 MiB resident) cannot start in
 * time; above, no machine has them.
 */
export const LIMIT_BOUNDS = {
  cpus: { min: 0.1, max: 1024 },
  memoryMb: { min: 128, max: 4 * 1024 * 1024 },
  pids: { min: 64, max: 4 * 1024 * 1024 },
  diskMb: { min: 64, max: 64 * 1024 * 1024 },
} as const;

/** Longest lifetime or idle limit a sandbox can be given: 30 days. */
export const MAX_SANDBOX_SECONDS = 30 * 24 * 3600;

/**
 * Longest hard timeout of one action: 24 days, just under the 2^31 ms that Node's timers hold (a
 * longer delay fires at once instead).
 */
export const MAX_ACTION_TIMEOUT_SECONDS = 2_073_600;
