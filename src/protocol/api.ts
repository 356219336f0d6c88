/**
 * The control plane's REST and WebSocket contract (port 3000). One source for the server's route
 * schemas, the generated OpenAPI document, the SDK's types and the web UI's types.
 */
import * as z from 'zod';
import {
  ENGINE_NAME,
  ENV_NAME,
  HOST_PATH,
  IMAGE_REFERENCE,
  LABEL_KEY,
  LIMIT_BOUNDS,
  MAX_ENV_VALUE_LENGTH,
  MAX_LABEL_VALUE_LENGTH,
  MAX_PATH_LENGTH,
  MAX_SANDBOX_SECONDS,
  MAX_VOLUMES,
  NO_NUL,
  VOLUME_SPEC,
} from './limits.js';
import { PLUGINS_ENV, RUNTIME_PLUGINS } from './plugins.js';

export const SandboxState = z
  .enum([
    'starting',
    'running',
    'paused',
    'stopped',
    /** The container exited or was killed outside Berth's stop; resume (or the next action) starts it again. */
    'exited',
    'error',
    'vanished',
    'deleted',
  ])
  .meta({ id: 'SandboxState' });
export type SandboxState = z.infer<typeof SandboxState>;
/** States in which a sandbox has its container (running or not): what reconciliation and the reaper keep. */
export const STATES_WITH_CONTAINER = [
  'starting',
  'running',
  'paused',
  'stopped',
  'exited',
] as const satisfies readonly SandboxState[];

export const NetworkChoice = z
  .string()
  .regex(ENGINE_NAME)
  .describe(
    '"isolated" (default: Berth bridge, no traffic between sandboxes), "internal" (no egress), "host", or the name of an existing Docker network',
  );

const { cpus, memoryMb, pids, diskMb } = LIMIT_BOUNDS;
export const Limits = z
  .strictObject({
    cpus: z.number().min(cpus.min).max(cpus.max).optional().describe('CPU cores, fractional allowed'),
    memory_mb: z
      .number()
      .int()
      .min(memoryMb.min)
      .max(memoryMb.max)
      .optional()
      .describe('memory limit in MiB'),
    pids: z.number().int().min(pids.min).max(pids.max).optional().describe('maximum number of processes'),
    disk_mb: z
      .number()
      .int()
      .min(diskMb.min)
      .max(diskMb.max)
      .optional()
      .describe(
        "size of the container's writable layer in MiB, where the engine's storage driver can limit it (overlay2 on xfs with pquota, btrfs, zfs); elsewhere not enforced",
      ),
  })
  .meta({ id: 'Limits' });
export type Limits = z.infer<typeof Limits>;

/** Environment variables for a sandbox: POSIX names, values without NUL. */
export const EnvVars = z.record(
  z.string().regex(ENV_NAME).max(256),
  z.string().max(MAX_ENV_VALUE_LENGTH).regex(NO_NUL),
);

/** A POSIX user name, as useradd takes it. */
export const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export const SandboxUser = z
  .strictObject({
    name: z
      .string()
      .regex(USER_NAME)
      .optional()
      .describe('account name (default: SANDBOX_USER_NAME, "openhands"; "root" with uid 0)'),
    uid: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 2)
      .optional()
      .describe('uid; 0 runs the agent as root'),
    gid: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 2)
      .optional()
      .describe('gid (default: the uid)'),
  })
  .refine((u) => (u.name === 'root') === (u.uid === 0) || u.name === undefined || u.uid === undefined, {
    message: 'the name "root" goes with uid 0 only, and uid 0 with the name "root" only',
  })
  .meta({ id: 'SandboxUser' });
export type SandboxUser = z.infer<typeof SandboxUser>;

/** The reference's runtime plugins (src/protocol/plugins.ts). */
export const Plugin = z.enum(RUNTIME_PLUGINS);
export type Plugin = z.infer<typeof Plugin>;
export { PLUGINS_ENV };

