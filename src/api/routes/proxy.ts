/**
 * The runtime server's protocol, proxied per sandbox so a client needs one address and one key:
 * actions (recorded as events), files (streamed both ways, never buffered), and resource stats.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import { ActionEnvelope } from '../../protocol/openhands.js';
import type { SandboxManager } from '../../sandboxes/manager.js';
import type { ActionLatency } from '../metrics.js';

/** Longest a file transfer may stall before the proxy gives up on the runtime server. */
const TRANSFER_IDLE_TIMEOUT_MS = 10 * 60 * 1000;

type IdReq = { Params: { id: string } };

export function proxyRoutes(manager: SandboxManager, latency: ActionLatency): FastifyPluginAsync {
  return async (app) => {
    // Multipart bodies pass through untouched, as a stream, to the runtime server.
    app.addContentTypeParser('multipart/form-data', (_req, payload, done) => done(null, payload));

    app.post<IdReq>('/api/sandboxes/:id/execute_action', async (req) => {
      const parsed = ActionEnvelope.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new BerthError(
          ErrorCode.VALIDATION_FAILED,
          `Invalid field ${['body', ...(issue?.path ?? [])].join('.')}: ${issue?.message}`,
        );
      }
      const t0 = performance.now();
      try {
        return await manager.executeAction(req.params.id, req.body);
      } finally {
        latency.observe((performance.now() - t0) / 1000);
      }
    });

    app.post<IdReq>('/api/sandboxes/:id/list_files', async (req) => {
      const client = manager.client(req.params.id);
      return client.json('POST', '/list_files', req.body ?? {}, 30_000);
    });

    app.get<IdReq>('/api/sandboxes/:id/stats', async (req) => manager.client(req.params.id).serverInfo());

    app.get<IdReq & { Querystring: Record<string, string> }>(
      '/api/sandboxes/:id/download_files',
      async (req, reply) => {
        const client = manager.client(req.params.id);
        manager.touch(req.params.id);
        const q = new URLSearchParams(req.query).toString();
        const res = await client.send({
          method: 'GET',
          path: `/download_files?${q}`,
          timeoutMs: TRANSFER_IDLE_TIMEOUT_MS,
        });
        return relay(res, reply);
      },
    );

    app.post<IdReq & { Querystring: Record<string, string> }>(
      '/api/sandboxes/:id/upload_file',
      async (req, reply) => {
        const client = manager.client(req.params.id);
        manager.touch(req.params.id);
        const q = new URLSearchParams(req.query).toString();
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
        const res = await client.send({
          method: 'POST',
          path: `/upload_file?${q}`,
          headers,
          body: req.body as IncomingMessage,
          timeoutMs: TRANSFER_IDLE_TIMEOUT_MS,
        });
        return relay(res, reply);
      },
    );
  };
}

/** Streams a runtime server response to the client with its status and content headers. */
function relay(res: IncomingMessage, reply: FastifyReply): FastifyReply {
  reply.code(res.statusCode ?? 502);
  for (const h of ['content-type', 'content-disposition', 'content-length']) {
    const v = res.headers[h];
    if (v !== undefined) reply.header(h, v);
  }
  return reply.send(res);
}
