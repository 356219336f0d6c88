/**
 * E2B's envd protocol on the runtime server, under /envd: the Connect services `process.Process` and
 * `filesystem.Filesystem` (JSON codec; unary calls and server streams), `GET /envd/health`,
 * `GET /envd/envs`, and `GET`/`POST /envd/files`. The control plane routes an E2B SDK's envd requests
 * here (by their E2b-Sandbox-Id header) after checking the sandbox's access token; this server checks
 * only its session key, as for every route.
 *
 * The services are built on the process table and loaded on the first envd request (most sandboxes
 * are driven through OpenHands' protocol and never load them).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { drained, writeUnlessBehind } from '../../http/slow-client.js';
import {
  ConnectError,
  endOfStream,
  envelope,
  MAX_ENVELOPE_BYTES,
  readRequestEnvelope,
  readUnaryMessage,
  STREAM_CONTENT_TYPE,
} from '../../protocol/connect.js';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { RuntimeServices } from '../services.js';
import { filesRoutes } from './files-routes.js';
import { type EnvdUser, userFromAuthorization } from './users.js';

export const ENVD_PREFIX = '/envd';
/** envd's default keepalive period, in seconds, when the client names none. */
const DEFAULT_KEEPALIVE_SECONDS = 90;
/** The shortest keepalive period a client may ask for: a tick per second is plenty. */
const MIN_KEEPALIVE_SECONDS = 1;

export interface EnvdCall {
  // The services validate their messages themselves (as the proto3-JSON codec would, loosely).
  // biome-ignore lint/suspicious/noExplicitAny: a decoded JSON message
  message: any;
  user: EnvdUser;
  headers: IncomingHttpHeaders;
  /** Aborted when the client goes away (a stream it stopped reading, a closed connection). */
  signal: AbortSignal;
  /** Connect-Timeout-Ms, when the client set one. */
  timeoutMs: number | undefined;
}

export type UnaryMethod = (call: EnvdCall) => Promise<unknown> | unknown;
/**
 * Sends messages with `send`, resolves when the stream is done; a throw ends it with that error.
 * `send` answers a promise when the client is behind: a producer that can pause waits for it.
 */
export type StreamMethod = (
  call: EnvdCall,
  send: (message: unknown) => Promise<void> | undefined,
) => Promise<void>;

export interface EnvdService {
  unary: Record<string, UnaryMethod>;
  streams: Record<string, StreamMethod>;
  /** The message a silent stream of this service is kept alive with, in its response shape. */
  keepalive: unknown;
}

