/**
 * E2B's envd, reached through the control plane's own origin (E2B_SANDBOX_URL=http://<berth>): every
 * envd request of the SDKs carries `E2b-Sandbox-Id` and `E2b-Sandbox-Port`, and is routed by them to
 * the sandbox's runtime server, which serves envd under /envd. Signed file URLs carry no header (the
 * SDK builds them as `<origin>/files?...&signature=`), so a signed /files is routed by its signature.
 *
 * The sandbox's access token (X-Access-Token) is checked here, on every request, /health included; a
 * signed /files needs a signature made with it instead. The token never goes on to the sandbox, and
 * neither do API keys or cookies. A sandbox that is gone, paused or stopped answers 502, as E2B's
 * proxy does (the SDKs read it as "not running"), and a kill ends its open streams by dropping their
 * connections, which the SDKs report as "the sandbox was killed".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { toBerthError } from '../../http/errors.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { SandboxManager } from '../../sandboxes/manager.js';
import type { SandboxRecord } from '../../store/sandboxes.js';
import { relay } from '../routes/proxy.js';
import { findE2bSandbox } from './rest.js';
import {
  envdAccessToken,
  type SignedQuery,
  signatureMatches,
  signedQuery,
  tokenMatches,
  trafficAccessToken,
} from './tokens.js';

/** Where envd requests are routed to inside the control plane (see e2bRewriteUrl). */
export const ENVD_ROUTE_PREFIX = '/e2b/envd';
/** envd's port in E2B's sandboxes: the one the SDKs name in E2b-Sandbox-Port. */
export const ENVD_PORT = 49983;
/** The code interpreter's port (`@e2b/code-interpreter`'s JUPYTER_PORT). */
export const CODE_INTERPRETER_PORT = 49999;
/** Where each port's requests go on the runtime server. */
const PORT_PATHS: Record<number, string> = {
  [ENVD_PORT]: '/envd',
  [CODE_INTERPRETER_PORT]: '/code-interpreter',
};
/** Stands for "the sandbox whose token signed this URL" in a rewritten path. */
const BY_SIGNATURE = '-';
/** E2B's sandbox ids are lowercase letters and digits; Berth's are hex. */
const SANDBOX_ID = /^[a-z0-9]{1,64}$/;
/** Longest a unary exchange may stall; streams (and file transfers) are exempt. */
const IDLE_TIMEOUT_MS = 10 * 60 * 1000;

/** Request headers that go on to envd: the protocol's own, and the user (Basic auth names it). */
const FORWARDED_REQUEST_HEADERS = [
  'content-type',
  'content-length',
  'transfer-encoding',
  'content-encoding',
  'accept',
  'connect-protocol-version',
  'connect-timeout-ms',
  'keepalive-ping-interval',
];

/**
 * Fastify's rewriteUrl: an E2B envd request (by its header, or a signed /files) goes to the envd
 * routes, with the sandbox and port in the path; anything else is left as it is.
 */
export function e2bRewriteUrl(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const id = req.headers['e2b-sandbox-id'];
  if (typeof id === 'string' && SANDBOX_ID.test(id)) {
    const port = req.headers['e2b-sandbox-port'];
    const p = typeof port === 'string' && /^\d{1,5}$/.test(port) ? port : String(ENVD_PORT);
    return `${ENVD_ROUTE_PREFIX}/${id}/${p}${url.startsWith('/') ? url : `/${url}`}`;
  }
  if (/^\/files(\?|$)/.test(url) && /[?&]signature=/.test(url)) {
    return `${ENVD_ROUTE_PREFIX}/${BY_SIGNATURE}/${ENVD_PORT}${url}`;
  }
  return url;
}

/** E2B's proxy answers: 502 with a JSON body naming the sandbox. */
function proxyAnswer(
  reply: FastifyReply,
  status: number,
  message: string,
  extra: Record<string, unknown> = {},
) {
  return reply
    .code(status)
    .type('application/json')
    .send({ code: status, message, ...extra });
}

