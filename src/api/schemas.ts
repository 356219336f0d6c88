/** Schemas shared by the control plane's routes. */
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import * as z from 'zod';
import { ErrorCode } from '../protocol/errors.js';

export const ErrorBodySchema = z.object({
  code: z.enum(Object.values(ErrorCode) as [string, ...string[]]),
  message: z.string(),
  details: z.unknown().optional(),
});

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
  const out: Partial<Record<ErrorStatus, typeof ErrorBodySchema>> = {};
  for (const status of [...COMMON_ERRORS, ...statuses].sort((a, b) => a - b)) {
    out[status] = ErrorBodySchema.describe(ERROR_DESCRIPTIONS[status]);
  }
  return out as Record<S | (typeof COMMON_ERRORS)[number], typeof ErrorBodySchema>;
}

/** FastAPI's error body, as OpenHands' clients read it (`detail`), with Berth's code beside it. */
export const DetailBodySchema = z.object({
  detail: z.string(),
  code: z.enum(Object.values(ErrorCode) as [string, ...string[]]),
});

/** errorResponses for routes that answer FastAPI-style bodies (`config: { detailErrors: true }`). */
export function detailErrorResponses<const S extends ErrorStatus>(
  ...statuses: S[]
): Record<S | (typeof COMMON_ERRORS)[number], typeof DetailBodySchema> {
  const out: Partial<Record<ErrorStatus, typeof DetailBodySchema>> = {};
  for (const status of [...COMMON_ERRORS, ...statuses].sort((a, b) => a - b)) {
    out[status] = DetailBodySchema.describe(ERROR_DESCRIPTIONS[status]);
  }
  return out as Record<S | (typeof COMMON_ERRORS)[number], typeof DetailBodySchema>;
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

/** An OpenHands observation, as the runtime server answers an action (protocol/openhands.ts). */
export const ObservationSchema = z
  .looseObject({
    observation: z.string(),
    content: z.string(),
    extras: z.record(z.string(), z.unknown()),
    message: z.string(),
    success: z.boolean().optional(),
  })
  .describe('the observation, exactly as the runtime server answered it');

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