/** What a failure is in Connect's words. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof BerthError) {
    const code =
      {
        [ErrorCode.NOT_FOUND]: 'not_found',
        [ErrorCode.CONFLICT]: 'already_exists',
        [ErrorCode.VALIDATION_FAILED]: 'invalid_argument',
        [ErrorCode.UNAUTHORIZED]: 'unauthenticated',
        [ErrorCode.PERMISSION_DENIED]: 'permission_denied',
        [ErrorCode.PATH_NOT_ALLOWED]: 'permission_denied',
        [ErrorCode.NO_SPACE]: 'resource_exhausted',
        [ErrorCode.PAYLOAD_TOO_LARGE]: 'resource_exhausted',
        [ErrorCode.TIMEOUT]: 'deadline_exceeded',
        [ErrorCode.UNAVAILABLE]: 'unavailable',
      }[err.code as string] ?? 'internal';
    return new ConnectError(code as ConnectError['code'], err.message);
  }
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return new ConnectError('not_found', e.message);
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new ConnectError('already_exists', e.message);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new ConnectError('permission_denied', e.message);
    case 'ENOTDIR':
    case 'EISDIR':
    case 'EINVAL':
    case 'ENAMETOOLONG':
    case 'ELOOP':
      return new ConnectError('invalid_argument', e.message);
    case 'ENOSPC':
      return new ConnectError('resource_exhausted', e.message);
  }
  return new ConnectError('internal', (err as Error)?.message ?? String(err));
}

export function registerEnvdRoutes(app: FastifyInstance, services: RuntimeServices): void {
  // The services are the runtime server's (made on first use, closed with it); these are their tables.
  let methods: Record<string, EnvdService> | undefined;
  const load = async () => {
    if (methods) return methods;
    const envd = await services.envd.get();
    methods = {
      'process.Process': envd.process.methods(),
      'filesystem.Filesystem': envd.filesystem.methods(),
    };
    return methods;
  };

  app.register(
    async (scope) => {
      // Bodies are read whole here and decoded per the protocol (an envelope or plain JSON).
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser(
        '*',
        { parseAs: 'buffer', bodyLimit: MAX_ENVELOPE_BYTES },
        (_req, body, done) => done(null, body),
      );

      scope.get('/health', async (_req, reply) => reply.code(204).send());
      scope.get('/envs', async () => services.processes.environment.variables);
      await scope.register(filesRoutes);

      scope.post<{ Params: { service: string; method: string } }>('/:service/:method', async (req, reply) => {
        const { service, method } = req.params;
        const streaming = (req.headers['content-type'] ?? '').startsWith(STREAM_CONTENT_TYPE);
        let call: EnvdCall;
        let impl: UnaryMethod | StreamMethod | undefined;
        let svc: EnvdService | undefined;
        const controller = new AbortController();
        // From the start, so a client gone while the services load still ends its call (a watch).
        reply.raw.once('close', () => controller.abort());
        try {
          const services_ = await load();
          svc = services_[service];
          impl = streaming ? svc?.streams[method] : svc?.unary[method];
          if (!impl) throw new ConnectError('unimplemented', `${service}/${method} is not implemented`);
          const body = (req.body as Buffer | undefined) ?? Buffer.alloc(0);
          const timeout = Number(req.headers['connect-timeout-ms']);
          call = {
            message: streaming ? readRequestEnvelope(body) : readUnaryMessage(body),
            user: userFromAuthorization(req.headers.authorization),
            headers: req.headers,
            signal: controller.signal,
            timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : undefined,
          };
        } catch (err) {
          return streaming ? streamError(reply, toConnectError(err)) : unaryError(reply, toConnectError(err));
        }
        if (!streaming) {
          try {
            const answer = await (impl as UnaryMethod)(call);
            return reply
              .code(200)
              .type('application/json')
              .send(JSON.stringify(answer ?? {}));
          } catch (err) {
            return unaryError(reply, toConnectError(err));
          }
        }
        return serveStream(req, reply, controller, impl as StreamMethod, call, svc?.keepalive);
      });
    },
    { prefix: ENVD_PREFIX },
  );
}

function unaryError(reply: FastifyReply, err: ConnectError): FastifyReply {
  return reply.code(err.status).type('application/json').send(JSON.stringify(err.toJSON()));
}

function streamError(reply: FastifyReply, err: ConnectError): FastifyReply {
  // A stream's error is its last envelope, on a 200, as the protocol has it.
  return reply.code(200).type(STREAM_CONTENT_TYPE).send(endOfStream(err));
}

async function serveStream(
  req: FastifyRequest,
  reply: FastifyReply,
  controller: AbortController,
  impl: StreamMethod,
  call: EnvdCall,
  keepaliveMessage: unknown,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': STREAM_CONTENT_TYPE, 'cache-control': 'no-store' });
  res.flushHeaders();
  let done = false;
  res.on('close', () => {
    if (!done) controller.abort();
  });
  // A slow client's pace holds back producers that can wait (see StreamMethod); one that stopped
  // reading is dropped rather than buffered for without bound.
  const send = (message: unknown) =>
    writeUnlessBehind(res, envelope(message)) === 'behind' ? drained(res) : undefined;
  const asked = Number(req.headers['keepalive-ping-interval']);
  const seconds =
    Number.isFinite(asked) && asked > 0 ? Math.max(MIN_KEEPALIVE_SECONDS, asked) : DEFAULT_KEEPALIVE_SECONDS;
  // Keeps a silent stream alive through clients' and proxies' idle timeouts (undici's is 300 s).
  const keepalive = setInterval(() => send(keepaliveMessage), seconds * 1000);
  try {
    await impl(call, send);
    done = true;
    if (!res.destroyed) res.end(endOfStream());
  } catch (err) {
    done = true;
    if (!res.destroyed) res.end(endOfStream(toConnectError(err)));
  } finally {
    clearInterval(keepalive);
  }
}
