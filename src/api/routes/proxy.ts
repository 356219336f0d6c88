/**
 * The runtime server's protocol, proxied per sandbox so a client needs one address and one key:
 * actions (recorded as events), files (streamed both ways, never buffered), and resource stats.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyReply } from 'fastify';
import {
  type FastifyPluginAsyncZod,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import * as z from 'zod';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import { ActionEnvelope } from '../../protocol/openhands.js';
import type { SandboxManager } from '../../sandboxes/manager.js';
import type { ActionLatency } from '../metrics.js';
import {
  ActionRequest,
  binaryBody,
  DownloadFilesQuery,
  errorResponses,
  IdParams,
  ListFilesBody,
  ObservationSchema,
  UploadFileForm,
  UploadFileQuery,
} from '../schemas.js';

/** Longest a file transfer may stall before the proxy gives up on the runtime server. */
const TRANSFER_IDLE_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * What a proxied call can answer besides its success: the control plane's own refusals (no such
 * sandbox, not running, unreachable, too slow) and the runtime server's, relayed with their code
 * (a path outside the rules, permission denied, no such file, a body too large, no space left).
 */
const PROXIED_ERRORS = [403, 404, 409, 413, 415, 503, 504, 507] as const;

export function proxyRoutes(manager: SandboxManager, latency: ActionLatency): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/sandboxes/:id/execute_action',
      {
        schema: {
          operationId: 'executeAction',
          tags: ['runtime'],
          summary:
            "Run an OpenHands action in the sandbox; recorded with its observation in the sandbox's events",
          params: IdParams,
          body: ActionRequest,
          response: { 200: ObservationSchema, ...errorResponses(...PROXIED_ERRORS) },
        },
        // The body is checked as an envelope only (ActionRequest documents the types): the runtime
        // server checks each type's args, and the body reaches it, and the event log, as it was sent.
        validatorCompiler: (ctx) =>
          validatorCompiler(ctx.httpPart === 'body' ? { ...ctx, schema: ActionEnvelope } : (ctx as never)),
      },
      async (req) => {
        const t0 = performance.now();
        try {
          const obs = await manager.executeAction(req.params.id, req.body);
          return obs as z.output<typeof ObservationSchema>;
        } finally {
          latency.observe((performance.now() - t0) / 1000);
        }
      },
    );

    app.post(
      '/api/sandboxes/:id/list_files',
      {
        schema: {
          operationId: 'listFiles',
          tags: ['runtime'],
          summary: 'List a directory in the sandbox: names, directories first with a trailing /',
          params: IdParams,
          body: ListFilesBody,
          response: { 200: z.array(z.string()), ...errorResponses(...PROXIED_ERRORS) },
        },
      },
      async (req) =>
        manager.proxy(req.params.id, (client) =>
          client.json<string[]>('POST', '/list_files', req.body ?? {}, 30_000),
        ),
    );

    app.get(
      '/api/sandboxes/:id/stats',
      {
        schema: {
          operationId: 'getSandboxStats',
          tags: ['runtime'],
          summary: "The runtime server's /server_info: uptime, idle time and resource use",
          params: IdParams,
          response: {
            200: z.record(z.string(), z.unknown()).describe("the runtime server's /server_info answer"),
            ...errorResponses(404, 409, 503, 504),
          },
        },
      },
      async (req) => manager.proxy(req.params.id, (client) => client.serverInfo()),
    );

    app.get(
      '/api/sandboxes/:id/download_files',
      {
        schema: {
          operationId: 'downloadFiles',
          tags: ['runtime'],
          summary: 'Download a file or directory of the sandbox as a zip',
          params: IdParams,
          querystring: DownloadFilesQuery,
          response: {
            200: binaryBody('application/zip', 'the file or directory, zipped'),
            ...errorResponses(...PROXIED_ERRORS),
          },
        },
      },
      async (req, reply) => {
        const q = new URLSearchParams(req.query as Record<string, string>).toString();
        const res = await manager.proxy(req.params.id, (client) => {
          manager.touch(req.params.id);
          return client.send({
            method: 'GET',
            path: `/download_files?${q}`,
            timeoutMs: TRANSFER_IDLE_TIMEOUT_MS,
          });
        });
        return relay(res, reply);
      },
    );

    // Multipart bodies pass through untouched, as a stream, to the runtime server: on the upload
    // route only (its own scope), so no other route ever sees a stream where it expects JSON.
    await app.register(async (scope) => {
      scope.addContentTypeParser('multipart/form-data', (_req, payload, done) => done(null, payload));
      scope.withTypeProvider<ZodTypeProvider>().post(
        '/api/sandboxes/:id/upload_file',
        {
          schema: {
            operationId: 'uploadFile',
            tags: ['runtime'],
            summary: 'Upload a file into the sandbox (or a zip, extracted, with recursive=true)',
            params: IdParams,
            querystring: UploadFileQuery,
            body: UploadFileForm,
            consumes: ['multipart/form-data'],
            response: {
              200: z.object({ filename: z.string(), destination: z.string(), recursive: z.boolean() }),
              ...errorResponses(...PROXIED_ERRORS),
            },
          },
          // The body is streamed to the runtime server, which parses and checks it; the form above
          // is its documentation. Parameters are checked here as on every route.
          validatorCompiler: (ctx) =>
            ctx.httpPart === 'body' ? () => true : validatorCompiler(ctx as never),
        },
        async (req, reply) => {
          const q = new URLSearchParams(req.query as Record<string, string>).toString();
          const headers: Record<string, string> = {};
          for (const h of ['content-type', 'content-length', 'transfer-encoding']) {
            const v = req.headers[h];
            if (typeof v === 'string') headers[h] = v;
          }
          if (!headers['content-type']?.startsWith('multipart/form-data')) {
            throw new BerthError(
              ErrorCode.UNSUPPORTED_MEDIA_TYPE,
              'Expected a multipart/form-data body with a `file` field',
            );
          }
          const res = await manager.proxy(req.params.id, (client) => {
            manager.touch(req.params.id);
            return client.send({
              method: 'POST',
              path: `/upload_file?${q}`,
              headers,
              body: req.body as unknown as IncomingMessage,
              timeoutMs: TRANSFER_IDLE_TIMEOUT_MS,
            });
          });
          return relay(res, reply);
        },
      );
    });
  };
}

/** The response headers a relayed answer keeps: what describes its content, nothing of the server's own. */
export const RELAYED_RESPONSE_HEADERS = [
  'content-type',
  'content-disposition',
  'content-length',
  'cache-control',
];

/** Streams a runtime server response to the client with its status and content headers. */
export function relay(res: IncomingMessage, reply: FastifyReply): FastifyReply {
  reply.code(res.statusCode ?? 502);
  for (const h of RELAYED_RESPONSE_HEADERS) {
    const v = res.headers[h];
    if (v !== undefined) reply.header(h, v);
  }
  return reply.send(res);
}
