/** Schemas shared by the control plane's routes. */
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import * as z from 'zod';
import { ErrorCode } from '../protocol/errors.js';
import { MAX_ACTION_TIMEOUT_SECONDS } from '../protocol/limits.js';
import { RESET_ACTION } from '../protocol/openhands.js';

export const ErrorBodySchema = z
  .object({
    code: z.enum(Object.values(ErrorCode) as [string, ...string[]]),
    message: z.string(),
    details: z.unknown().optional(),
  })
  .meta({ id: 'ErrorBody' });

/** The HTTP statuses of the error vocabulary (src/protocol/errors.ts). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 500 | 503 | 504 | 507;

/** What each error status means on this API: its description in openapi.json, with the codes it carries. */
const ERROR_DESCRIPTIONS: Record<ErrorStatus, string> = {
  400: 'Invalid request: a field, parameter or path that breaks the rules (VALIDATION_FAILED, INVALID_JSON, UNKNOWN_ACTION, PATH_NOT_ALLOWED, BAD_ARCHIVE)',
  401: 'Missing or wrong API key (UNAUTHORIZED)',
  403: "Refused by the operator's policy or by the sandbox's file permissions (NETWORK_NOT_ALLOWED, RUNTIME_NOT_ALLOWED, MOUNT_NOT_ALLOWED, LIMIT_NOT_ALLOWED, PERMISSION_DENIED); details.rule names the policy rule",
  404: 'No such sandbox, or no such file in it (NOT_FOUND)',
  409: 'The sandbox is not in a state this needs (stopped, paused), or a workspace no sandbox user can be chosen for (CONFLICT)',
  413: 'Request body larger than the limit (PAYLOAD_TOO_LARGE)',
  415: 'Request body of a content type this route does not take (UNSUPPORTED_MEDIA_TYPE)',
  500: 'Unexpected failure in the control plane (INTERNAL)',
  503: 'The sandbox failed to start, or its runtime server or the Docker engine cannot be reached (UNAVAILABLE)',
  504: 'The runtime server did not answer in time (TIMEOUT)',
  507: 'No space left in the sandbox (NO_SPACE)',
};

/** Statuses any route with a key can answer: a bad parameter or URL, a missing key, an unexpected failure. */
const COMMON_ERRORS = [400, 401, 500] as const satisfies readonly ErrorStatus[];

/**
 * The error responses of a route, for its `schema.response`: the common ones (400, 401, 500) and the
 * given ones, each with the one error body shape and a description of when it happens.
 */
export function errorResponses<const S extends ErrorStatus>(
  ...statuses: S[]
): Record<S | (typeof COMMON_ERRORS)[number], typeof ErrorBodySchema> {
  return responsesWith(ErrorBodySchema, statuses);
}

/** The common and the given error statuses, each documented with `schema` and what it means. */
function responsesWith<B extends z.ZodType, S extends ErrorStatus>(
  schema: B,
  statuses: S[],
): Record<S | (typeof COMMON_ERRORS)[number], B> {
  const out: Partial<Record<ErrorStatus, B>> = {};
  for (const status of [...COMMON_ERRORS, ...statuses].sort((a, b) => a - b)) {
    out[status] = schema.describe(ERROR_DESCRIPTIONS[status]) as B;
  }
  return out as Record<S | (typeof COMMON_ERRORS)[number], B>;
}

/** FastAPI's error body, as OpenHands' clients read it (`detail`), with Berth's code beside it. */
export const DetailBodySchema = z
  .object({
    detail: z.string(),
    code: z.enum(Object.values(ErrorCode) as [string, ...string[]]),
  })
  .meta({ id: 'DetailError' });

/** errorResponses for routes that answer FastAPI-style bodies (`config: { detailErrors: true }`). */
export function detailErrorResponses<const S extends ErrorStatus>(
  ...statuses: S[]
): Record<S | (typeof COMMON_ERRORS)[number], typeof DetailBodySchema> {
  return responsesWith(DetailBodySchema, statuses);
}

/** A 204's response: no body at all (openApiTransform documents it without content). */
export const NoContent = z.null().describe('No content');

/** A response body that is not JSON (a zip, a file): documented under its own media type. */
export function binaryBody(mediaType: string, description: string) {
  return z.string().meta({ description, format: 'binary', [MEDIA_TYPE_KEY]: mediaType });
}
const MEDIA_TYPE_KEY = 'x-berth-media-type';

/**
 * The zod type provider's OpenAPI transform, and then what it cannot say by itself: a 204 has no
 * content (a JSON `null` would promise a body), and binary responses are documented under their own
 * media type instead of application/json.
 */