export const CreateSandboxBody = z
  .strictObject({
    image: z
      .string()
      .regex(IMAGE_REFERENCE)
      .max(255)
      .optional()
      .describe('runtime image (a local image reference); default: the configured runtime image'),
    workspace: z
      .string()
      .regex(HOST_PATH)
      .max(MAX_PATH_LENGTH)
      .optional()
      .describe(
        'existing host directory mounted at /workspace; must be WORKSPACE_BASE or under a root the operator allows (default: WORKSPACE_BASE, if set; none otherwise)',
      ),
    volumes: z
      .array(z.string().regex(VOLUME_SPEC).max(MAX_PATH_LENGTH))
      .max(MAX_VOLUMES)
      .optional()
      .describe(
        'extra mounts, host:container[:ro|rw] (host directories under a root the operator allows) or volume:container',
      ),
    env: EnvVars.optional(),
    limits: Limits.optional(),
    network: NetworkChoice.optional(),
    timeout_seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional()
      .describe('lifetime; extendable'),
    idle_timeout_seconds: z
      .number()
      .int()
      .min(1)
      .max(MAX_SANDBOX_SECONDS)
      .optional()
      .describe('reaped after this long without activity'),
    labels: z
      .record(z.string().regex(LABEL_KEY), z.string().max(MAX_LABEL_VALUE_LENGTH).regex(NO_NUL))
      .optional()
      .describe('keys starting with "berth." are reserved'),
    keep_alive: z.boolean().optional().describe('leave the container when the sandbox is deleted'),
    user: SandboxUser.optional().describe(
      'who the agent runs as; default: SANDBOX_USER_ID / the workspace owner (see the configuration), named SANDBOX_USER_NAME',
    ),
    working_dir: z
      .string()
      .regex(HOST_PATH)
      .max(MAX_PATH_LENGTH)
      .optional()
      .describe("the shell's first working directory, where the workspace is mounted; default /workspace"),
    plugins: z
      .array(Plugin)
      .max(8)
      .optional()
      .describe('what the sandbox offers beside the shell and files (default: jupyter and agent_skills)'),
    oci_runtime: z
      .string()
      .regex(ENGINE_NAME)
      .max(255)
      .optional()
      .describe(
        'OCI runtime for the container (e.g. runsc); must be one the operator allows (policy.oci_runtimes)',
      ),
  })
  .meta({ id: 'CreateSandboxRequest' });
export type CreateSandboxBody = z.infer<typeof CreateSandboxBody>;

export const Sandbox = z
  .object({
    id: z.string(),
    state: SandboxState,
    image: z.string(),
    workspace: z.string().nullable(),
    url: z.string().describe("the runtime server's base URL, reachable from the control plane's host"),
    session_api_key: z.string(),
    container_id: z.string().nullable(),
    labels: z.record(z.string(), z.string()),
    created_at: z.string(),
    last_activity_at: z.string(),
    expires_at: z.string().nullable(),
    from_pool: z.boolean(),
    error: z.string().nullable(),
  })
  .meta({ id: 'Sandbox' });
export type Sandbox = z.infer<typeof Sandbox>;

export const SandboxList = z.object({ sandboxes: z.array(Sandbox) }).meta({ id: 'SandboxList' });

export const ListSandboxesQuery = z.object({
  state: SandboxState.optional(),
  label: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .describe('key=value; repeat for several'),
});

export const SetEnvBody = z.strictObject({ env: EnvVars });

export const ExtendTimeoutBody = z.strictObject({
  timeout_seconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600),
});

export const EventKind = z.enum(['action', 'observation', 'lifecycle']);
export const SandboxEvent = z
  .object({
    seq: z.number().int(),
    sandbox_id: z.string(),
    kind: EventKind,
    at: z.string(),
    /** For actions and observations, the OpenHands JSON; for lifecycle events, {event, reason}. */
    payload: z.unknown(),
    /** Milliseconds the action took (on observations). */
    duration_ms: z.number().nullable(),
    /**
     * Present only when the payload was larger than the event log keeps (events.max_payload_bytes):
     * its long strings are cut, each ending in a marker, and this says what the whole was.
     */
    truncated: z
      .object({
        bytes: z.number().int().describe("the whole payload's size: UTF-8 bytes of its JSON text"),
        sha256: z.string().describe('sha256 (hex) of that JSON text'),
        fields: z.array(z.string()).describe('the cut strings, as dotted paths (action.args.content)'),
      })
      .optional()
      .describe('set when the payload is stored cut to the per-event cap (events.max_payload_bytes)'),
  })
  .meta({ id: 'SandboxEvent' });
