/**
 * Runtime server wiring: one Fastify app, the session-key check, the error vocabulary, and the
 * OpenHands adapter's routes. Everything stateful lives in the services passed in.
 */

import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { toBerthError } from '../http/errors.js';
import { installJsonBodyParser, refuseOversizedJson } from '../http/json-body.js';
import { keyMatches } from '../http/keys.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { registerBerthRoutes } from './berth-routes.js';
import { registerCodeInterpreterRoutes } from './code-interpreter/routes.js';
import type { ArchiveLimits } from './core/transfer/archive.js';
import { registerEnvdRoutes } from './envd/routes.js';
import { registerMcpRoutes } from './mcp/routes.js';
import { registerActionRoutes } from './openhands/action-routes.js';
import { registerFileRoutes } from './openhands/file-routes.js';
import { registerVscodeRoutes } from './openhands/vscode-routes.js';
import type { RuntimeServices } from './services.js';

/** Largest JSON body accepted by /execute_action: a FileWriteAction carries whole files. */
export const MAX_JSON_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Routes that never need the session key, as in the reference. Matched against the route the router
 * chose (never the raw URL), so no spelling of another path can pass as one of these.
 */
const PUBLIC_ROUTES = new Set(['/alive', '/server_info']);

/**
 * Stands in for Fastify's schema compilers (Ajv, fast-json-stringify). No route here declares a JSON
 * schema: requests are checked with zod in the handlers. Fastify would still load and set up both
 * libraries while it builds the app, which costs every sandbox's cold start some 25 ms; with these it
 * loads neither, and a route that ever declares a schema fails the start with this message.
 */
function noSchemas(): never {
  throw new Error(
    'the runtime server has no schema compilers (see noSchemas in http.ts): validate requests in the handler',
  );
}

export interface RuntimeHttpOptions {
  sessionApiKey?: string | undefined;
  /** Bounds on uploaded archives. @default the archive module's defaults */
  archiveLimits?: ArchiveLimits | undefined;
  logger: Logger;
}

export async function createRuntimeHttpServer(
  services: RuntimeServices,
  options: RuntimeHttpOptions,
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // Per-request log lines would dominate the log; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_JSON_BODY_BYTES,
    // Keep-alive connections are the fast path for clients sending one action after another.
    keepAliveTimeout: 65_000,
    schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
  });

  // Malformed JSON is a 400 with our error body (the reference answers 422 or 500).
  installJsonBodyParser(app);
  refuseOversizedJson(app, MAX_JSON_BODY_BYTES);

  const key = options.sessionApiKey;
  if (key) {
    app.addHook('onRequest', async (req, reply) => {
      const route = req.routeOptions.url;
      if (route !== undefined && PUBLIC_ROUTES.has(route)) return;
      const given = req.headers['x-session-api-key'];
      if (typeof given !== 'string' || !keyMatches(given, [key])) {
        const err = new BerthError(
          ErrorCode.UNAUTHORIZED,
          given === undefined ? 'Missing X-Session-API-Key header' : 'Invalid API Key',
        );
        return reply.code(err.status).send(err.toBody());
      }
    });
  }

  app.setErrorHandler((error: FastifyError | BerthError, _req, reply) => {
    const berth = toBerthError(error);
    if (berth.code === ErrorCode.INTERNAL) options.logger.error({ err: error }, 'request failed');
    reply.code(berth.status).send(berth.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    const err = new BerthError(ErrorCode.NOT_FOUND, `No route ${req.method} ${req.url.split('?', 1)[0]}`);
    reply.code(err.status).send(err.toBody());
  });

  app.get('/alive', async () => ({ status: services.ready() ? 'ok' : 'not initialized' }));
  app.get('/server_info', async () => services.serverInfo());

  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  registerActionRoutes(app, services);
  registerBerthRoutes(app, services);
  registerMcpRoutes(app, services);
  registerVscodeRoutes(app);
  registerEnvdRoutes(app, services);
  registerCodeInterpreterRoutes(app, services);
  await registerFileRoutes(app, services, { archiveLimits: options.archiveLimits });
  return app;
}
