/** The control plane's configuration: defaults < config file < environment < flags, and its errors. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONFIG_OPTIONS,
  type ConfigKey,
  type ControlPlaneFlags,
  getConfigValue,
  isLoopbackHost,
  type LoadControlPlaneConfigOptions,
  loadControlPlaneConfig,
  renderConfigTable,
  resolveControlPlaneConfig,
} from '../../src/config/control-plane.js';
import { BerthError } from '../../src/protocol/errors.js';

let home: string;
let configFile: string;

beforeEach(() => {
  home = mkdtempSync(path.join(os.tmpdir(), 'berth-config-'));
  configFile = path.join(home, '.config', 'berth', 'config.toml');
});
afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

function writeConfig(toml: string, file = configFile): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, toml);
  return file;
}

function load(
  env: NodeJS.ProcessEnv = {},
  flags: ControlPlaneFlags = {},
  extra: LoadControlPlaneConfigOptions = {},
) {
  return loadControlPlaneConfig({ env: { HOME: home, ...env }, flags, cwd: home, ...extra });
}

function failure(fn: () => unknown): BerthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BerthError);
    return err as BerthError;
  }
  throw new Error('expected a BerthError');
}

const loadError = (env: NodeJS.ProcessEnv = {}, flags: ControlPlaneFlags = {}) =>
  failure(() => load(env, flags));

describe('defaults', () => {
  it('are complete, documented and frozen', () => {
    const config = load();
    expect(config).toMatchObject({
      config_file: null,
      host: '127.0.0.1',
      port: 3000,
      data_dir: path.join(home, '.local', 'share', 'berth'),
      api_keys: [],
      log_level: 'info',
      sandbox: {
        workspace_base: null,
        workspace_mount_path: null,
        workspace_mount_path_in_sandbox: '/workspace',
        // Under a root Berth, unset: each sandbox takes its workspace owner's ids.
        user_id: process.getuid?.() === 0 ? null : (process.getuid?.() ?? 1000),
        user_name: 'openhands',
        workspace_idmap: 'auto',
        runtime_binding_address: '127.0.0.1',
        runtime_container_image: null,
        base_container_image: 'berth-base:bookworm',
        timeout: 120,
        volumes: [],
        keep_runtime_alive: false,
        use_host_network: false,
        network: 'isolated',
        cpus: 2,
        memory_mb: 4096,
        pids: 1024,
        oci_runtime: null,
        enable_gpu: false,
        startup_timeout_seconds: 60,
        lifetime_seconds: 3600,
        idle_timeout_seconds: 1800,
        pool_size: 2,
        reaper_interval_seconds: 30,
        runtime_startup_env_vars: {},
        env: {},
      },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.sandbox)).toBe(true);
    expect(Object.isFrozen(config.api_keys)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('follow XDG_DATA_HOME and XDG_CONFIG_HOME', () => {
    const xdgConfig = path.join(home, 'xdg-config');
    writeConfig('port = 4100\n', path.join(xdgConfig, 'berth', 'config.toml'));
    const config = load({ XDG_DATA_HOME: path.join(home, 'xdg-data'), XDG_CONFIG_HOME: xdgConfig });
    expect(config.data_dir).toBe(path.join(home, 'xdg-data', 'berth'));
    expect(config.config_file).toBe(path.join(xdgConfig, 'berth', 'config.toml'));
    expect(config.port).toBe(4100);
  });
});

describe('precedence: defaults < file < environment < flags', () => {
  it('takes each value from the highest layer that sets it', () => {
    writeConfig(`
port = 4000
log_level = "warn"
[sandbox]
timeout = 10
pool_size = 5
`);
    const env = { BERTH_PORT: '5000', SANDBOX_TIMEOUT: '20' };
    const flags: ControlPlaneFlags = { port: '6000' };

    const { config, sources } = resolveControlPlaneConfig({ env: { HOME: home, ...env }, flags, cwd: home });
    expect(config.port).toBe(6000);
    expect(config.sandbox.timeout).toBe(20);
    expect(config.sandbox.pool_size).toBe(5);
    expect(config.log_level).toBe('warn');
    expect(config.sandbox.cpus).toBe(2);
    expect(config.config_file).toBe(configFile);
    expect(sources.port).toEqual({ kind: 'flag', name: '--port' });
    expect(sources['sandbox.timeout']).toEqual({ kind: 'environment', name: 'SANDBOX_TIMEOUT' });
    expect(sources['sandbox.pool_size']).toEqual({ kind: 'file', file: configFile });
    expect(sources['sandbox.cpus']).toEqual({ kind: 'default' });

    expect(load(env).port).toBe(5000);
    expect(load().port).toBe(4000);
    rmSync(configFile);
    expect(load().port).toBe(3000);
  });

  it('accepts any option as a flag by its key, numbers and lists included', () => {
    const config = load(
      { BERTH_POOL_SIZE: '3' },
      { 'sandbox.pool_size': 0, api_keys: ['k1', 'k2'], 'sandbox.keep_runtime_alive': 'yes' },
    );
    expect(config.sandbox.pool_size).toBe(0);
    expect(config.api_keys).toEqual(['k1', 'k2']);
    expect(config.sandbox.keep_runtime_alive).toBe(true);
    expect(loadError({}, { 'sandbox.colour': 'red' } as ControlPlaneFlags).message).toBe(
      'Unknown option sandbox.colour given as a flag',
    );
  });

  it('finds the config file by --config, then BERTH_CONFIG, then the default location', () => {
    writeConfig('port = 1001\n');
    const fromEnv = writeConfig('port = 1002\n', path.join(home, 'env.toml'));
    const fromFlag = writeConfig('port = 1003\n', path.join(home, 'flag.toml'));
    expect(load().port).toBe(1001);
    expect(load({ BERTH_CONFIG: fromEnv }).port).toBe(1002);
    expect(load({ BERTH_CONFIG: fromEnv }, { config_file: fromFlag }).port).toBe(1003);
    expect(load({ BERTH_CONFIG: 'env.toml' }).config_file).toBe(fromEnv);
  });

  it('requires a named config file to exist, but not the default one', () => {
    expect(load().config_file).toBeNull();
    const missing = path.join(home, 'missing.toml');
    const fromEnv = loadError({ BERTH_CONFIG: missing });
    expect(fromEnv.code).toBe('NOT_FOUND');
    expect(fromEnv.message).toBe(`Config file ${missing} (named by BERTH_CONFIG) does not exist`);
    expect(loadError({}, { config_file: missing }).message).toContain('named by --config');
  });

  it('derives workspace_mount_path from workspace_base unless it is set', () => {
    expect(load({ WORKSPACE_BASE: '/srv/ws' }).sandbox).toMatchObject({
      workspace_base: '/srv/ws',
      workspace_mount_path: '/srv/ws',
    });
    expect(load({ WORKSPACE_BASE: '/srv/ws', WORKSPACE_MOUNT_PATH: '/host/ws' }).sandbox).toMatchObject({
      workspace_base: '/srv/ws',
      workspace_mount_path: '/host/ws',
    });
  });

  it('resolves relative paths against the config file (in the file) or the working directory', () => {
    writeConfig('data_dir = "state"\n[sandbox]\nworkspace_base = "~/ws"\n');
    const config = load({}, {}, { cwd: '/somewhere' });
    expect(config.data_dir).toBe(path.join(path.dirname(configFile), 'state'));
    expect(config.sandbox.workspace_base).toBe(path.join(home, 'ws'));
    expect(load({ BERTH_DATA_DIR: 'rel/dir' }, {}, { cwd: '/somewhere' }).data_dir).toBe(
      '/somewhere/rel/dir',
    );
  });

  it('treats an empty environment variable as unset', () => {
    writeConfig('port = 4000\n');
    expect(load({ BERTH_PORT: '' }).port).toBe(4000);
  });
});

describe('values from text', () => {
  it.each([
    ['true', true],
    ['false', false],
    ['1', true],
    ['0', false],
    ['yes', true],
    ['no', false],
    ['YES', true],
    [' False ', false],
  ])('reads boolean %j as %s', (text, value) => {
    expect(load({ SANDBOX_ENABLE_GPU: text }).sandbox.enable_gpu).toBe(value);
  });

  it('splits comma-separated lists and trims them', () => {
    const config = load({
      BERTH_API_KEY: ' k1, k2 ,,',
      SANDBOX_VOLUMES: '/data:/data:ro, cache:/cache ,volume:pip:/root/.cache/pip:rw',
    });
    expect(config.api_keys).toEqual(['k1', 'k2']);
    expect(config.sandbox.volumes).toEqual([
      '/data:/data:ro',
      'cache:/cache',
      'volume:pip:/root/.cache/pip:rw',
    ]);
    writeConfig('api_keys = ["a", "b"]\n[sandbox]\nvolumes = "/x:/y"\n');
    expect(load().api_keys).toEqual(['a', 'b']);
    expect(load().sandbox.volumes).toEqual(['/x:/y']);
  });

  it('reads fractional CPUs and the other numbers', () => {
    const config = load({
      BERTH_SANDBOX_CPUS: '0.5',
      BERTH_SANDBOX_MEMORY_MB: '512',
      BERTH_SANDBOX_PIDS: '64',
    });
    expect(config.sandbox).toMatchObject({ cpus: 0.5, memory_mb: 512, pids: 64 });
  });
});

describe('bad values name the setting and where it came from', () => {
  it('matches the documented message format', () => {
    expect(loadError({ SANDBOX_USER_ID: 'abc' }).message).toBe(
      'Invalid SANDBOX_USER_ID (environment): expected a non-negative integer, got "abc"',
    );
    const err = loadError({ SANDBOX_USER_ID: 'abc' });
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.status).toBe(400);
  });

  it.each<[string, NodeJS.ProcessEnv, string]>([
    [
      'integer (text)',
      { SANDBOX_USER_ID: 'abc' },
      'SANDBOX_USER_ID (environment): expected a non-negative integer',
    ],
    ['integer (negative)', { SANDBOX_USER_ID: '-1' }, 'SANDBOX_USER_ID (environment)'],
    [
      'integer (fraction)',
      { SANDBOX_TIMEOUT: '1.5' },
      'SANDBOX_TIMEOUT (environment): expected a positive integer',
    ],
    ['integer (zero)', { SANDBOX_TIMEOUT: '0' }, 'SANDBOX_TIMEOUT (environment)'],
    [
      'port range',
      { BERTH_PORT: '70000' },
      'BERTH_PORT (environment): expected a port number from 0 to 65535',
    ],
    ['number', { BERTH_SANDBOX_CPUS: 'two' }, 'BERTH_SANDBOX_CPUS (environment): expected a positive number'],
    ['number (zero)', { BERTH_SANDBOX_CPUS: '0' }, 'BERTH_SANDBOX_CPUS (environment)'],
    [
      'minimum',
      { BERTH_SANDBOX_MEMORY_MB: '8' },
      'BERTH_SANDBOX_MEMORY_MB (environment): expected an integer of at',
    ],
    [
      'maximum',
      { BERTH_POOL_SIZE: '1000' },
      'BERTH_POOL_SIZE (environment): expected an integer from 0 to 64',
    ],
    [
      'boolean',
      { SANDBOX_KEEP_RUNTIME_ALIVE: 'maybe' },
      'SANDBOX_KEEP_RUNTIME_ALIVE (environment): expected a boolean',
    ],
    [
      'enum',
      { BERTH_LOG_LEVEL: 'loud' },
      'BERTH_LOG_LEVEL (environment): expected one of fatal, error, warn, info',
    ],
    [
      'list entry',
      { SANDBOX_VOLUMES: '/a:/b,nonsense' },
      'SANDBOX_VOLUMES (environment): expected comma-separated',
    ],
    ['volume mode', { SANDBOX_VOLUMES: '/a:/b:rx' }, 'SANDBOX_VOLUMES (environment)'],
    [
      'IP address',
      { SANDBOX_RUNTIME_BINDING_ADDRESS: 'localhost' },
      'SANDBOX_RUNTIME_BINDING_ADDRESS (environment)',
    ],
    ['host', { BERTH_HOST: 'http://x' }, 'BERTH_HOST (environment): expected a host name or IP address'],
    [
      'absolute path',
      { WORKSPACE_MOUNT_PATH_IN_SANDBOX: 'ws' },
      'WORKSPACE_MOUNT_PATH_IN_SANDBOX (environment)',
    ],
    ['network name', { BERTH_SANDBOX_NETWORK: 'my net' }, 'BERTH_SANDBOX_NETWORK (environment)'],
    ['image', { SANDBOX_RUNTIME_CONTAINER_IMAGE: 'a b' }, 'SANDBOX_RUNTIME_CONTAINER_IMAGE (environment)'],
  ])('%s', (_what, env, message) => {
    const err = loadError(env);
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.message).toContain(`Invalid ${message}`);
    expect(err.message).toContain(`got ${JSON.stringify(Object.values(env)[0])}`);
  });

  it('names flags', () => {
    expect(loadError({}, { port: 'eighty' }).message).toBe(
      'Invalid --port (flag): expected a port number from 0 to 65535, got "eighty"',
    );
    expect(loadError({}, { 'sandbox.cpus': -1 }).message).toContain('Invalid --sandbox.cpus (flag)');
  });

  it('names keys in the config file, with the file', () => {
    writeConfig('port = "abc"\n[sandbox]\ntimeout = 1.5\nenable_gpu = 1\n');
    const err = loadError();
    expect(err.message.split('\n')).toEqual([
      `Invalid port in ${configFile}: expected a port number from 0 to 65535, got "abc"`,
      `Invalid sandbox.timeout in ${configFile}: expected a positive integer (seconds), got 1.5`,
      `Invalid sandbox.enable_gpu in ${configFile}: expected a boolean (true/false, 1/0, yes/no), got 1`,
    ]);
    expect(err.details).toMatchObject({
      issues: [
        { key: 'port', source: { kind: 'file', file: configFile } },
        { key: 'sandbox.timeout' },
        { key: 'sandbox.enable_gpu' },
      ],
    });
  });

  it('checks the runtime_startup_env_vars table', () => {
    writeConfig('[sandbox.runtime_startup_env_vars]\nFOO = "bar"\nPORT_X = "1"\n');
    expect(load().sandbox.runtime_startup_env_vars).toEqual({ FOO: 'bar', PORT_X: '1' });
    writeConfig('[sandbox.runtime_startup_env_vars]\nFOO = 1\n');
    expect(loadError().message).toContain(
      `Invalid sandbox.runtime_startup_env_vars in ${configFile}: expected a table of NAME = "value" strings`,
    );
    writeConfig('[sandbox]\nruntime_startup_env_vars = { "1BAD" = "x" }\n');
    expect(loadError().message).toContain('Invalid sandbox.runtime_startup_env_vars');
  });

  it('never echoes secret values', () => {
    const err = loadError({ BERTH_API_KEY: 'secret with spaces' });
    expect(err.message).toContain('Invalid BERTH_API_KEY (environment)');
    expect(err.message).not.toContain('secret with spaces');
  });

  it('rejects unknown keys, misplaced keys and broken TOML in the config file', () => {
    writeConfig('[sandbox]\ncolour = "blue"\n');
    expect(loadError().message).toBe(`Unknown key sandbox.colour in ${configFile}`);
    writeConfig('colour = "blue"\n');
    expect(loadError().message).toBe(`Unknown key colour in ${configFile}`);
    writeConfig('[sandbox.deep]\nx = 1\n');
    expect(loadError().message).toBe(`Unknown key sandbox.deep in ${configFile}`);
    writeConfig('sandbox = 3\n');
    expect(loadError().message).toBe(`Invalid sandbox in ${configFile}: expected a [sandbox] table`);
    writeConfig('config_file = "/x.toml"\n');
    expect(loadError().message).toContain(
      `Key config_file cannot be set in ${configFile}; set it with BERTH_CONFIG`,
    );
    writeConfig('[sandbox.env]\nA = "b"\n');
    expect(loadError().message).toContain(`Key sandbox.env cannot be set in ${configFile}`);
    writeConfig('port = = 3\n');
    const broken = loadError();
    expect(broken.code).toBe('VALIDATION_FAILED');
    expect(broken.message).toContain(`Invalid TOML in ${configFile}`);
  });
});

describe('SANDBOX_ENV_ passthrough', () => {
  it('collects every SANDBOX_ENV_<NAME> into sandbox.env', () => {
    const { config, sources } = resolveControlPlaneConfig({
      env: { HOME: home, SANDBOX_ENV_FOO: 'bar', SANDBOX_ENV_EMPTY: '', SANDBOX_ENV_A_B: 'x=y', OTHER: '1' },
    });
    expect(config.sandbox.env).toEqual({ FOO: 'bar', EMPTY: '', A_B: 'x=y' });
    expect(Object.isFrozen(config.sandbox.env)).toBe(true);
    expect(sources['sandbox.env']).toEqual({ kind: 'environment', name: 'SANDBOX_ENV_*' });
  });

  it('rejects a name that is not a variable name', () => {
    expect(loadError({ SANDBOX_ENV_: 'x' }).message).toBe(
      'Invalid SANDBOX_ENV_ (environment): expected a variable name after SANDBOX_ENV_',
    );
    expect(loadError({ SANDBOX_ENV_1X: 'x' }).message).toContain('Invalid SANDBOX_ENV_1X (environment)');
  });

  it('takes an event payload cap of 0 (none) or at least 1024 bytes', () => {
    expect(load({ BERTH_EVENT_MAX_PAYLOAD_BYTES: '0' }).events.max_payload_bytes).toBe(0);
    expect(load().events).toEqual({
      max_payload_bytes: 65536,
      max_age_days: 30,
      max_sandbox_mb: 256,
      max_total_mb: 1024,
    });
    expect(loadError({ BERTH_EVENT_MAX_PAYLOAD_BYTES: '500' }).message).toContain(
      'Invalid BERTH_EVENT_MAX_PAYLOAD_BYTES (environment): expected 0 or an integer of at least 1024 (bytes)',
    );
  });
});

describe('the loopback rule', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])(
    '%s is loopback',
    (h) => {
      expect(isLoopbackHost(h)).toBe(true);
    },
  );
  it.each(['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '::ffff:10.0.0.1'])(
    '%s is not',
    (h) => {
      expect(isLoopbackHost(h)).toBe(false);
    },
  );

  it('lets loopback hosts run without an API key', () => {
    for (const host of ['127.0.0.1', '::1', 'localhost']) expect(load({ BERTH_HOST: host }).host).toBe(host);
  });

  it('refuses a non-loopback host without an API key, and says to set BERTH_API_KEY', () => {
    const err = loadError({ BERTH_HOST: '0.0.0.0' });
    expect(err.code).toBe('VALIDATION_FAILED');
    expect(err.message).toContain('Refusing to listen on 0.0.0.0 (set by BERTH_HOST)');
    expect(err.message).toContain('Set BERTH_API_KEY');
    writeConfig('host = "0.0.0.0"\n');
    expect(loadError().message).toContain(`set by host in ${configFile}`);
    expect(loadError({}, { host: '192.168.1.10' }).message).toContain('set by --host');
  });

  it('accepts a non-loopback host with an API key from any layer', () => {
    expect(load({ BERTH_HOST: '0.0.0.0', BERTH_API_KEY: 'k' }).api_keys).toEqual(['k']);
    writeConfig('host = "0.0.0.0"\napi_keys = ["k"]\n');
    expect(load().host).toBe('0.0.0.0');
    expect(load({}, { host: '::', api_keys: 'a,b' }).api_keys).toEqual(['a', 'b']);
  });
});

describe('the option table', () => {
  /** A valid value for each option's environment variable, different from its default. */
  const samples: Partial<Record<ConfigKey, [string, unknown]>> = {
    config_file: ['', null],
    host: ['::1', '::1'],
    port: ['8080', 8080],
    data_dir: ['/var/lib/berth', '/var/lib/berth'],
    api_keys: ['a,b', ['a', 'b']],
    log_level: ['debug', 'debug'],
    control_plane_container: ['berth-cp', 'berth-cp'],
    'sandbox.workspace_base': ['/ws', '/ws'],
    'sandbox.workspace_mount_path': ['/host/ws', '/host/ws'],
    'sandbox.workspace_mount_path_in_sandbox': ['/work', '/work'],
    'sandbox.user_id': ['4242', 4242],
    'sandbox.user_name': ['dev', 'dev'],
    'sandbox.workspace_idmap': ['require', 'require'],
    'sandbox.runtime_binding_address': ['0.0.0.0', '0.0.0.0'],
    'sandbox.port_lock_dir': ['/run/berth-ports', '/run/berth-ports'],
    'sandbox.runtime_container_image': ['my/runtime:1', 'my/runtime:1'],
    'sandbox.base_container_image': ['python:3.12', 'python:3.12'],
    'sandbox.timeout': ['30', 30],
    'sandbox.volumes': ['/a:/b', ['/a:/b']],
    'sandbox.keep_runtime_alive': ['yes', true],
    'sandbox.use_host_network': ['1', true],
    'sandbox.network': ['internal', 'internal'],
    'sandbox.cpus': ['1.5', 1.5],
    'sandbox.memory_mb': ['1024', 1024],
    'sandbox.pids': ['256', 256],
    'sandbox.disk_mb': ['2048', 2048],
    'sandbox.disk_limit': ['require', 'require'],
    'sandbox.oci_runtime': ['runsc', 'runsc'],
    'sandbox.enable_gpu': ['true', true],
    'sandbox.startup_timeout_seconds': ['90', 90],
    'sandbox.lifetime_seconds': ['0', 0],
    'sandbox.idle_timeout_seconds': ['60', 60],
    'sandbox.pool_size': ['0', 0],
    'sandbox.reaper_interval_seconds': ['5', 5],
    'policy.networks': ['isolated,host', ['isolated', 'host']],
    'policy.mount_roots': ['/srv/a,/srv/b', ['/srv/a', '/srv/b']],
    'policy.oci_runtimes': ['runsc,sysbox-runc', ['runsc', 'sysbox-runc']],
    'policy.named_volumes': ['true', true],
    'policy.max_cpus': ['1.5', 1.5],
    'policy.max_memory_mb': ['8192', 8192],
    'policy.max_pids': ['2048', 2048],
    'policy.max_disk_mb': ['4096', 4096],
    'events.max_payload_bytes': ['1048576', 1048576],
    'events.max_age_days': ['7.5', 7.5],
    'events.max_sandbox_mb': ['0', 0],
    'events.max_total_mb': ['4096', 4096],
  };

  it('lists every option of the schema once, with a description and default', () => {
    const leaves = (obj: object, prefix = ''): string[] =>
      Object.entries(obj).flatMap(([k, v]) =>
        v &&
        typeof v === 'object' &&
        !Array.isArray(v) &&
        (k === 'sandbox' || k === 'policy' || k === 'events')
          ? leaves(v, `${k}.`)
          : [`${prefix}${k}`],
      );
    expect(CONFIG_OPTIONS.map((o) => o.key).sort()).toEqual(leaves(load()).sort());
    for (const o of CONFIG_OPTIONS) {
      expect(o.description.length, o.key).toBeGreaterThan(10);
      expect(o.default, o.key).not.toBe('');
    }
    const envs = CONFIG_OPTIONS.flatMap((o) => (o.env ? [o.env] : []));
    expect(new Set(envs).size).toBe(envs.length);
    expect(CONFIG_OPTIONS.filter((o) => !o.env).map((o) => o.key)).toEqual([
      'sandbox.runtime_startup_env_vars',
    ]);
  });

  it('names environment variables the loader really reads', () => {
    for (const option of CONFIG_OPTIONS) {
      if (!option.env || option.key === 'sandbox.env' || option.key === 'config_file') continue;
      const sample = samples[option.key];
      expect(sample, `a sample value for ${option.key}`).toBeDefined();
      const [text, value] = sample!;
      const { config, sources } = resolveControlPlaneConfig({
        env: { HOME: home, BERTH_API_KEY: 'k', [option.env]: text },
      });
      expect(getConfigValue(config, option.key), option.key).toEqual(value);
      expect(sources[option.key]).toEqual({ kind: 'environment', name: option.env });
    }
  });

  it('renders as a Markdown table', () => {
    const table = renderConfigTable();
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toBe('| Key | Environment variable | Default | Description |');
    expect(lines).toHaveLength(CONFIG_OPTIONS.length + 2);
    expect(table).toContain(
      "| `sandbox.user_id` | `SANDBOX_USER_ID` | the uid running Berth; when that is root: the workspace directory's owner (1000 without a workspace) |",
    );
    expect(table).toContain('| `port` (`--port`) | `BERTH_PORT` | 3000 |');
    for (const line of lines) expect(line.split(/(?<!\\)\|/)).toHaveLength(6);
  });
});