export type SandboxEvent = z.infer<typeof SandboxEvent>;

export const EventsQuery = z.object({
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});
export const EventPage = z
  .object({ events: z.array(SandboxEvent), next_after: z.number().int() })
  .meta({ id: 'EventPage' });

/** Messages on the terminal WebSocket (/api/sandboxes/{id}/terminal). JSON text frames. */
export const TerminalClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('input'), data: z.string() }),
  z.object({
    type: z.literal('resize'),
    cols: z.number().int().min(2).max(1000),
    rows: z.number().int().min(2).max(500),
  }),
]);
export type TerminalClientMessage = z.infer<typeof TerminalClientMessage>;
export type TerminalServerMessage =
  | { type: 'output'; data: string }
  | { type: 'exit'; code: number }
  | { type: 'error'; code: string; message: string };

/**
 * Messages on the exec WebSocket (/api/sandboxes/{id}/exec, relayed to the runtime server's /berth/exec):
 * one fresh process per socket, like `docker exec`. JSON text frames; output is base64, so bytes pass
 * unchanged. The first client frame is `start`; closing the socket before `exit` ends the process.
 */
export const EXEC_SIGNALS = [
  'SIGINT',
  'SIGTERM',
  'SIGKILL',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
  'SIGWINCH',
] as const;
export const ExecStart = z.strictObject({
  type: z.literal('start'),
  /** The program and its arguments, exactly (no shell, no re-joining). */
  argv: z.array(z.string().max(MAX_ENV_VALUE_LENGTH).regex(NO_NUL)).min(1).max(4096),
  /** Working directory; default: the sandbox's working directory (never the agent shell's cwd). */
  cwd: z.string().max(MAX_PATH_LENGTH).regex(NO_NUL).optional(),
  env: EnvVars.optional(),
  /** Run as this user (a name or uid); default: the sandbox user. Another user goes through sudo. */
  user: z
    .string()
    .regex(/^([a-z_][a-z0-9_-]{0,31}|\d{1,10})$/)
    .optional(),
  /** A PTY of this size instead of pipes (stdout and stderr are then one stream, `pty`). */
  pty: z
    .strictObject({ cols: z.number().int().min(2).max(1000), rows: z.number().int().min(2).max(500) })
    .optional(),
  /** Keep stdin open for `input` frames (else it is /dev/null). A PTY always has input. */
  stdin: z.boolean().optional(),
  /** Ends the process (SIGTERM, SIGKILL after a grace) after this long; `exit` then says timed_out. */
  timeout_ms: z
    .number()
    .int()
    .min(1)
    // At most what a Node.js timer holds (about 24.8 days): beyond it a timer fires at once.
    .max(2 ** 31 - 1)
    .optional(),
});
export const ExecClientMessage = z.discriminatedUnion('type', [
  ExecStart,
  z.strictObject({ type: z.literal('input'), data: z.string().describe('base64') }),
  z.strictObject({ type: z.literal('close_stdin') }),
  /** One signal to the process group, as is. */
  z.strictObject({ type: z.literal('signal'), signal: z.enum(EXEC_SIGNALS) }),
  /** The kill path: `signal` (default SIGTERM) to the group, SIGKILL after the grace if still there. */
  z.strictObject({ type: z.literal('kill'), signal: z.enum(EXEC_SIGNALS).optional() }),
  z.strictObject({
    type: z.literal('resize'),
    cols: z.number().int().min(2).max(1000),
    rows: z.number().int().min(2).max(500),
  }),
]);
export type ExecStart = z.infer<typeof ExecStart>;
export type ExecClientMessage = z.infer<typeof ExecClientMessage>;
export type ExecServerMessage =
  | { type: 'started'; id: string; pid: number }
  | { type: 'stdout' | 'stderr' | 'pty'; data: string }
  | { type: 'exit'; exit_code: number; signal: string | null; timed_out: boolean }
  | { type: 'error'; code: string; message: string };

export const Health = z.object({
  status: z.enum(['ok', 'degraded']),
  docker: z.enum(['ok', 'unavailable']),
  version: z.string(),
});
