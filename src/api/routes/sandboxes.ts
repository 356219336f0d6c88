/** Sandbox records: create, list, get, delete, pause, resume, extend. Handlers call the manager only. */
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import * as z from 'zod';
import {
  CreateSandboxBody,
  ExtendTimeoutBody,
  ListSandboxesQuery,
  Sandbox,
  SandboxList,
  SetEnvBody,
} from '../../protocol/api.js';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { SandboxManager } from '../../sandboxes/manager.js';
import { toApiSandbox } from '../../store/sandboxes.js';
import { binaryBody, errorResponses, IdParams, NoContent } from '../schemas.js';

/** The logs routes' query: how many lines back. */
const LogsQuery = z.object({ tail: z.coerce.number().int().min(0).max(100_000).default(200) });

export function sandboxRoutes(manager: SandboxManager): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/api/sandboxes',
      {
        schema: {
          operationId: 'createSandbox',
          tags: ['sandboxes'],
          summary: 'Create a sandbox (from the warm pool when it needs no bind mount)',
          body: CreateSandboxBody,
          response: { 201: Sandbox, ...errorResponses(403, 404, 409, 413, 415, 503, 504) },
        },
      },
      async (req, reply) => reply.code(201).send(toApiSandbox(await manager.create(req.body))),
    );

    app.get(
      '/api/sandboxes',
      {
        schema: {
          operationId: 'listSandboxes',
          tags: ['sandboxes'],
          summary: 'List sandboxes',
          querystring: ListSandboxesQuery,
          response: { 200: SandboxList, ...errorResponses() },
        },
      },
      async (req) => {
        const labels: Record<string, string> = {};
        const raw = req.query.label === undefined ? [] : [req.query.label].flat();
        for (const pair of raw) {
          const at = pair.indexOf('=');
          if (at <= 0)
            throw new BerthError(
              ErrorCode.VALIDATION_FAILED,
              `Invalid label filter "${pair}": expected key=value`,
            );
          labels[pair.slice(0, at)] = pair.slice(at + 1);
        }
        return { sandboxes: manager.list({ state: req.query.state, labels }).map(toApiSandbox) };
      },
    );

    app.get(
      '/api/sandboxes/:id',
      {
        schema: {
          operationId: 'getSandbox',
          tags: ['sandboxes'],
          summary: 'Get a sandbox',
          params: IdParams,
          response: { 200: Sandbox, ...errorResponses(404) },
        },
      },
      async (req) => toApiSandbox(manager.get(req.params.id)),
    );

    app.delete(
      '/api/sandboxes/:id',
      {
        schema: {
          operationId: 'deleteSandbox',
          tags: ['sandboxes'],
          summary: 'Delete a sandbox: removes its container unless keep=true',
          params: IdParams,
          querystring: z.object({ keep: z.enum(['true', 'false']).optional() }),
          response: { 204: NoContent, ...errorResponses(404) },
        },
      },
      async (req, reply) => {
        manager.get(req.params.id);
        await manager.delete(req.params.id, {
          keep: req.query.keep === undefined ? undefined : req.query.keep === 'true',
        });
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/api/sandboxes/:id/pause',
      {
        schema: {
          operationId: 'pauseSandbox',
          tags: ['sandboxes'],
          params: IdParams,
          response: { 200: Sandbox, ...errorResponses(404, 409, 413, 415, 503, 504) },
        },
      },
      async (req) => toApiSandbox(await manager.pause(req.params.id)),
    );

    app.post(
      '/api/sandboxes/:id/resume',
      {
        schema: {
          operationId: 'resumeSandbox',
          tags: ['sandboxes'],
          params: IdParams,
          response: { 200: Sandbox, ...errorResponses(404, 409, 413, 415, 503, 504) },
        },
      },
      async (req) => toApiSandbox(await manager.resume(req.params.id)),
    );

    app.post(
      '/api/sandboxes/:id/stop',
      {
        schema: {
          operationId: 'stopSandbox',
          tags: ['sandboxes'],
          summary: 'Stop the container (processes end; files and ~/.bashrc stay); resume starts it again',
          params: IdParams,
          response: { 200: Sandbox, ...errorResponses(404, 409, 413, 415, 503, 504) },
        },
      },
      async (req) => toApiSandbox(await manager.stop(req.params.id)),
    );

    app.post(
      '/api/sandboxes/:id/reset',
      {
        schema: {
          operationId: 'resetSandbox',
          tags: ['sandboxes'],
          summary:
            "End every process of the sandbox's user and start a fresh shell (after a fork bomb or runaway processes); files stay, shell state goes",
          params: IdParams,
          response: { 200: Sandbox, ...errorResponses(404, 409, 413, 415, 503, 504) },
        },
      },
      async (req) => toApiSandbox(await manager.reset(req.params.id)),
    );

    app.post(
      '/api/sandboxes/:id/env',
      {
        schema: {
          operationId: 'setSandboxEnv',
          tags: ['sandboxes'],
          summary: "Add environment variables to the sandbox's shell and ~/.bashrc (OpenHands' add_env_vars)",
          params: IdParams,
          body: SetEnvBody,
          response: { 200: Sandbox, ...errorResponses(404, 409, 413, 415, 503, 504) },
        },
      },
      async (req) => toApiSandbox(await manager.setEnv(req.params.id, req.body.env)),
    );

    const sendLogs = async (
      id: string,
      opts: { tail: number; follow: boolean },
      req: { raw: { once(e: 'close', f: () => void): unknown } },
      reply: FastifyReply,
    ) => {
      const stream = await manager.logs(id, opts);
      // The client going away ends the engine's stream too.
      req.raw.once('close', () => stream.destroy());
      // A stream is sent as it is (Fastify does not serialise it); the schema documents its text.
      return reply.type('text/plain; charset=utf-8').send(stream as unknown as string);
    };

    app.get(
      '/api/sandboxes/:id/logs',
      {
        schema: {
          operationId: 'getSandboxLogs',
          tags: ['sandboxes'],
          summary: "The container's own output (the runtime server's log): its last `tail` lines, as text",
          params: IdParams,
          querystring: LogsQuery,
          response: {
            200: binaryBody('text/plain', 'stdout and stderr of the container, in order'),
            ...errorResponses(404, 409, 503),
          },
        },
      },
      (req, reply) => sendLogs(req.params.id, { tail: req.query.tail, follow: false }, req, reply),
    );

    app.get(
      '/api/sandboxes/:id/logs/stream',
      {
        schema: {
          operationId: 'followSandboxLogs',
          tags: ['sandboxes'],
          summary:
            "The container's output as it is written: the last `tail` lines, then new ones until the container stops or the client goes (a response that does not end by itself)",
          params: IdParams,
          querystring: LogsQuery,
          response: {
            200: binaryBody('text/plain', 'stdout and stderr of the container, streamed'),
            ...errorResponses(404, 409, 503),
          },
        },
      },
      (req, reply) => sendLogs(req.params.id, { tail: req.query.tail, follow: true }, req, reply),
    );

    app.post(
      '/api/sandboxes/:id/timeout',
      {
        schema: {
          operationId: 'extendSandboxTimeout',
          tags: ['sandboxes'],
          summary: 'Set the sandbox to expire timeout_seconds from now',
          params: IdParams,
          body: ExtendTimeoutBody,
          response: { 200: Sandbox, ...errorResponses(404, 413, 415) },
        },
      },
      async (req) => toApiSandbox(manager.extendTimeout(req.params.id, req.body.timeout_seconds)),
    );
  };
}