export const openApiTransform: typeof jsonSchemaTransform = (input) => {
  const out = jsonSchemaTransform(input);
  // Every operation has an operationId for generated clients: its own, else one made of its
  // method and path (GET /openhands/sessions/:session_id -> getOpenhandsSessionsBySessionId).
  const doc = out.schema as { operationId?: string; hide?: boolean } | undefined;
  if (doc && !doc.operationId) doc.operationId = derivedOperationId(String(input.route.method), input.url);
  const response = (out.schema as { response?: Record<string, Record<string, unknown>> } | undefined)
    ?.response;
  for (const [status, schema] of Object.entries(response ?? {})) {
    if (status === '204') {
      response![status] = { type: 'null', description: schema.description ?? 'No content' };
      continue;
    }
    const mediaType = schema[MEDIA_TYPE_KEY];
    if (typeof mediaType === 'string') {
      response![status] = {
        description: schema.description,
        content: { [mediaType]: { schema: { type: 'string', format: 'binary' } } },
      };
    }
  }
  return out;
};

/** The path parameter of every per-sandbox route. */
export const IdParams = z.object({ id: z.string().min(1).max(64).describe('the sandbox id') });

// ---- actions and observations, as named schemas -------------------------------------------------
// For openapi.json and the clients generated from it: each action and observation type of the
// protocol (protocol/openhands.ts) under its own name. The control plane validates only the envelope
// (ActionEnvelope) and relays the rest untouched, so these are loose objects without defaults or
// transforms: validating an answer against them never changes it.

const actionTimeout = z
  .number()
  .positive()
  .max(MAX_ACTION_TIMEOUT_SECONDS)
  .nullish()
  .describe("hard timeout in seconds (default: the sandbox's SANDBOX_TIMEOUT)");
const thought = z.string().optional().describe("the agent's reasoning, kept with the action");

function actionSchema(type: string, id: string, description: string, args: z.ZodType) {
  return z.looseObject({ action: z.literal(type), args, timeout: actionTimeout }).meta({ id, description });
}

export const RunAction = actionSchema(
  'run',
  'RunAction',
  "A bash command in the sandbox's persistent shell (state such as cwd and exports carries over)",
  z.looseObject({
    command: z
      .string()
      .describe('the command; "C-c" and the like with is_input=true send keys to a running one'),
    is_input: z.boolean().optional().describe('send the command as input to the running process'),
    blocking: z.boolean().optional().describe('wait for the command to end even past the no-output timeout'),
    is_static: z.boolean().optional(),
    cwd: z.string().nullish(),
    hidden: z.boolean().optional(),
    thought,
  }),
);
export const IPythonAction = actionSchema(
  'run_ipython',
  'IPythonAction',
  "A cell in the sandbox's IPython kernel (AgentSkills helpers loaded)",
  z.looseObject({
    code: z.string(),
    include_extra: z.boolean().optional(),
    kernel_init_code: z.string().optional(),
    thought,
  }),
);
export const ReadAction = actionSchema(
  'read',
  'ReadAction',
  'Read a file (lines start..end, or view_range with impl_source "oh_aci")',
  z.looseObject({
    path: z.string(),
    start: z.number().int().optional(),
    end: z.number().int().optional(),
    impl_source: z.enum(['default', 'oh_aci']).optional(),
    view_range: z.array(z.number().int()).nullish(),
    thought,
  }),
);
export const WriteAction = actionSchema(
  'write',
  'WriteAction',
  'Write a file (whole, or lines start..end)',
  z.looseObject({
    path: z.string(),
    content: z.string(),
    start: z.number().int().optional(),
    end: z.number().int().optional(),
    thought,
  }),
);
export const EditAction = actionSchema(
  'edit',
  'EditAction',
  'The editor (impl_source oh_aci): view, create, str_replace, insert, undo_edit',
  z.looseObject({
    path: z.string(),
    command: z.string().optional(),
    file_text: z.string().nullish(),
    old_str: z.string().nullish(),
    new_str: z.string().nullish(),
    insert_line: z.union([z.number().int(), z.string()]).nullish(),
    view_range: z.array(z.number().int()).nullish(),
    impl_source: z.enum(['oh_aci', 'llm_based_edit']).optional(),
    thought,
  }),
);
export const ResetAction = actionSchema(
  RESET_ACTION,
  'ResetAction',
  "Berth's own: end every process of the sandbox user and start a fresh shell, at once (files stay)",
  z.looseObject({}),
);

