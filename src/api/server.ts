/**
 * The control plane on port 3000: REST + WebSocket API, the proxied runtime protocol, event logs,
 * /health, /metrics, /openapi.json and the web UI, over one SandboxManager.
 */

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import {
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { type Logger, pino } from 'pino';
import type { ControlPlaneConfig } from '../config/control-plane.js';
import { toBerthError } from '../http/errors.js';
import { installJsonBodyParser, refuseOversizedJson } from '../http/json-body.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { VERSION } from '../protocol/version.js';
import { type ManagerSettings, SandboxManager } from '../sandboxes/manager.js';
import type { RuntimeImages, SandboxRuntime } from '../sandboxes/types.js';
import type { Store } from '../store/store.js';
import { errorBody, installAuth, keyRefusal, markRoutesPublic, PUBLIC_ROUTE } from './auth.js';
import { e2bRewriteUrl, envdProxyRoutes } from './e2b/envd-proxy.js';
import { E2B_PREFIX, e2bRestRoutes } from './e2b/rest.js';
import { ActionLatency, renderMetrics } from './metrics.js';
import { BuildJobs } from './openhands/builds.js';
import { OPENHANDS_PREFIX, openHandsRoutes } from './openhands/routes.js';
import { proxyRoutes } from './routes/proxy.js';
import { runtimePassthrough } from './routes/runtime-passthrough.js';
import { sandboxRoutes } from './routes/sandboxes.js';
import { streamRoutes } from './routes/streams.js';
import { openApiTransform } from './schemas.js';

/**
 * The document's description: what OpenAPI cannot describe as operations (the WebSockets, the
 * runtime pass-through) is described here, with the shapes of its messages.
 */
const API_DESCRIPTION = `Sandboxes for AI agents.

Keys: \`Authorization: Bearer <key>\` or \`X-API-Key: <key>\` on every route but /health and /openapi.json.
Browsers may pass the key as \`?token=<key>\` on the WebSockets.

## WebSockets (JSON text frames)

- \`GET /api/events/stream\`: every sandbox's events as they are recorded (SandboxEvent objects), and
  \`{"type": "sandbox", "sandbox": Sandbox}\` whenever a sandbox changes.
- \`GET /api/sandboxes/{id}/events/stream?after=<seq>\`: one sandbox's events after \`seq\` (replayed from the
  log, then live; no gap, no repeat), as SandboxEvent objects. An unknown sandbox:
  \`{"type": "error", "code": "NOT_FOUND", "message": ...}\`, then close code 4404.
- \`GET /api/sandboxes/{id}/terminal?session=<name>&cols=<n>&rows=<n>\`: an interactive terminal in the sandbox.
  Client frames: \`{"type": "input", "data": "<text>"}\`, \`{"type": "resize", "cols": 2-1000, "rows": 2-500}\`.
  Server frames: \`{"type": "output", "data": "<text>"}\`, \`{"type": "exit", "code": <n>}\`,
  \`{"type": "error", "code": "<CODE>", "message": "<text>"}\`.
- \`GET /api/sandboxes/{id}/exec\`: one fresh process per socket, like \`docker exec\` (not the agent's shell).
  First client frame: \`{"type": "start", "argv": ["prog", "arg", ...], "cwd"?, "env"?: {...}, "user"?: "<name|uid>",
  "pty"?: {"cols", "rows"}, "stdin"?: true, "timeout_ms"?: <n>}\`; then \`{"type": "input", "data": "<base64>"}\`,
  \`{"type": "close_stdin"}\`, \`{"type": "signal", "signal": "SIGINT"}\`, \`{"type": "kill", "signal"?: "SIGTERM"}\`
  (SIGKILL after a grace), \`{"type": "resize", "cols", "rows"}\`. Server frames: \`{"type": "started", "id", "pid"}\`,
  \`{"type": "stdout"|"stderr"|"pty", "data": "<base64>"}\`, then \`{"type": "exit", "exit_code", "signal",
  "timed_out"}\` and the close. Closing the socket before the exit ends the process.

## The runtime pass-through

\`/api/sandboxes/{id}/runtime/<path>\` (any method) reaches \`<path>\` on the sandbox's runtime server (the
OpenHands action-execution protocol: /alive, /execute_action, /upload_file, /download_files, /list_files,
/update_mcp_server, /mcp/sse, ...), bodies and event streams streamed both ways. It takes the sandbox's
session key (\`X-Session-API-Key\`) or an API key, and forwards neither the API key nor cookies.`;
/** Largest JSON body the API accepts (a write action carries a whole file). */
export const MAX_API_BODY_BYTES = 64 * 1024 * 1024;
/** Longest path parameter (as sent, percent-encoded) the router hands to a route. */
const MAX_PATH_PARAM_BYTES = 1024;

export interface ControlPlaneDeps {
  store: Store;
  runtime: SandboxRuntime;
  settings: ManagerSettings;
  apiKeys: readonly string[];
  logger: Logger;
  /** Built web UI to serve at / (web/dist); omitted: no UI. */
  webDir?: string | undefined;
  /** Images sandboxes run on, for OpenHands' /start and image routes; omitted: those answer 503. */
  images?: RuntimeImages | undefined;
  /** Whether the Docker engine answers, for /health. */
  engineHealthy?: () => Promise<boolean>;
}

export interface ControlPlane {
  app: FastifyInstance;
  manager: SandboxManager;
  close(): Promise<void>;
}

export async function buildControlPlane(deps: ControlPlaneDeps): Promise<ControlPlane> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request log lines would dominate the log; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_API_BODY_BYTES,
    keepAliveTimeout: 65_000,
    // Long enough for any id the routes' own rules take (64 characters, percent-encoded), so those
    // rules decide and answer 400; longer still is a framework error, answered below.
    routerOptions: { maxParamLength: MAX_PATH_PARAM_BYTES },
    // E2B's SDKs send envd requests to this origin's root, told apart by their E2b-Sandbox-Id header.
    rewriteUrl: e2bRewriteUrl,
    // Requests the router refuses before any route or hook runs (a path that does not decode, a
    // parameter over maxParamLength): the key is still required first, and the answer is our error
    // body (Fastify's own has another shape and a 414 outside the vocabulary).
    frameworkErrors: (error, req, reply) => {
      const refused =
        keyRefusal(req, deps.apiKeys) ??
        new BerthError(
          ErrorCode.VALIDATION_FAILED,
          error.code === 'FST_ERR_MAX_PARAM_LENGTH'
            ? `A path parameter is longer than ${MAX_PATH_PARAM_BYTES} bytes`
            : 'The request path is not a valid URL (a broken percent-encoding?)',
        );
      (reply as FastifyReply).code(refused.status).send(refused.toBody());
    },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  installJsonBodyParser(app);
  refuseOversizedJson(app, MAX_API_BODY_BYTES);

  app.setErrorHandler((error, req, reply) => {
    const berth = toBerthError(error, req);
    if (berth.code === ErrorCode.INTERNAL) deps.logger.error({ err: error }, 'request failed');
    reply.code(berth.status).send(errorBody(req, berth));
  });
  app.setNotFoundHandler((req, reply) => {
    const err = new BerthError(ErrorCode.NOT_FOUND, `No route ${req.method} ${req.url.split('?', 1)[0]}`);
    reply.code(err.status).send(err.toBody());
  });

  await app.register(fastifySwagger, {
    openapi: {
      // 3.1 (JSON Schema 2020-12), so the rules on map keys (env names, label keys) are in the
      // document too: 3.0 has no propertyNames.
      openapi: '3.1.0',
      info: { title: 'Berth control plane', version: VERSION, description: API_DESCRIPTION },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: openApiTransform,
    // Schemas with a .meta({ id }) become components.schemas, referenced where they are used.
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  installAuth(app, deps.apiKeys);

  const manager = new SandboxManager(deps.store, deps.runtime, deps.settings, deps.logger);
  const latency = new ActionLatency();

  // Open to everyone (load balancers, the web UI before login), so it says nothing about sandboxes.
  app.get('/health', { schema: { hide: true }, config: PUBLIC_ROUTE }, async () => {
    const docker = deps.engineHealthy ? await deps.engineHealthy().catch(() => false) : true;
    return { status: docker ? 'ok' : 'degraded', docker: docker ? 'ok' : 'unavailable', version: VERSION };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    reply.type('text/plain; version=0.0.4');
    return renderMetrics({ sandboxesByState: manager.countByState(), poolSize: manager.poolSize(), latency });
  });
  app.get('/openapi.json', { schema: { hide: true }, config: PUBLIC_ROUTE }, async () => app.swagger());
  app.get('/api/auth/check', { schema: { hide: true } }, async () => ({ ok: true }));

  await app.register(sandboxRoutes(manager));
  await app.register(proxyRoutes(manager, latency));
  await app.register(streamRoutes(manager, deps.store));
  await app.register(runtimePassthrough(manager, deps.apiKeys));
  await app.register(
    openHandsRoutes({
      manager,
      images: deps.images,
      builds: new BuildJobs(),
      defaultLimits: deps.settings.limits,
    }),
    { prefix: OPENHANDS_PREFIX },
  );
  await app.register(e2bRestRoutes({ manager, defaultLimits: deps.settings.limits }), { prefix: E2B_PREFIX });
  await app.register(envdProxyRoutes(manager));

  if (deps.webDir && existsSync(join(deps.webDir, 'index.html'))) {
    // wildcard:false registers one route per built file, and / for index.html; all of them public.
    const webDir = resolve(deps.webDir);
    await app.register(async (scope) => {
      markRoutesPublic(scope);
      await scope.register(fastifyStatic, { root: webDir, prefix: '/', wildcard: false });
    });
  }

  return {
    app,
    manager,
    async close() {
      await app.close();
      await manager.dispose();
    },
  };
}

/** Settings for the manager, from the loaded configuration. */
export function managerSettings(
  config: ControlPlaneConfig,
  defaultImage: () => Promise<string>,
): ManagerSettings {
  const s = config.sandbox;
  return {
    defaultImage,
    workspaceHostPath: s.workspace_mount_path ?? s.workspace_base ?? undefined,
    workspaceLocalPath: s.workspace_base ?? undefined,
    workspaceMountPathInSandbox: s.workspace_mount_path_in_sandbox,
    volumes: [...s.volumes],
    userId: s.user_id,
    userName: s.user_name,
    bindingAddress: s.runtime_binding_address,
    network: s.network,
    useHostNetwork: s.use_host_network,
    env: { ...s.env, ...s.runtime_startup_env_vars },
    limits: {
      cpus: s.cpus,
      memoryMb: s.memory_mb,
      pids: s.pids,
      ...(s.disk_mb ? { diskMb: s.disk_mb } : {}),
    },
    ociRuntime: s.oci_runtime ?? undefined,
    enableGpu: s.enable_gpu,
    startTimeoutMs: s.startup_timeout_seconds * 1000,
    lifetimeSeconds: s.lifetime_seconds,
    idleTimeoutSeconds: s.idle_timeout_seconds,
    keepRuntimeAlive: s.keep_runtime_alive,
    poolSize: s.pool_size,
    actionTimeoutSeconds: s.timeout,
    policy: {
      networks: [...config.policy.networks],
      mountRoots: [...config.policy.mount_roots],
      namedVolumes: config.policy.named_volumes,
      maxCpus: config.policy.max_cpus ?? s.cpus,
      maxMemoryMb: config.policy.max_memory_mb ?? s.memory_mb,
      maxPids: config.policy.max_pids ?? s.pids,
      // With no default disk limit (0), a request may ask for any.
      maxDiskMb: config.policy.max_disk_mb ?? (s.disk_mb || undefined),
      ociRuntimes: [...config.policy.oci_runtimes],
      defaultOciRuntime: s.oci_runtime ?? undefined,
      workspaceBase: s.workspace_mount_path ?? s.workspace_base ?? undefined,
      defaultNetwork: s.use_host_network ? 'host' : s.network,
      hostPathsVisible: !config.control_plane_container,
    },
  };
}

export function defaultLogger(level: string): Logger {
  return pino({ level, base: { svc: 'control-plane' } });
}
