/**
 * The control plane's configuration: one zod schema, filled from a TOML file, environment variables
 * and command-line flags, parsed once and frozen.
 *
 * Precedence, lowest to highest: built-in defaults < config file < environment < flags. The config
 * file is the one named by --config, else BERTH_CONFIG, else $XDG_CONFIG_HOME/berth/config.toml
 * (~/.config/berth/config.toml); a missing default file is fine, a missing named one is an error.
 *
 * Every option lives in the schema below with its environment variable, documented default and
 * description; CONFIG_OPTIONS (for `berth config` and the README) is derived from it. Environment
 * names follow OpenHands where it has one (SANDBOX_*, WORKSPACE_*); Berth's own start with BERTH_.
 */

import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import * as z from 'zod';
import { booleanWord } from '../protocol/booleans.js';
import { BerthError, ErrorCode, fromSystemError } from '../protocol/errors.js';
import { ENV_NAME } from '../protocol/limits.js';
import { isVolumeSpec } from '../protocol/volumes.js';
import { DEFAULT_BASE_IMAGE } from './docker.js';

// ---------------------------------------------------------------------------------------------
// Option metadata

/** How a text value (environment, flag, or a TOML string) is turned into the schema's type. */
type Kind = 'string' | 'path' | 'integer' | 'number' | 'boolean' | 'list' | 'map';

interface DefaultContext {
  env: NodeJS.ProcessEnv;
  home: string;
  uid: number;
}

interface OptionDoc {
  kind: Kind;
  /** Environment variable that sets it. */
  env?: string;
  /** Dedicated command-line flag. Any option can also be passed in `flags` by its key. */
  flag?: string;
  /** Whether config.toml may set it. @default true */
  inFile?: boolean;
  /** Shown in place of the value in messages and listings. */
  secret?: boolean;
  /** The default as documented. */
  default: string;
  /** The default's value; null when neither this nor `compute` is given. */
  value?: unknown;
  /** The default, when it depends on the environment. */
  compute?: (ctx: DefaultContext) => unknown;
  /** Completes "expected ..." in error messages. */
  expected: string;
  description: string;
}

const META = new Map<z.ZodType, OptionDoc>();

