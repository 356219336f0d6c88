/**
 * API keys for the control plane. With keys configured, every request needs
 * `Authorization: Bearer <key>` (or `X-API-Key: <key>`, as OpenHands and E2B clients send it) unless the route the router MATCHED is marked public (/health,
 * /openapi.json, the web UI's files). The decision is made on the matched route, never on the raw
 * URL, so no spelling of a path (percent-encoding, doubled slashes, dot segments, case, `;`
 * parameters) can reach a protected handler without the key; a request that matches no route is
 * answered 401 rather than 404, so unauthenticated callers learn nothing about which paths exist.
 * Browsers cannot set headers on WebSockets, so those may pass the key as `?token=<key>` instead.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { keyMatches } from '../http/keys.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Callers need no API key for this route. */
    public?: boolean;
    /**
     * The route takes either an API key or the session key of the sandbox it names, and checks them
     * itself (sandboxKeyRefusal): clients of a sandbox's runtime server hold only that key.
     */
    sandboxKey?: boolean;
    /** Errors of this route are FastAPI-style `{"detail": ...}` bodies (OpenHands' remote API). */
    detailErrors?: boolean;
    /** Errors of this route are E2B's `{"code": <status>, "message"}` bodies. */
    e2bErrors?: boolean;
    /** The route checks an E2B sandbox's access token (or a file URL's signature) itself. */
    e2bEnvd?: boolean;
  }
}

/** Route option that opens a route to callers without a key: `{ config: PUBLIC_ROUTE }`. */
export const PUBLIC_ROUTE = { public: true } as const;

export function presentedKey(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer[ \t]+(.*)$/i.exec(header);
    return m ? (m[1] ?? '').trim() : '';
  }
  // OpenHands' RemoteRuntime and the E2B SDKs send their key this way.
  const apiKey = req.headers['x-api-key'];
  if (apiKey !== undefined) return Array.isArray(apiKey) ? '' : apiKey.trim();
  const token = (req.query as Record<string, unknown> | undefined)?.token;
  return typeof token === 'string' ? token : undefined;
}

function isPublicRoute(req: FastifyRequest): boolean {
  // The 404 handler's config carries no `public`: unmatched requests are protected too.
  return req.routeOptions.config?.public === true;
}

/** Marks every route registered in `scope` (and its children) public, e.g. the static web UI files. */
export function markRoutesPublic(scope: FastifyInstance): void {
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, ...PUBLIC_ROUTE };
  });
}

/** The 401 for a request without a right key, or undefined when it has one (or no keys are set). */
export function keyRefusal(req: FastifyRequest, keys: readonly string[]): BerthError | undefined {
  if (keys.length === 0) return undefined;
  const key = presentedKey(req);
  if (key !== undefined && key !== '' && keyMatches(key, keys)) return undefined;
  return new BerthError(
    ErrorCode.UNAUTHORIZED,
    key === undefined || key === ''
      ? 'Missing API key: send Authorization: Bearer <key> (or X-API-Key: <key>)'
      : 'Invalid API key',
  );
}

/**
 * For a sandboxKey route: undefined when the request carries an API key or the sandbox's session key
 * (X-Session-API-Key, as runtime-server clients send it), else the 401. `sessionKey` is undefined
 * for a sandbox that does not exist, so an unknown id looks the same as a wrong key.
 */
export function sandboxKeyRefusal(
  req: FastifyRequest,
  keys: readonly string[],
  sessionKey: string | undefined,
): BerthError | undefined {
  const presented = req.headers['x-session-api-key'];
  if (typeof presented === 'string' && presented !== '' && sessionKey !== undefined) {
    if (keyMatches(presented, [sessionKey])) return undefined;
  }
  const refused = keyRefusal(req, keys);
  if (!refused) return undefined;
  return presented === undefined
    ? refused
    : new BerthError(ErrorCode.UNAUTHORIZED, 'Invalid session key (X-Session-API-Key) for this sandbox');
}

/** The body an error takes on this route: Berth's, or FastAPI's `{"detail"}` (with the code beside it). */
export function errorBody(req: FastifyRequest, err: BerthError): object {
  const config = req.routeOptions.config;
  if (config?.e2bErrors === true) return { code: err.status, message: err.message };
  return config?.detailErrors === true ? detailBody(err) : err.toBody();
}

/** FastAPI's error body, `{"detail"}`, with Berth's code beside it. */
export function detailBody(err: BerthError): { detail: string; code: string } {
  return { detail: err.message, code: err.code };
}

export function installAuth(app: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return;
  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config;
    // These check a key of their own: a sandbox's session key, or an E2B sandbox's access token.
    if (isPublicRoute(req) || config?.sandboxKey === true || config?.e2bEnvd === true) return;
    const err = keyRefusal(req, keys);
    if (err) return reply.code(err.status).send(errorBody(req, err));
  });
}