/** POST .../execute_action: one action of any of the types above (others answer UNKNOWN_ACTION). */
export const ActionRequest = z
  .object({
    action: z.union([RunAction, IPythonAction, ReadAction, WriteAction, EditAction, ResetAction]),
  })
  .meta({ id: 'ActionRequest', description: 'An action, in the envelope OpenHands sends' });

function observationSchema(type: string, id: string, description: string, extras: z.ZodType) {
  return z
    .looseObject({
      observation: z.literal(type),
      content: z.string(),
      extras,
      message: z.string(),
      success: z.boolean().optional(),
    })
    .meta({ id, description });
}

export const CmdOutputObservation = observationSchema(
  'run',
  'CmdOutputObservation',
  'What a command printed (content) and how it ended (extras.metadata.exit_code)',
  z.looseObject({
    command: z.string(),
    hidden: z.boolean().optional(),
    metadata: z.looseObject({
      exit_code: z.number().int().describe('-1 while it still runs (no-output timeout), else its exit code'),
      pid: z.number().int(),
      username: z.string().nullable(),
      hostname: z.string().nullable(),
      working_dir: z.string().nullable(),
      py_interpreter_path: z.string().nullable(),
      prefix: z.string(),
      suffix: z.string().describe("the shell's note on a command still running, or that timed out"),
    }),
  }),
);
export const IPythonObservation = observationSchema(
  'run_ipython',
  'IPythonObservation',
  "A cell's output; images as data URLs in extras.image_urls",
  z.looseObject({ code: z.string(), image_urls: z.array(z.string()).nullable().optional() }),
);
export const FileReadObservation = observationSchema(
  'read',
  'FileReadObservation',
  'The text read',
  z.looseObject({ path: z.string(), impl_source: z.string().optional() }),
);
export const FileWriteObservation = observationSchema(
  'write',
  'FileWriteObservation',
  'A file written',
  z.looseObject({ path: z.string() }),
);
export const FileEditObservation = observationSchema(
  'edit',
  'FileEditObservation',
  "The editor's answer (content), with the file's diff",
  z.looseObject({
    path: z.string(),
    prev_exist: z.boolean().optional(),
    old_content: z.string().nullable().optional(),
    new_content: z.string().nullable().optional(),
    impl_source: z.string().optional(),
    diff: z.string().nullable().optional(),
  }),
);
export const ErrorObservation = observationSchema(
  'error',
  'ErrorObservation',
  'The action could not be done; content says why',
  z.looseObject({ error_id: z.string().optional() }),
);
export const ResetObservation = observationSchema(
  'reset',
  'ResetObservation',
  'Processes ended by a reset',
  z.looseObject({ killed: z.number().int(), left: z.number().int() }),
);

/** An OpenHands observation, as the runtime server answers an action (protocol/openhands.ts). */
export const ObservationSchema = z
  .union([
    CmdOutputObservation,
    IPythonObservation,
    FileReadObservation,
    FileWriteObservation,
    FileEditObservation,
    ErrorObservation,
    ResetObservation,
    // Any other type a runtime server answers is relayed as it is.
    z.looseObject({
      observation: z.string(),
      content: z.string(),
      extras: z.record(z.string(), z.unknown()),
      message: z.string(),
    }),
  ])
  .meta({ id: 'Observation', description: 'the observation, exactly as the runtime server answered it' });

/** POST /api/sandboxes/{id}/list_files: the directory to list (default: the working directory). */
export const ListFilesBody = z
  .looseObject({ path: z.string().nullish().describe('a directory in the sandbox; default: the workspace') })
  .nullish();

export const DownloadFilesQuery = z.looseObject({
  path: z
    .string()
    .regex(/^\//)
    .describe('absolute path of a file or directory in the sandbox, sent back as a zip'),
});

export const UploadFileQuery = z.looseObject({
  destination: z.string().regex(/^\//).optional().describe('absolute directory in the sandbox; default: /'),
  recursive: z
    .string()
    .optional()
    .describe('true: the file is a zip, extracted into destination (true/false, 1/0, yes/no, on/off)'),
});

/**
 * The multipart form of an upload. For the documentation: the proxy streams the body to the runtime
 * server unparsed, so the route does not validate it (the runtime server does).
 */
export const UploadFileForm = z.object({
  file: z.string().meta({ format: 'binary', description: 'the file (a zip when recursive)' }),
});

function derivedOperationId(method: string, url: string): string {
  const words = url
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? `by_${part.slice(1)}` : part));
  const camel = words
    .flatMap((w) => w.split(/[_-]/))
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
  return `${method.toLowerCase()}${camel}`;
}