export function envdProxyRoutes(manager: SandboxManager): FastifyPluginAsync {
  return async (app) => {
    // Bodies stay streams for envd to parse (uploads of any size, Connect envelopes).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

    app.setErrorHandler((error, req, reply) => {
      const berth = toBerthError(error, req);
      if (berth.code === ErrorCode.INTERNAL) req.log.error({ err: error }, 'E2B envd request failed');
      // Not reachable now (gone, stopped, paused mid-request, its server cut off by a kill): what
      // E2B's proxy says of such a sandbox, and what the SDKs' health probe reads as "killed".
      const unreachable =
        berth.status >= 500 || ([ErrorCode.NOT_FOUND, ErrorCode.CONFLICT] as string[]).includes(berth.code);
      const status = unreachable ? 502 : berth.status;
      reply.code(status).send({ code: status, message: berth.message });
    });

    // Open envd exchanges by sandbox, ended when the sandbox goes (see the header).
    const open = new Map<string, Set<ServerResponse>>();
    manager.on('sandbox', (sb) => {
      if (sb.state === 'running' || sb.state === 'starting') return;
      for (const res of open.get(sb.id) ?? []) res.destroy();
      open.delete(sb.id);
    });

    const handler = async (req: FastifyRequest, reply: FastifyReply) => {
      const params = req.params as { sandbox: string; port: string };
      const rest = forwardedPath(req.url);
      if (rest === undefined) return proxyAnswer(reply, 400, 'invalid path');
      const query = req.query as Record<string, unknown>;
      const signed = rest === 'files' ? signedQuery(query) : undefined;
      const op = req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write';

      let rec: SandboxRecord | undefined;
      // A request let in by its header token is not also held to its URL's signature (as in envd).
      let bySignature = true;
      if (params.sandbox === BY_SIGNATURE) {
        rec = signed ? findBySignature(manager, signed, op) : undefined;
        if (!rec) return proxyAnswer(reply, 401, 'invalid signature');
      } else {
        rec = findE2bSandbox(manager, params.sandbox);
        if (!rec) return proxyAnswer(reply, 502, 'The sandbox was not found', { sandboxId: params.sandbox });
        const token = envdAccessToken(rec.session_api_key);
        const presented = req.headers['x-access-token'];
        const traffic = req.headers['e2b-traffic-access-token'];
        // The traffic token is the weaker one: it opens the code interpreter's context calls (which
        // carry only it), never envd and never code execution, which needs the access token.
        const trafficOpens = Number(params.port) === CODE_INTERPRETER_PORT && !/^execute(\/|$)/.test(rest);
        const byToken =
          tokenMatches(typeof presented === 'string' ? presented : undefined, token) ||
          (trafficOpens &&
            tokenMatches(
              typeof traffic === 'string' ? traffic : undefined,
              trafficAccessToken(rec.session_api_key),
            ));
        bySignature = !byToken;
        if (!byToken && !(signed && signatureMatches(signed, op, token)))
          return proxyAnswer(
            reply,
            401,
            signed || rest !== 'files'
              ? 'unauthorized access, please provide a valid access token or method signing if supported'
              : 'missing signature query parameter',
          );
      }
      if (bySignature && signed?.expiration !== undefined && signed.expiration * 1000 < Date.now())
        return proxyAnswer(reply, 401, 'signature is already expired');
      const target = PORT_PATHS[Number(params.port)];
      if (target === undefined || (signed && Number(params.port) !== ENVD_PORT))
        return proxyAnswer(reply, 502, 'The sandbox is running but port is not open', {
          sandboxId: rec.id,
          port: Number(params.port),
        });
      if (rec.state === 'exited')
        rec = await manager.startIfExited(rec.id, 'started again for an E2B request');
      if (rec.state !== 'running')
        return proxyAnswer(reply, 502, `The sandbox is ${rec.state === 'stopped' ? 'paused' : rec.state}`, {
          sandboxId: rec.id,
        });
      // Killed but not yet recorded so: its server may still answer for a moment, but the SDKs ask
      // /health right after their stream was cut to learn whether the sandbox is gone.
      if (manager.isEnding(rec.id))
        return proxyAnswer(reply, 502, 'The sandbox is being killed', { sandboxId: rec.id });

      const search = forwardedQuery(req.url);
      const headers: Record<string, string> = {};
      for (const h of FORWARDED_REQUEST_HEADERS) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const auth = req.headers.authorization;
      if (typeof auth === 'string' && /^Basic\s/i.test(auth)) headers.authorization = auth;
      const streaming =
        (req.headers['content-type'] ?? '').startsWith('application/connect+json') ||
        rest === 'files' ||
        target !== '/envd';
      const id = rec.id;
      // A command streaming for an hour is work: the sandbox is not idle while it runs.
      const release = manager.hold(id);
      // Noted before the await: a client that leaves while the request is on its way has no later close.
      let gone = false;
      reply.raw.on('close', () => {
        gone = true;
        release();
      });
      const res = await manager
        .proxy(id, (client) =>
          client.send({
            method: req.method,
            path: `${target}/${rest}${search}`,
            headers,
            body: hasBody(req) ? (req.body as IncomingMessage) : undefined,
            timeoutMs: streaming ? 0 : IDLE_TIMEOUT_MS,
          }),
        )
        .catch((err: unknown) => {
          release();
          throw err;
        });
      if (gone) {
        res.destroy();
        reply.hijack();
        return;
      }
      const mine = open.get(id) ?? new Set<ServerResponse>();
      open.set(id, mine);
      mine.add(reply.raw);
      reply.raw.on('close', () => {
        mine.delete(reply.raw);
        res.destroy();
      });
      // A dropped upstream (the container killed) drops the client's connection too, not a clean end.
      res.on('aborted', () => reply.raw.destroy());
      res.on('error', () => reply.raw.destroy());
      return relay(res, reply);
    };

    const route = { config: { e2bEnvd: true }, schema: { hide: true } } as const;
    app.all(`${ENVD_ROUTE_PREFIX}/:sandbox/:port/*`, route, handler);
  };
}

/** The live sandbox whose access token made this signature. */
function findBySignature(
  manager: SandboxManager,
  signed: SignedQuery,
  op: 'read' | 'write',
): SandboxRecord | undefined {
  // One query for every state a file can be reached in (an exited sandbox is started again).
  return manager
    .list({ state: ['running', 'exited', 'paused', 'stopped'] })
    .find((rec) => signatureMatches(signed, op, envdAccessToken(rec.session_api_key)));
}

/**
 * The path after /e2b/envd/<sandbox>/<port>/ as the client sent it (still percent-encoded), or
 * undefined when a segment would climb out of envd's routes once decoded ('..', '.', an encoded
 * slash or backslash): the runtime server would otherwise be asked for `/envd/../execute_action`.
 */
export function forwardedPath(url: string): string | undefined {
  const path = url.split('?', 1)[0] as string;
  const parts = path.split('/').slice(5); // '', 'e2b', 'envd', sandbox, port
  for (const part of parts) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      return undefined;
    }
    if (decoded === '..' || decoded === '.' || /[/\\\0]/.test(decoded)) return undefined;
  }
  return parts.join('/');
}

/** The query as sent, without what only the control plane reads (the signature). */
function forwardedQuery(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return '';
  const params = new URLSearchParams(url.slice(at + 1));
  params.delete('signature');
  params.delete('signature_expiration');
  const text = params.toString();
  return text ? `?${text}` : '';
}

function hasBody(req: FastifyRequest): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}
