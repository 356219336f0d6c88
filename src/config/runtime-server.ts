/**
 * Configuration of the in-sandbox runtime server: command-line flags first, then the environment
 * variables the reference reads (SESSION_API_KEY, NO_CHANGE_TIMEOUT_SECONDS).
 */
import * as z from 'zod';

import {
  DEFAULT_RUNTIME_PLUGINS,
  PLUGINS_ENV,
  RUNTIME_PLUGINS,
  type RuntimePlugin,
  splitPluginList,
} from '../protocol/plugins.js';

export { DEFAULT_RUNTIME_PLUGINS, RUNTIME_PLUGINS, type RuntimePlugin };

/** The reference's default soft (no new output) timeout. */
export const DEFAULT_NO_CHANGE_TIMEOUT_SECONDS = 10;

export const RuntimeServerConfig = z.object({
  port: z.number().int().min(0).max(65535),
  host: z.string().min(1),
  workingDir: z.string().min(1),
  sessionApiKey: z.string().optional(),
  noChangeTimeoutSeconds: z.number().positive(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** Set by the control plane in every sandbox (BERTH_OWN_PID_NAMESPACE=1): see RuntimeServicesOptions. */
  ownsPidNamespace: z.boolean(),
  /**
   * Plugins, as the reference's --plugins: `jupyter` (run_ipython) and `agent_skills` (the AgentSkills
   * helpers in the kernel, which need `jupyter` too). From --plugins, else BERTH_PLUGINS; names
   * separated by commas or spaces, `none` (or an empty value) for none.
   */
  plugins: z.array(
    z.enum(RUNTIME_PLUGINS, {
      error: (issue) =>
        `unknown plugin ${JSON.stringify(issue.input)} (known: ${RUNTIME_PLUGINS.join(', ')})`,
    }),
  ),
  /** Bounds on uploaded archives; unset: the archive module's defaults (4 GiB, 100,000 entries). */
  archiveLimits: z
    .object({ maxExpandedBytes: z.number().int().positive(), maxEntries: z.number().int().positive() })
    .optional(),
});
export type RuntimeServerConfig = z.infer<typeof RuntimeServerConfig>;

export interface RuntimeServerFlags {
  port?: number | string | undefined;
  host?: string | undefined;
  workingDir?: string | undefined;
  sessionApiKey?: string | undefined;
  /** Names separated by commas or spaces; repeated flags add up. */
  plugins?: string | string[] | undefined;
}

function parsePlugins(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const names = splitPluginList(value);
  return names.length === 1 && names[0] === 'none' ? [] : names;
}

export function loadRuntimeServerConfig(
  flags: RuntimeServerFlags,
  env: NodeJS.ProcessEnv = process.env,
): RuntimeServerConfig {
  const soft = env.NO_CHANGE_TIMEOUT_SECONDS;
  const parsed = RuntimeServerConfig.safeParse({
    port: flags.port === undefined ? 8000 : Number(flags.port),
    host: flags.host ?? '0.0.0.0',
    workingDir: flags.workingDir ?? env.WORKSPACE_MOUNT_PATH_IN_SANDBOX ?? process.cwd(),
    sessionApiKey: flags.sessionApiKey ?? (env.SESSION_API_KEY || undefined),
    noChangeTimeoutSeconds:
      soft === undefined || soft === '' ? DEFAULT_NO_CHANGE_TIMEOUT_SECONDS : Number(soft),
    logLevel: env.BERTH_LOG_LEVEL ?? (env.DEBUG === 'true' ? 'debug' : 'info'),
    ownsPidNamespace: env.BERTH_OWN_PID_NAMESPACE === '1',
    plugins: parsePlugins(flags.plugins) ?? parsePlugins(env[PLUGINS_ENV]) ?? [...DEFAULT_RUNTIME_PLUGINS],
    archiveLimits:
      env.BERTH_UPLOAD_MAX_EXPANDED_BYTES || env.BERTH_UPLOAD_MAX_ENTRIES
        ? {
            maxExpandedBytes: Number(env.BERTH_UPLOAD_MAX_EXPANDED_BYTES || 4 * 1024 ** 3),
            maxEntries: Number(env.BERTH_UPLOAD_MAX_ENTRIES || 100_000),
          }
        : undefined,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') ?? '?';
    const names: Record<string, string> = {
      port: '--port',
      noChangeTimeoutSeconds: 'NO_CHANGE_TIMEOUT_SECONDS',
      logLevel: 'BERTH_LOG_LEVEL',
      'archiveLimits.maxExpandedBytes': 'BERTH_UPLOAD_MAX_EXPANDED_BYTES',
      'archiveLimits.maxEntries': 'BERTH_UPLOAD_MAX_ENTRIES',
      workingDir: '--working-dir',
      plugins: flags.plugins === undefined ? PLUGINS_ENV : '--plugins',
    };
    throw new Error(
      `Invalid runtime server setting ${names[field] ?? names[String(issue?.path[0])] ?? field}: ${issue?.message}`,
    );
  }
  return Object.freeze(parsed.data);
}
