/**
 * OpenHands' "remote runtime API" (what its RemoteRuntime calls when RUNTIME=remote), served under
 * /openhands over the same SandboxManager, keys and policy as Berth's own API. A runtime is a
 * sandbox; its session is a label; its `url` is the control plane's pass-through to the sandbox's
 * runtime server (runtime-passthrough.ts), so the API key never reaches the sandbox.
 * Errors are FastAPI-style `{"detail": ...}` bodies, the shape OpenHands' client reads.
 */

import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { SandboxManager } from '../../sandboxes/manager.js';
import type { RuntimeImages } from '../../sandboxes/types.js';
import type { SandboxRecord } from '../../store/sandboxes.js';
import { detailBody } from '../auth.js';
import { detailErrorResponses } from '../schemas.js';
import { type BuildJobs, buildRoutes } from './builds.js';
import { createBodyFor, SESSION_LABEL, StartRequest } from './start-request.js';

export const OPENHANDS_PREFIX = '/openhands';
const DETAIL = { detailErrors: true } as const;

/** A runtime as OpenHands reads it (`_parse_runtime_response`, `_wait_until_alive`, V1's list). */
const Runtime = z.object({
  runtime_id: z.string(),
  session_id: z.string().nullable(),
  status: z
    .enum(['running', 'paused', 'stopped'])
    .describe('what /sessions reports: stopped means start anew'),
  pod_status: z
    .enum(['pending', 'ready', 'paused', 'stopped', 'failed', 'not found'])
    .describe('readiness: ready means the runtime URL answers; failed ends the wait'),
  url: z
    .string()
    .describe("the runtime server's protocol through the control plane (no API key reaches the sandbox)"),
  session_api_key: z.string(),
  work_hosts: z.record(z.string(), z.number()).describe('app ports: {"http://host:port": port}'),
  image: z.string(),
  restart_reasons: z.array(z.string()),
  error: z.string().nullable(),
});
type Runtime = z.infer<typeof Runtime>;

/**
 * runtime_id is null when OpenHands closes a RemoteRuntime that never got one: its connect failed
 * (a refused /start, a failed build) and close() sends /stop, or /pause when keep_runtime_alive,
 * anyway. An error there would be raised by close() in place of the reason connect failed.
 */
const RuntimeIdBody = z.object({ runtime_id: z.string().min(1).max(64).nullable() });
/** The answer to a pause or stop of no runtime (runtime_id null): nothing was done. */
const NothingDone = z.object({
  runtime_id: z.null(),
  detail: z.string(),
});

export interface OpenHandsApiDeps {
  manager: SandboxManager;
  images: RuntimeImages | undefined;
  builds: BuildJobs;
  /** Default limits of a sandbox, which resource_factor scales. */
  defaultLimits: { cpus?: number | undefined; memoryMb?: number | undefined };
}

