/**
 * API keys for the control plane. With keys configured, every request needs
 * `Authorization: Bearer <key>` unless the route the router MATCHED is marked public (/health,
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
    key === undefined || key === '' ? 'Missing API key: send Authorization: Bearer <key>' : 'Invalid API key',
  );
}

export function installAuth(app: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return;
  app.addHook('onRequest', async (req, reply) => {
    if (isPublicRoute(req)) return;
    const err = keyRefusal(req, keys);
    if (err) return reply.code(err.status).send(err.toBody());
  });
}
