/**
 * What OpenHands' RemoteRuntime sends to POST /start, read for what it means in Berth. Its `command`
 * starts OpenHands' own action-execution server; Berth runs its runtime server instead and takes from
 * the command only what changes the sandbox: the working directory, the user, the plugins. The port,
 * the interpreter path and browser flags mean nothing here.
 */

import * as z from 'zod';
import { type CreateSandboxBody, EnvVars, Plugin, type SandboxUser } from '../../protocol/api.js';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import { splitPluginList } from '../../protocol/plugins.js';

/** The label that ties a sandbox to the OpenHands conversation (session) it serves. */
export const SESSION_LABEL = 'berth.openhands.session';

/** OpenHands' runtime classes (SANDBOX_REMOTE_RUNTIME_CLASS) and the OCI runtime each means. */
export const RUNTIME_CLASSES: Readonly<Record<string, string>> = {
  'sysbox-runc': 'sysbox-runc',
  sysbox: 'sysbox-runc',
  gvisor: 'runsc',
  runsc: 'runsc',
};

export const MAX_RESOURCE_FACTOR = 16;

export const StartRequest = z.object({
  image: z
    .string()
    .min(1)
    .max(255)
    .describe('the runtime image (SANDBOX_RUNTIME_CONTAINER_IMAGE or a built one)'),
  command: z
    .union([z.array(z.string().max(4096)).max(256), z.string().max(65536)])
    .optional()
    .describe(
      "the action-execution server's command line; Berth reads --working-dir, --username, --user-id, --plugins",
    ),
  working_dir: z.string().max(4096).optional().describe("the server's own directory (ignored)"),
  environment: z.record(z.string(), z.unknown()).optional().describe("the sandbox's environment"),
  session_id: z.string().min(1).max(255).describe('the conversation id'),
  resource_factor: z.number().optional().describe('scales the default CPU and memory limits'),
  runtime_class: z.string().max(64).nullable().optional().describe('"sysbox-runc" or "gvisor"'),
});
export type StartRequest = z.infer<typeof StartRequest>;

export interface ServerFlags {
  workingDir?: string;
  user?: SandboxUser;
  plugins?: Array<z.infer<typeof Plugin>>;
}

/** The flags of an action-execution server's command line that Berth honours. */
export function readServerFlags(command: string[] | string | undefined): ServerFlags {
  const argv = typeof command === 'string' ? command.trim().split(/\s+/) : (command ?? []);
  const flags: ServerFlags = {};
  let name: string | undefined;
  let uid: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = splitFlag(argv[i] as string);
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--working-dir':
        flags.workingDir = value();
        break;
      case '--username':
        name = value();
        break;
      case '--user-id': {
        const v = value();
        uid = v !== undefined && /^\d{1,10}$/.test(v) ? Number(v) : Number.NaN;
        if (Number.isNaN(uid)) throw invalid(`--user-id must be a number (got "${v}")`);
        break;
      }
      case '--plugins': {
        const list: string[] = inline !== undefined ? [inline] : [];
        while (inline === undefined && i + 1 < argv.length && !(argv[i + 1] as string).startsWith('--')) {
          list.push(argv[++i] as string);
        }
        const unknown = splitPluginList(list).filter((p) => !Plugin.safeParse(p).success);
        if (unknown.length > 0) {
          throw invalid(`Unknown plugin ${unknown.join(', ')}: Berth offers ${Plugin.options.join(', ')}`);
        }
        flags.plugins = splitPluginList(list) as ServerFlags['plugins'];
        break;
      }
    }
  }
  if (flags.workingDir !== undefined && !flags.workingDir.startsWith('/')) {
    throw invalid(`--working-dir must be an absolute path (got "${flags.workingDir}")`);
  }
  if (name !== undefined || uid !== undefined) {
    // The reference: root is uid 0 whatever --user-id says; any other name keeps its uid (1000 by default).
    flags.user = name === 'root' ? { name: 'root', uid: 0 } : { ...(name ? { name } : {}), uid: uid ?? 1000 };
  }
  return flags;
}

/**
 * The create request for a /start: the image already resolved to a runtime image, limits scaled by
 * resource_factor from the defaults, the runtime class mapped to an OCI runtime (the operator's
 * policy decides whether it may be used, as for any create).
 */
export function createBodyFor(
  req: StartRequest,
  image: string,
  defaults: { cpus?: number | undefined; memoryMb?: number | undefined },
): CreateSandboxBody {
  const flags = readServerFlags(req.command);
  const env = EnvVars.safeParse(
    Object.fromEntries(Object.entries(req.environment ?? {}).map(([k, v]) => [k, String(v)])),
  );
  if (!env.success) {
    const issue = env.error.issues[0];
    throw invalid(`Invalid environment variable ${String(issue?.path.join('.') ?? '')}: ${issue?.message}`);
  }
  const body: CreateSandboxBody = { image, env: env.data };
  const factor = req.resource_factor ?? 1;
  if (!(factor > 0 && factor <= MAX_RESOURCE_FACTOR)) {
    throw invalid(`resource_factor must be above 0 and at most ${MAX_RESOURCE_FACTOR} (got ${factor})`);
  }
  if (factor !== 1) {
    body.limits = {
      ...(defaults.cpus !== undefined ? { cpus: defaults.cpus * factor } : {}),
      ...(defaults.memoryMb !== undefined ? { memory_mb: Math.round(defaults.memoryMb * factor) } : {}),
    };
  }
  if (req.runtime_class) {
    // Own keys only: "constructor" is no runtime class.
    if (!Object.hasOwn(RUNTIME_CLASSES, req.runtime_class)) {
      throw invalid(
        `Unknown runtime_class "${req.runtime_class}": Berth knows ${Object.keys(RUNTIME_CLASSES).join(', ')}`,
      );
    }
    body.oci_runtime = RUNTIME_CLASSES[req.runtime_class];
  }
  if (flags.workingDir !== undefined) body.working_dir = flags.workingDir;
  if (flags.user !== undefined) body.user = flags.user;
  if (flags.plugins !== undefined) body.plugins = flags.plugins;
  return body;
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=');
  return arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

function invalid(message: string): BerthError {
  return new BerthError(ErrorCode.VALIDATION_FAILED, message);
}