function opt<T extends z.ZodType>(schema: T, doc: OptionDoc): T {
  META.set(schema, doc);
  return schema;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;
const IMAGE_REF = /^[^\s]+$/;
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const bool = () => z.boolean();
const text = (pattern: RegExp = /\S/) => z.string().regex(pattern);
const filePath = () => z.string().min(1);
const envMap = () => z.record(z.string().regex(ENV_NAME), z.string());

// ---------------------------------------------------------------------------------------------
// The schema

export const ControlPlaneConfigSchema = z.strictObject({
  config_file: opt(filePath().nullable(), {
    kind: 'path',
    env: 'BERTH_CONFIG',
    flag: '--config',
    inFile: false,
    default: '$XDG_CONFIG_HOME/berth/config.toml, else ~/.config/berth/config.toml',
    expected: 'a file path',
    description:
      'The TOML file read for settings. Null in the loaded config when the default file does not exist.',
  }),
  host: opt(
    z.string().refine((h) => isIP(h) !== 0 || HOST_NAME.test(h)),
    {
      kind: 'string',
      env: 'BERTH_HOST',
      flag: '--host',
      default: '127.0.0.1',
      value: '127.0.0.1',
      expected: 'a host name or IP address',
      description: 'Address the control plane listens on. A non-loopback address requires api_keys.',
    },
  ),
  port: opt(int(0, 65535), {
    kind: 'integer',
    env: 'BERTH_PORT',
    flag: '--port',
    default: '3000',
    value: 3000,
    expected: 'a port number from 0 to 65535',
    description: 'Port the control plane (API, web UI) listens on; 0 picks a free one.',
  }),
  data_dir: opt(filePath(), {
    kind: 'path',
    env: 'BERTH_DATA_DIR',
    flag: '--data-dir',
    default: '$XDG_DATA_HOME/berth, else ~/.local/share/berth',
    compute: ({ env, home }) => path.join(env.XDG_DATA_HOME || path.join(home, '.local', 'share'), 'berth'),
    expected: 'a directory path',
    description: 'Where the control plane keeps its database.',
  }),
  api_keys: opt(z.array(text(/^[^\s,]+$/)), {
    kind: 'list',
    env: 'BERTH_API_KEY',
    flag: '--api-key',
    secret: true,
    default: 'none',
    value: [],
    expected: 'a list of API keys without spaces (comma-separated in BERTH_API_KEY)',
    description: 'API keys clients must present to the control plane. Comma-separated in the variable.',
  }),
  log_level: opt(z.enum(LOG_LEVELS), {
    kind: 'string',
    env: 'BERTH_LOG_LEVEL',
    flag: '--log-level',
    default: 'info',
    value: 'info',
    expected: `one of ${LOG_LEVELS.join(', ')}`,
    description: 'Log verbosity.',
  }),
  control_plane_container: opt(text(NETWORK_NAME).nullable(), {
    kind: 'string',
    env: 'BERTH_CONTROL_PLANE_CONTAINER',
    default: 'none',
    value: null,
    expected: 'a container name or id',
    description:
      "When Berth itself runs in a container: that container's name or id (the Berth image sets it to its hostname). Sandboxes are then reached over a private network shared with this container, not through host ports.",
  }),
  sandbox: z.strictObject({
    workspace_base: opt(filePath().nullable(), {
      kind: 'path',
      env: 'WORKSPACE_BASE',
      default: 'none',
      expected: 'a directory path',
      description:
        'Host directory mounted at workspace_mount_path_in_sandbox when a create request names none.',
    }),
    workspace_mount_path: opt(filePath().nullable(), {
      kind: 'path',
      env: 'WORKSPACE_MOUNT_PATH',
      default: 'workspace_base',
      expected: 'a directory path',
      description:
        "The workspace's path on the Docker host, when Berth itself runs in a container and sees it elsewhere.",
    }),
    workspace_mount_path_in_sandbox: opt(text(/^\//), {
      kind: 'string',
      env: 'WORKSPACE_MOUNT_PATH_IN_SANDBOX',
      default: '/workspace',
      value: '/workspace',
      expected: 'an absolute path',
      description: 'Where the workspace appears inside the sandbox; also its working directory.',
    }),
    user_id: opt(int(0).nullable(), {
      kind: 'integer',
      env: 'SANDBOX_USER_ID',
      default:
        "the uid running Berth; when that is root: the workspace directory's owner (1000 without a workspace)",
      compute: ({ uid }) => (uid === 0 ? null : uid),
      expected: 'a non-negative integer',
      description:
        "Uid (and gid) of the sandbox user, so files in the mounted workspace belong to the host user. 0 runs agents as root. Unset under a root Berth, each sandbox takes the uid and gid of its workspace's owner, and a root-owned workspace is refused.",
    }),
    user_name: opt(text(/^[a-z_][a-z0-9_-]{0,31}$/), {
      kind: 'string',
      env: 'SANDBOX_USER_NAME',
      default: 'openhands',
      value: 'openhands',
      expected: 'a user name: lower-case letters, digits, "_" and "-", at most 32, not starting with a digit',
      description:
        "Name of the sandbox user's account (as the reference names it, so `chown openhands` works). An image that already has an account with the uid keeps that account, with this name added for the same uid.",
    }),
    workspace_idmap: opt(z.enum(['auto', 'require', 'off']), {
      kind: 'string',
      env: 'BERTH_WORKSPACE_IDMAP',
      default: 'auto',
      value: 'auto',
      expected: 'one of auto, require, off',
      description:
        "Mount the workspace through an idmapped view holding only the sandbox user's uid, so root in a sandbox (sudo) can neither create files in it nor chown them to anyone else. Needs Berth running as root beside a local dockerd, runc, and a workspace directory the sandbox user owns (docs/security-workspace.md). auto: used where possible, with a warning where not; require: sandboxes with a workspace fail to start without it; off: never.",
    }),
    runtime_binding_address: opt(
      z.string().refine((a) => isIP(a) !== 0),
      {
        kind: 'string',
        env: 'SANDBOX_RUNTIME_BINDING_ADDRESS',
        default: '127.0.0.1',
        value: '127.0.0.1',
        expected: 'an IP address',
        description: "Host address the sandboxes' ports are published on.",
      },
    ),
    port_lock_dir: opt(filePath(), {
      kind: 'path',
      env: 'BERTH_PORT_LOCK_DIR',
      default:
        'root: /var/lib/berth/ports; others: $XDG_STATE_HOME/berth/ports, else ~/.local/state/berth/ports',
      // Host-wide, not per data_dir: a stopped sandbox binds no port, so only a lock every control plane
      // on this host sees keeps another one from publishing that port before the sandbox resumes.
      compute: ({ env, home, uid }) =>
        uid === 0
          ? '/var/lib/berth/ports'
          : path.join(env.XDG_STATE_HOME || path.join(home, '.local', 'state'), 'berth', 'ports'),
      expected: 'a directory path',
      description:
        "Where sandboxes' host ports are locked. Share it between every control plane and CLI on one host (the default does, per user), so a stopped sandbox's ports are not given to another while it is stopped.",
    }),
    runtime_container_image: opt(text(IMAGE_REF).nullable(), {
      kind: 'string',
      env: 'SANDBOX_RUNTIME_CONTAINER_IMAGE',
      default: 'none (built from base_container_image)',
      expected: 'an image reference',
      description: 'A ready runtime image to use as is, instead of building one.',
    }),
    base_container_image: opt(text(IMAGE_REF), {
      kind: 'string',
      env: 'SANDBOX_BASE_CONTAINER_IMAGE',
      default: DEFAULT_BASE_IMAGE,
      value: DEFAULT_BASE_IMAGE,
      expected: 'an image reference',
      description: 'Base image the runtime image is built on (any glibc image).',
    }),
    timeout: opt(int(1), {
      kind: 'integer',
      env: 'SANDBOX_TIMEOUT',
      default: '120',
      value: 120,
      expected: 'a positive integer (seconds)',
      description: 'Default hard timeout of one action, in seconds.',
    }),
    volumes: opt(z.array(z.string().refine(isVolumeSpec)), {
      kind: 'list',
      env: 'SANDBOX_VOLUMES',
      default: 'none',
      value: [],
      expected: 'comma-separated host:container[:ro|rw] mounts (host: absolute path or volume name)',
      description: 'Extra mounts for every sandbox.',
    }),
    keep_runtime_alive: opt(bool(), {
      kind: 'boolean',
      env: 'SANDBOX_KEEP_RUNTIME_ALIVE',
      default: 'false',
      value: false,
      expected: 'a boolean (true/false, 1/0, yes/no)',
      description: 'Leave containers in place when their sandboxes are deleted.',
    }),
    use_host_network: opt(bool(), {
      kind: 'boolean',
      env: 'SANDBOX_USE_HOST_NETWORK',
      default: 'false',
      value: false,
      expected: 'a boolean (true/false, 1/0, yes/no)',
      description: "Run sandboxes in the host's network namespace (no isolation, no port publishing).",
    }),
    network: opt(text(NETWORK_NAME), {
      kind: 'string',
      env: 'BERTH_SANDBOX_NETWORK',
      default: 'isolated',
      value: 'isolated',
      expected: '"isolated", "internal", "host" or a Docker network name',
      description:
        'isolated: Berth bridge, no traffic between sandboxes; internal: no egress; host; or an existing network.',
    }),
    cpus: opt(z.number().positive().max(1024), {
      kind: 'number',
      env: 'BERTH_SANDBOX_CPUS',
      default: '2',
      value: 2,
      expected: 'a positive number of CPUs, at most 1024',
      description: 'CPU limit per sandbox (fractions allowed).',
    }),
    memory_mb: opt(int(16), {
      kind: 'integer',
      env: 'BERTH_SANDBOX_MEMORY_MB',
      default: '4096',
      value: 4096,
      expected: 'an integer of at least 16 (MiB)',
      description: 'Memory limit per sandbox, in MiB.',
    }),
    pids: opt(int(16), {
      kind: 'integer',
      env: 'BERTH_SANDBOX_PIDS',
      default: '1024',
      value: 1024,
      expected: 'an integer of at least 16',
      description: 'Maximum number of processes per sandbox.',
    }),
    disk_mb: opt(
      int(0).refine((n) => n === 0 || n >= 64),
      {
        kind: 'integer',
        env: 'BERTH_SANDBOX_DISK_MB',
        default: '10240',
        value: 10240,
        expected: '0 (no limit) or an integer of at least 64 (MiB)',
        description:
          "Size of each sandbox container's writable layer, in MiB; 0: no limit. Enforced where Docker's storage driver can (overlay2 on xfs mounted with pquota, btrfs, zfs); elsewhere see sandbox.disk_limit.",
      },
    ),
    disk_limit: opt(z.enum(['auto', 'require']), {
      kind: 'string',
      env: 'BERTH_SANDBOX_DISK_LIMIT',
      default: 'auto',
      value: 'auto',
      expected: 'one of auto, require',
      description:
        'Where the storage driver cannot limit disk_mb (overlay2 on ext4): auto starts sandboxes without the limit, with one warning in the log; require refuses to start them.',
    }),
    oci_runtime: opt(text(IMAGE_REF).nullable(), {
      kind: 'string',
      env: 'SANDBOX_OCI_RUNTIME',
      default: "none (Docker's default)",
      expected: 'an OCI runtime name, e.g. runsc',
      description: 'OCI runtime for sandbox containers, e.g. runsc (gVisor) or sysbox-runc.',
    }),
    enable_gpu: opt(bool(), {
      kind: 'boolean',
      env: 'SANDBOX_ENABLE_GPU',
      default: 'false',
      value: false,
      expected: 'a boolean (true/false, 1/0, yes/no)',
      description: 'Give sandboxes all GPUs.',
    }),
    startup_timeout_seconds: opt(int(1), {
      kind: 'integer',
      env: 'BERTH_START_TIMEOUT_SECONDS',
      default: '60',
      value: 60,
      expected: 'a positive integer (seconds)',
      description: "How long a new sandbox's runtime server may take to answer before the start fails.",
    }),
    lifetime_seconds: opt(int(0, 7 * 24 * 3600), {
      kind: 'integer',
      env: 'BERTH_SANDBOX_LIFETIME_SECONDS',
      default: '3600',
      value: 3600,
      expected: 'an integer from 0 to 604800 (seconds)',
      description: 'Default lifetime of a sandbox when the create request gives none; 0: no limit.',
    }),
    idle_timeout_seconds: opt(int(0), {
      kind: 'integer',
      env: 'BERTH_SANDBOX_IDLE_SECONDS',
      default: '1800',
      value: 1800,
      expected: 'a non-negative integer (seconds)',
      description: 'Default time without actions after which a sandbox is reaped; 0: never.',
    }),
    pool_size: opt(int(0, 64), {
      kind: 'integer',
      env: 'BERTH_POOL_SIZE',
      default: '2',
      value: 2,
      expected: 'an integer from 0 to 64',
      description: 'Warm sandboxes kept ready per image; 0 disables the pool.',
    }),
    reaper_interval_seconds: opt(int(1), {
      kind: 'integer',
      env: 'BERTH_REAPER_INTERVAL_SECONDS',
      default: '30',
      value: 30,
      expected: 'a positive integer (seconds)',
      description: 'How often expired and idle sandboxes and orphaned containers are looked for.',
    }),
    runtime_startup_env_vars: opt(envMap(), {
      kind: 'map',
      secret: true,
      default: 'none',
      value: {},
      expected: 'a table of NAME = "value" strings',
      description:
        'Environment variables set in every sandbox (config file only; a [sandbox.runtime_startup_env_vars] table).',
    }),
    env: opt(envMap(), {
      kind: 'map',
      env: 'SANDBOX_ENV_<NAME>',
      inFile: false,
      secret: true,
      default: 'none',
      value: {},
      expected: 'variables named SANDBOX_ENV_<NAME> with NAME a valid variable name',
      description: 'Each SANDBOX_ENV_<NAME>=value variable sets NAME=value in every sandbox.',
    }),
  }),
  // What an API caller may ask for in a create request. The configuration's own choices (the default
  // network, WORKSPACE_BASE, SANDBOX_VOLUMES, the default limits) are the operator's and always apply.
  policy: z.strictObject({
    networks: opt(z.array(text(NETWORK_NAME)), {
      kind: 'list',
      env: 'BERTH_ALLOWED_NETWORKS',
      default: 'isolated,internal',
      value: ['isolated', 'internal'],
      expected: 'a list of network choices ("isolated", "internal", "host" or Docker network names)',
      description:
        'Networks a create request may choose. "host" reaches the control plane on loopback and a shared network reaches other sandboxes, so neither is allowed unless listed.',
    }),
    mount_roots: opt(z.array(text(/^\//)), {
      kind: 'list',
      env: 'BERTH_ALLOWED_MOUNT_ROOTS',
      default: 'none',
      value: [],
      expected: 'a list of absolute directory paths (comma-separated in the variable)',
      description:
        'Host directories under which a create request may mount a workspace or volume (besides workspace_base and its subdirectories). Symbolic links are resolved before the check.',
    }),
    named_volumes: opt(bool(), {
      kind: 'boolean',
      env: 'BERTH_ALLOW_NAMED_VOLUMES',
      default: 'false',
      value: false,
      expected: 'true or false',
      description:
        "Whether a create request may mount Docker named volumes (they may hold other sandboxes' data).",
    }),
    max_cpus: opt(z.number().positive().nullable(), {
      kind: 'number',
      env: 'BERTH_MAX_SANDBOX_CPUS',
      default: 'sandbox.cpus',
      value: null,
      expected: 'a positive number',
      description: 'Most CPUs a create request may ask for.',
    }),
    max_memory_mb: opt(int(1).nullable(), {
      kind: 'integer',
      env: 'BERTH_MAX_SANDBOX_MEMORY_MB',
      default: 'sandbox.memory_mb',
      value: null,
      expected: 'a positive integer (MiB)',
      description: 'Most memory a create request may ask for.',
    }),
    max_pids: opt(int(1).nullable(), {
      kind: 'integer',
      env: 'BERTH_MAX_SANDBOX_PIDS',
      default: 'sandbox.pids',
      value: null,
      expected: 'a positive integer',
      description: 'Most processes a create request may ask for.',
    }),
    max_disk_mb: opt(int(1).nullable(), {
      kind: 'integer',
      env: 'BERTH_MAX_SANDBOX_DISK_MB',
      default: 'sandbox.disk_mb (any when it is 0)',
      value: null,
      expected: 'a positive integer (MiB)',
      description: 'Largest limits.disk_mb a create request may ask for.',
    }),
    oci_runtimes: opt(z.array(text(IMAGE_REF)), {
      kind: 'list',
      env: 'BERTH_ALLOWED_OCI_RUNTIMES',
      default: 'none (only sandbox.oci_runtime)',
      value: [],
      expected: 'a list of OCI runtime names registered with dockerd, e.g. runsc,sysbox-runc',
      description:
        "OCI runtimes a create request may choose (OpenHands' runtime_class maps gvisor to runsc and sysbox to sysbox-runc).",
    }),
  }),
  // What the event log keeps (see the README, "Event log"): every action and observation, each cut
  // to a cap, for a while and up to a size.
  events: z.strictObject({
    max_payload_bytes: opt(z.union([z.literal(0), int(1024)]), {
      kind: 'integer',
      env: 'BERTH_EVENT_MAX_PAYLOAD_BYTES',
      default: '65536',
      value: 65536,
      expected: '0 or an integer of at least 1024 (bytes)',
      description:
        'Largest action or observation stored whole; a larger one is stored cut to this size (its long strings end in a marker) with its size and sha256. 0: no cap.',
    }),
    max_age_days: opt(z.number().min(0), {
      kind: 'number',
      env: 'BERTH_EVENT_MAX_AGE_DAYS',
      default: '30',
      value: 30,
      expected: 'a non-negative number (days)',
      description: 'Events older than this are removed (checked every reaper interval). 0: kept forever.',
    }),
    max_sandbox_mb: opt(int(0), {
      kind: 'integer',
      env: 'BERTH_EVENT_MAX_SANDBOX_MB',
      default: '256',
      value: 256,
      expected: 'a non-negative integer (MiB)',
      description:
        "Each sandbox's event payloads are kept to this size, its oldest events going first. 0: no limit.",
    }),
    max_total_mb: opt(int(0), {
      kind: 'integer',
      env: 'BERTH_EVENT_MAX_TOTAL_MB',
      default: '1024',
      value: 1024,
      expected: 'a non-negative integer (MiB)',
      description:
        'All event payloads together are kept to this size: the events of deleted sandboxes go first, then the oldest of any. 0: no limit.',
    }),
  }),
});

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

export type ControlPlaneConfig = DeepReadonly<z.infer<typeof ControlPlaneConfigSchema>>;
type SandboxSection = ControlPlaneConfig['sandbox'];
type PolicySection = ControlPlaneConfig['policy'];
type EventsSection = ControlPlaneConfig['events'];
/** An option's key: a top-level name, or <section>.<name>. */
export type ConfigKey =
  | Exclude<keyof ControlPlaneConfig, 'sandbox' | 'policy' | 'events'>
  | `sandbox.${keyof SandboxSection & string}`
  | `policy.${keyof PolicySection & string}`
  | `events.${keyof EventsSection & string}`;

/** One row of the option table: what `berth config` and the README list. */
export interface ConfigOption {
  key: ConfigKey;
  /** Environment variable, or null when only the file sets it. */
  env: string | null;
  flag: string | null;
  default: string;
  description: string;
  /** Settable in config.toml. */
  inFile: boolean;
  /** Its value is not to be shown. */
  secret: boolean;
}

interface OptionEntry extends ConfigOption {
  doc: OptionDoc;
}

function collectOptions(shape: Record<string, z.ZodType>, prefix: string, out: OptionEntry[]): OptionEntry[] {
  for (const [name, field] of Object.entries(shape)) {
    const doc = META.get(field);
    if (doc) {
      out.push({
        key: `${prefix}${name}` as ConfigKey,
        env: doc.env ?? null,
        flag: doc.flag ?? null,
        default: doc.default,
        description: doc.description,
        inFile: doc.inFile ?? true,
        secret: doc.secret ?? false,
        doc,
      });
    } else if (field instanceof z.ZodObject) {
      collectOptions(field.shape as Record<string, z.ZodType>, `${prefix}${name}.`, out);
    }
  }
  return out;
}

const ENTRIES: readonly OptionEntry[] = collectOptions(ControlPlaneConfigSchema.shape, '', []);
const BY_KEY = new Map(ENTRIES.map((e) => [e.key as string, e]));
const SECTIONS = new Set(ENTRIES.filter((e) => e.key.includes('.')).map((e) => e.key.split('.')[0]!));

/** Every option, in schema order. */
export const CONFIG_OPTIONS: readonly ConfigOption[] = Object.freeze(
  ENTRIES.map(({ doc: _doc, ...row }) => Object.freeze(row)),
);

function cell(value: string): string {
  return value.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** The option table as Markdown: key (and flag), environment variable, default, description. */
export function renderConfigTable(): string {
  const lines = ['| Key | Environment variable | Default | Description |', '|---|---|---|---|'];
  for (const o of CONFIG_OPTIONS) {
    const key = o.flag ? `\`${o.key}\` (\`${o.flag}\`)` : `\`${o.key}\``;
    const env = o.env ? `\`${o.env}\`` : '—';
    lines.push(`| ${key} | ${env} | ${cell(o.default)} | ${cell(o.description)} |`);
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Where a setting's value came from. */
export type ConfigSource =
  | { kind: 'default' }
  | { kind: 'file'; file: string }
  | { kind: 'environment'; name: string }
  | { kind: 'flag'; name: string };

/** Values given on the command line, by option key; text values are converted like environment ones. */
export type ControlPlaneFlags = {
  readonly [K in ConfigKey]?: string | number | boolean | readonly string[] | undefined;
};

export interface LoadControlPlaneConfigOptions {
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  flags?: ControlPlaneFlags;
  /** Base of relative paths given in the environment or flags. @default process.cwd() */
  cwd?: string;
}

export interface ResolvedControlPlaneConfig {
  config: ControlPlaneConfig;
  sources: Readonly<Record<ConfigKey, ConfigSource>>;
}

interface Setting {
  value: unknown;
  /** The value as given, for error messages. */
  raw: unknown;
  source: ConfigSource;
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Expands ~ and makes a path absolute against `base`. */
function resolvePath(value: string, base: string, home: string): string {
  if (value === '~') return home;
  if (value.startsWith('~/')) return path.join(home, value.slice(2));
  return path.resolve(base, value);
}

/**
 * Converts a value to the option's type where the conversion is unambiguous; anything else is left
 * as it is for the schema to reject with the option's message.
 */
function convert(doc: OptionDoc, value: unknown, base: string, home: string): unknown {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  switch (doc.kind) {
    case 'path':
      return trimmed === '' ? value : resolvePath(trimmed, base, home);
    case 'integer':
      return INTEGER_TEXT.test(trimmed) ? Number(trimmed) : value;
    case 'number':
      return NUMBER_TEXT.test(trimmed) ? Number(trimmed) : value;
    case 'boolean':
      return booleanWord(trimmed) ?? value;
    case 'list':
      return trimmed
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    default:
      return value;
  }
}

function describeValue(value: unknown): string {
  const shown = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

/** "SANDBOX_USER_ID (environment)", "sandbox.user_id in /x/config.toml", "--port (flag)". */
export function describeSource(key: string, source: ConfigSource): string {
  switch (source.kind) {
    case 'environment':
      return `${source.name} (environment)`;
    case 'flag':
      return `${source.name} (flag)`;
    case 'file':
      return `${key} in ${source.file}`;
    default:
      return `${key} (default)`;
  }
}

function invalid(message: string, details?: unknown): BerthError {
  return new BerthError(ErrorCode.VALIDATION_FAILED, message, details);
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Reads the TOML file into option settings; unknown keys are errors. Undefined when the file does not
 * exist and `namedBy` is undefined (the default location); a named file must exist.
 */
function readConfigFile(
  file: string,
  namedBy: string | undefined,
  home: string,
): Map<string, Setting> | undefined {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && namedBy === undefined) return undefined;
    if (code === 'ENOENT') {
      throw new BerthError(ErrorCode.NOT_FOUND, `Config file ${file} (named by ${namedBy}) does not exist`);
    }
    throw fromSystemError(err, `Config file ${file}`);
  }
  let table: Record<string, unknown>;
  try {
    table = parseToml(source) as Record<string, unknown>;
  } catch (err) {
    throw invalid(`Invalid TOML in ${file}: ${(err as Error).message}`);
  }
  const settings = new Map<string, Setting>();
  const base = path.dirname(file);
  const take = (key: string, value: unknown) => {
    const entry = BY_KEY.get(key);
    if (!entry) throw invalid(`Unknown key ${key} in ${file}`);
    if (!entry.inFile) {
      const where = entry.env ? `; set it with ${entry.env}` : '';
      throw invalid(`Key ${key} cannot be set in ${file}${where}`);
    }
    settings.set(key, {
      value: convert(entry.doc, value, base, home),
      raw: value,
      source: { kind: 'file', file },
    });
  };
  for (const [name, value] of Object.entries(table)) {
    if (SECTIONS.has(name)) {
      if (!isTable(value)) throw invalid(`Invalid ${name} in ${file}: expected a [${name}] table`);
      for (const [inner, v] of Object.entries(value)) take(`${name}.${inner}`, v);
    } else {
      take(name, value);
    }
  }
  return settings;
}

function defaultConfigFile(env: NodeJS.ProcessEnv, home: string): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'berth', 'config.toml');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for localhost, 127.0.0.0/8, ::1 (and IPv4-mapped 127.x). 0.0.0.0 and :: are not loopback. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost') return true;
  const family = isIP(name);
  if (family === 4) return LOOPBACK.check(name, 'ipv4');
  if (family === 6) return LOOPBACK.check(name, 'ipv6');
  return false;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function setIn(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

/** The configuration with the source of every value (for `berth config`). */
export function resolveControlPlaneConfig(
  options: LoadControlPlaneConfigOptions = {},
): ResolvedControlPlaneConfig {
  const env = options.env ?? process.env;
  const flags: Readonly<Record<string, unknown>> = options.flags ?? {};
  const cwd = options.cwd ?? process.cwd();
  const home = env.HOME || os.homedir();
  const uid = process.getuid?.() ?? 1000;
  const ctx: DefaultContext = { env, home, uid };

  for (const key of Object.keys(flags)) {
    if (!BY_KEY.has(key)) throw invalid(`Unknown option ${key} given as a flag`);
  }

  // Layer 1: defaults.
  const settings = new Map<string, Setting>();
  for (const e of ENTRIES) {
    const value = e.doc.compute ? e.doc.compute(ctx) : (e.doc.value ?? null);
    settings.set(e.key, { value, raw: value, source: { kind: 'default' } });
  }

  // Layers 3 and 4, read first because they can name the config file.
  const envSettings = new Map<string, Setting>();
  for (const e of ENTRIES) {
    const name = e.doc.env;
    if (!name || e.doc.kind === 'map') continue;
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    envSettings.set(e.key, {
      value: convert(e.doc, raw, cwd, home),
      raw,
      source: { kind: 'environment', name },
    });
  }
  const passthrough: Record<string, string> = {};
  let passthroughName: string | undefined;
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('SANDBOX_ENV_') || value === undefined) continue;
    const inner = name.slice('SANDBOX_ENV_'.length);
    if (!ENV_NAME.test(inner)) {
      throw invalid(`Invalid ${name} (environment): expected a variable name after SANDBOX_ENV_`);
    }
    passthrough[inner] = value;
    passthroughName ??= name;
  }
  if (passthroughName) {
    envSettings.set('sandbox.env', {
      value: passthrough,
      raw: passthrough,
      source: { kind: 'environment', name: 'SANDBOX_ENV_*' },
    });
  }
  const flagSettings = new Map<string, Setting>();
  for (const [key, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    const entry = BY_KEY.get(key)!;
    flagSettings.set(key, {
      value: convert(entry.doc, raw, cwd, home),
      raw,
      source: { kind: 'flag', name: entry.flag ?? `--${key}` },
    });
  }

  // Layer 2: the config file.
  const named = flagSettings.get('config_file') ?? envSettings.get('config_file');
  let file: string;
  if (named) {
    if (typeof named.value !== 'string' || named.value === '') {
      throw invalid(`Invalid ${describeSource('config_file', named.source)}: expected a file path`);
    }
    file = named.value;
  } else {
    file = defaultConfigFile(env, home);
  }
  const namedBy = named && 'name' in named.source ? named.source.name : undefined;
  const fileSettings = readConfigFile(file, namedBy, home);

  for (const layer of [fileSettings ?? new Map<string, Setting>(), envSettings, flagSettings]) {
    for (const [key, setting] of layer) settings.set(key, setting);
  }
  settings.set('config_file', {
    value: fileSettings ? file : null,
    raw: file,
    source: named?.source ?? { kind: 'default' },
  });
  const mount = settings.get('sandbox.workspace_mount_path')!;
  if (mount.source.kind === 'default') {
    const base = settings.get('sandbox.workspace_base')!;
    settings.set('sandbox.workspace_mount_path', { ...mount, value: base.value, raw: base.value });
  }

  // Validate the merged settings with the one schema.
  const candidate: Record<string, unknown> = {};
  for (const [key, s] of settings) setIn(candidate, key, s.value);
  const parsed = ControlPlaneConfigSchema.safeParse(candidate);
  if (!parsed.success) {
    const problems = new Map<string, { key: string; source: ConfigSource; message: string }>();
    for (const issue of parsed.error.issues) {
      const dotted = issue.path.map(String);
      let key = dotted.join('.');
      while (key && !BY_KEY.has(key)) key = key.split('.').slice(0, -1).join('.');
      const entry = BY_KEY.get(key);
      const setting = settings.get(key);
      if (!entry || !setting || problems.has(key)) continue;
      const got = entry.secret ? '' : `, got ${describeValue(setting.raw)}`;
      const message = `Invalid ${describeSource(key, setting.source)}: expected ${entry.doc.expected}${got}`;
      problems.set(key, { key, source: setting.source, message });
    }
    const list = [...problems.values()];
    if (list.length === 0) throw invalid(`Invalid configuration: ${parsed.error.message}`);
    throw invalid(list.map((p) => p.message).join('\n'), { issues: list });
  }

  const config = deepFreeze(parsed.data) as ControlPlaneConfig;
  if (!isLoopbackHost(config.host) && config.api_keys.length === 0) {
    const source = settings.get('host')!.source;
    const setBy =
      'name' in source ? source.name : source.kind === 'file' ? `host in ${source.file}` : 'default';
    throw invalid(
      `Refusing to listen on ${config.host} (set by ${setBy}) without an API key: anyone who can reach it could run ` +
        'commands in sandboxes. Set BERTH_API_KEY (or api_keys in the config file), or listen on 127.0.0.1.',
    );
  }
  const sources = Object.fromEntries([...settings].map(([key, s]) => [key, Object.freeze(s.source)]));
  return Object.freeze({ config, sources: Object.freeze(sources) as Record<ConfigKey, ConfigSource> });
}

/**
 * Loads the control plane's configuration (see the module comment for the precedence) and returns it
 * frozen. Bad values -> BerthError VALIDATION_FAILED naming the setting and where it came from; a
 * non-loopback host without api_keys is refused the same way.
 */
export function loadControlPlaneConfig(options: LoadControlPlaneConfigOptions = {}): ControlPlaneConfig {
  return resolveControlPlaneConfig(options).config;
}

/** The value of one option by key, e.g. 'sandbox.pool_size'. */
export function getConfigValue(config: ControlPlaneConfig, key: ConfigKey): unknown {
  let node: unknown = config;
  for (const part of key.split('.')) node = (node as Record<string, unknown>)[part];
  return node;
}
