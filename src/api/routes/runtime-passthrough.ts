/**
 * A sandbox's runtime server, whole, through the control plane: /api/sandboxes/{id}/runtime/<path>
 * reaches <path> on the sandbox's runtime server, any method, bodies and answers streamed both ways
 * (server-sent events too). It is the `url` that OpenHands' remote API hands out, so a client needs
 * only the control plane's address. It takes the sandbox's session key (X-Session-API-Key) or an API
 * key; the API key, cookies and any Authorization never go on to the sandbox. Actions are recorded
 * in the sandbox's event log as on the REST route.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { SandboxManager } from '../../sandboxes/manager.js';
import type { SandboxRecord } from '../../store/sandboxes.js';
import { sandboxKeyRefusal } from '../auth.js';
import { relay } from './proxy.js';

export const RUNTIME_PASSTHROUGH = '/api/sandboxes/:id/runtime';
/** Longest a proxied exchange may stall (no byte either way); event streams are exempt. */
const IDLE_TIMEOUT_MS = 10 * 60 * 1000;
/** Largest action body read to record it (the REST route's limit). */
const MAX_ACTION_BODY_BYTES = 64 * 1024 * 1024;

/** Request headers that go on: content description only. The session key is the sandbox's own. */
const FORWARDED_REQUEST_HEADERS = [
  'content-type',
  'content-length',
  'transfer-encoding',
  'accept',
  'last-event-id',
];

export function runtimePassthrough(manager: SandboxManager, apiKeys: readonly string[]): FastifyPluginAsync {
  return async (app) => {
    // Every body stays a stream, untouched, for the runtime server to parse.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const { id } = req.params as { id: string };
      const rest = (req.params as { '*': string })['*'] ?? '';
      const rec = findSandbox(manager, id);
      const refused = sandboxKeyRefusal(req, apiKeys, rec?.session_api_key);
      if (refused) throw refused;
      if (!rec) throw new BerthError(ErrorCode.NOT_FOUND, `No sandbox ${id}`);
      requireReachable(await manager.startIfExited(id, 'started again for a request'));
      const search = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
      const path = `/${rest}${search}`;
      if (req.method === 'POST' && rest === 'execute_action') {
        const body = await readJson(req.body as IncomingMessage | undefined);
        return reply.send(await manager.executeAction(id, body));
      }
      const headers: Record<string, string> = {
        // So a server that names its own URLs (an event stream's endpoint) can name them here.
        'x-forwarded-prefix': RUNTIME_PASSTHROUGH.replace(':id', id),
      };
      for (const h of FORWARDED_REQUEST_HEADERS) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const stream = (req.headers.accept ?? '').includes('text/event-stream');
      manager.touch(id);
      const res = await manager.proxy(id, (client) =>
        client.send({
          method: req.method,
          path,
          headers,
          body: hasBody(req) ? (req.body as IncomingMessage) : undefined,
          timeoutMs: stream ? 0 : IDLE_TIMEOUT_MS,
        }),
      );
      // A client that goes away ends the exchange with the sandbox too (an event stream never ends).
      reply.raw.on('close', () => res.destroy());
      return relay(res, reply);
    };

    const route = { config: { sandboxKey: true }, schema: { hide: true } } as const;
    app.all(RUNTIME_PASSTHROUGH, route, handler);
    app.all(`${RUNTIME_PASSTHROUGH}/*`, route, handler);
  };
}

function findSandbox(manager: SandboxManager, id: string): SandboxRecord | undefined {
  try {
    return manager.get(id);
  } catch (err) {
    if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) return undefined;
    throw err;
  }
}

/**
 * A sandbox that can take the request is running (an exited one was started again first). A paused or
 * stopped one is 503, which OpenHands answers with /resume; a removed one is 404.
 */
function requireReachable(rec: SandboxRecord): void {
  if (rec.state === 'running') return;
  if (rec.state === 'deleted' || rec.state === 'vanished') {
    throw new BerthError(ErrorCode.NOT_FOUND, `Sandbox ${rec.id} is ${rec.state}`);
  }
  throw new BerthError(
    ErrorCode.UNAVAILABLE,
    `Sandbox ${rec.id} is ${rec.state}${rec.state === 'paused' || rec.state === 'stopped' ? ': resume it first' : ''}`,
  );
}

function hasBody(req: FastifyRequest): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

async function readJson(body: IncomingMessage | undefined): Promise<unknown> {
  if (!body) throw new BerthError(ErrorCode.INVALID_JSON, 'The action body is empty');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += (c as Buffer).length;
    if (size > MAX_ACTION_BODY_BYTES) {
      throw new BerthError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `An action body is at most ${MAX_ACTION_BODY_BYTES} bytes`,
      );
    }
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BerthError(ErrorCode.INVALID_JSON, 'The action body is not valid JSON');
  }
}