export function openHandsRoutes(deps: OpenHandsApiDeps): FastifyPluginAsyncZod {
  const { manager } = deps;
  return async (app) => {
    // The 404 handler has no route config to say detailErrors, so it builds the body itself.
    app.setNotFoundHandler((req, reply) => {
      const err = new BerthError(ErrorCode.NOT_FOUND, `Not Found: ${req.method} ${req.url.split('?', 1)[0]}`);
      reply.code(err.status).send(detailBody(err));
    });

    const view = (req: FastifyRequest, rec: SandboxRecord): Runtime => ({
      runtime_id: rec.id,
      session_id: rec.labels[SESSION_LABEL] ?? null,
      status: sessionStatus(rec),
      pod_status: podStatus(rec),
      url: `${baseUrl(req)}/api/sandboxes/${rec.id}/runtime`,
      session_api_key: rec.session_api_key,
      work_hosts: manager.appHosts(rec.id),
      image: rec.image,
      restart_reasons: rec.state === 'exited' && rec.error ? [rec.error] : [],
      error: rec.error,
    });
    const runtime = (id: string): SandboxRecord => {
      const rec = manager.get(id);
      if (rec.state === 'deleted')
        throw new BerthError(ErrorCode.NOT_FOUND, `Runtime ${id} was stopped and removed`);
      return rec;
    };
    const common = { tags: ['openhands'] };

    app.get(
      '/sessions/:session_id',
      {
        config: DETAIL,
        schema: {
          ...common,
          summary: 'The runtime of an OpenHands session (conversation), if it has one; 404 when it has none',
          params: z.object({ session_id: z.string().min(1).max(255) }),
          response: { 200: Runtime, ...detailErrorResponses(404) },
        },
      },
      async (req) => {
        const rec = sessionRuntime(manager, req.params.session_id);
        if (!rec)
          throw new BerthError(ErrorCode.NOT_FOUND, `No runtime for session ${req.params.session_id}`);
        return view(req, rec);
      },
    );

    app.post(
      '/start',
      {
        config: DETAIL,
        schema: {
          ...common,
          summary:
            "Start a runtime for a session: a sandbox on the image (Berth's runtime layer is added to any other image), with the command's user, working directory and plugins",
          body: StartRequest,
          response: { 201: Runtime, ...detailErrorResponses(403, 404, 409, 503, 504) },
        },
      },
      async (req, reply) => {
        const existing = sessionRuntime(manager, req.body.session_id);
        if (
          existing &&
          (existing.state === 'running' || existing.state === 'starting' || existing.state === 'paused')
        ) {
          // A repeated start (a retry after a lost reply) gets the runtime the session already has.
          return reply.code(201).send(view(req, existing));
        }
        if (!deps.images)
          throw new BerthError(ErrorCode.UNAVAILABLE, 'This control plane has no image service');
        const image = await deps.images.runtimeImageFor(req.body.image);
        const body = createBodyFor(req.body, image, deps.defaultLimits);
        if (existing) {
          // The session's old runtime is stopped or broken: OpenHands starts anew, as with its own API.
          await manager.delete(existing.id, {
            reason: `replaced by a new start of session ${req.body.session_id}`,
          });
        }
        const rec = await manager.create(body, { labels: { [SESSION_LABEL]: req.body.session_id } });
        return reply.code(201).send(view(req, rec));
      },
    );

    app.get(
      '/runtime/:runtime_id',
      {
        config: DETAIL,
        schema: {
          ...common,
          summary: "A runtime's readiness (pod_status), polled by OpenHands until ready",
          params: z.object({ runtime_id: z.string().min(1).max(64) }),
          response: { 200: Runtime, ...detailErrorResponses(404) },
        },
      },
      async (req) => {
        const rec = runtime(req.params.runtime_id);
        // An exited container comes back on its own, as for an action; meanwhile it is pending.
        if (rec.state === 'exited') {
          manager
            .startIfExited(rec.id, 'started again: OpenHands is waiting for it')
            .catch((err) => req.log.warn({ err, id: rec.id }, 'could not start an exited runtime again'));
        }
        return view(req, rec);
      },
    );

    for (const [op, summary] of [
      ['pause', 'Pause a runtime (processes and memory kept)'],
      ['resume', 'Resume a paused or stopped runtime (a no-op for a running one)'],
      ['stop', 'Stop a runtime: its sandbox is deleted (the event log stays)'],
    ] as const) {
      app.post(
        `/${op}`,
        {
          config: DETAIL,
          schema: {
            ...common,
            summary,
            body: RuntimeIdBody,
            response: {
              200: op === 'resume' ? Runtime : z.union([Runtime, NothingDone]),
              ...detailErrorResponses(404, 409, 503, 504),
            },
          },
        },
        async (req) => {
          const id = req.body.runtime_id;
          if (id === null) {
            if (op === 'resume')
              throw new BerthError(ErrorCode.NOT_FOUND, 'No runtime to resume: runtime_id is null');
            return {
              runtime_id: null,
              detail: `Nothing to ${op}: no runtime was started (runtime_id is null)`,
            };
          }
          const rec = manager.get(id);
          if (op === 'stop') {
            await manager.delete(id, { reason: 'stopped by OpenHands' });
          } else if (rec.state === 'deleted') {
            throw new BerthError(ErrorCode.NOT_FOUND, `Runtime ${id} was stopped and removed`);
          } else if (op === 'pause') {
            await manager.pause(id, 'paused by OpenHands');
          } else if (rec.state !== 'running') {
            await manager.resume(id, 'resumed by OpenHands');
          }
          return view(req, manager.get(id));
        },
      );
    }

    app.get(
      '/list',
      {
        config: DETAIL,
        schema: {
          ...common,
          summary: 'Every runtime that serves an OpenHands session',
          response: { 200: z.object({ runtimes: z.array(Runtime) }), ...detailErrorResponses() },
        },
      },
      async (req) => ({
        runtimes: manager
          .list({})
          .filter((r) => r.labels[SESSION_LABEL] !== undefined)
          .map((r) => view(req, r)),
      }),
    );

    await app.register(buildRoutes(deps.builds, deps.images));
  };
}

/** The session's live runtime: the newest sandbox with its label that is not deleted. */
function sessionRuntime(manager: SandboxManager, sessionId: string): SandboxRecord | undefined {
  const all = manager.list({ labels: { [SESSION_LABEL]: sessionId } });
  return all.sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
}

/**
 * What /sessions says. paused: OpenHands resumes it, so a container that exited or was stopped
 * (files kept) says paused too and comes back on /resume; a broken one says stopped, and OpenHands
 * starts a new runtime.
 */
function sessionStatus(rec: SandboxRecord): Runtime['status'] {
  switch (rec.state) {
    case 'starting':
    case 'running':
      return 'running';
    case 'paused':
    case 'exited':
    case 'stopped':
      return 'paused';
    default:
      return 'stopped';
  }
}

function podStatus(rec: SandboxRecord): Runtime['pod_status'] {
  switch (rec.state) {
    case 'starting':
    case 'exited':
      return 'pending';
    case 'running':
      return 'ready';
    case 'paused':
      return 'paused';
    case 'stopped':
      return 'stopped';
    case 'deleted':
      return 'not found';
    default:
      return 'failed';
  }
}

/** The control plane's address as this client reached it, so the runtime URL works from where it is. */
function baseUrl(req: FastifyRequest): string {
  const host = req.host || `127.0.0.1:${req.socket.localPort ?? 3000}`;
  return `${req.protocol}://${host}`;
}
