/**
 * E2B's code interpreter on the runtime server, under /code-interpreter: what `@e2b/code-interpreter`
 * (and the Python `e2b-code-interpreter`) call on port 49999 of an E2B sandbox. The control plane
 * routes their requests here by `E2b-Sandbox-Port: 49999`.
 *
 *   GET    /health                 "OK"
 *   POST   /execute                {code, context_id?, language?, env_vars?} → NDJSON messages, then
 *                                  {"type": "end_of_execution"}
 *   POST   /contexts               {language?, cwd?} → {id, language, cwd}
 *   GET    /contexts               [{id, language, cwd}]
 *   DELETE /contexts/:id
 *   POST   /contexts/:id/restart
 *
 * Errors are `{"error": message}` with a status the SDKs map (404 NotFoundError, 400 and others
 * SandboxError). A client that goes away mid-execution interrupts it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { writeUnlessBehind } from '../../http/slow-client.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { RuntimeServices } from '../services.js';
import { CodeContextError, type ExecutionMessage } from './contexts.js';

export const CODE_INTERPRETER_PREFIX = '/code-interpreter';

interface ExecuteBody {
  code?: unknown;
  context_id?: unknown;
  language?: unknown;
  env_vars?: unknown;
}

export function registerCodeInterpreterRoutes(app: FastifyInstance, services: RuntimeServices): void {
  const contexts = () => services.codeContexts.get();

  app.register(
    async (scope) => {
      scope.setErrorHandler((err, _req, reply) => fail(reply, err));

      scope.get('/health', async (_req, reply) => reply.type('application/json').send('"OK"'));

      scope.post<{ Body: ExecuteBody }>('/execute', async (req, reply) => {
        const body = req.body ?? {};
        if (typeof body.code !== 'string')
          throw new CodeContextError(ErrorCode.VALIDATION_FAILED, 400, "'code' must be a string");
        const contextId = optionalString(body.context_id, 'context_id');
        const language = optionalString(body.language, 'language');
        if (contextId !== undefined && language !== undefined)
          throw new CodeContextError(
            ErrorCode.VALIDATION_FAILED,
            400,
            'Only one of context_id or language can be provided',
          );
        const envVars = stringMap(body.env_vars, 'env_vars');
        const ctx = await (await contexts()).forExecution(contextId, language);

        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        res.flushHeaders();
        const controller = new AbortController();
        let finished = false;
        res.on('close', () => {
          if (!finished) controller.abort();
        });
        // A client that stopped reading is dropped (the execution is then interrupted, as on a close).
        const line = (msg: ExecutionMessage) => {
          writeUnlessBehind(res, `${JSON.stringify(msg)}\n`);
        };
        try {
          await ctx.execute(body.code, envVars, line, controller.signal);
          line({ type: 'end_of_execution' });
        } catch (err) {
          line({ type: 'error', name: 'ExecutionError', value: (err as Error).message, traceback: '' });
          line({ type: 'unexpected_end_of_execution' });
        } finally {
          finished = true;
          if (!res.destroyed) res.end();
        }
      });

      scope.post<{ Body: { language?: unknown; cwd?: unknown } }>('/contexts', async (req) => {
        const body = req.body ?? {};
        return (await contexts()).create({
          language: optionalString(body.language, 'language'),
          cwd: optionalString(body.cwd, 'cwd'),
        });
      });
      scope.get('/contexts', async () => (await contexts()).list());
      scope.delete<{ Params: { id: string } }>('/contexts/:id', async (req, reply) => {
        await (await contexts()).remove(req.params.id);
        return reply.code(204).send();
      });
      scope.post<{ Params: { id: string } }>('/contexts/:id/restart', async (req, reply) => {
        await (await contexts()).restart(req.params.id);
        return reply.code(204).send();
      });
    },
    { prefix: CODE_INTERPRETER_PREFIX },
  );
}

function fail(reply: FastifyReply, err: unknown): FastifyReply {
  const e = err as CodeContextError & { statusCode?: number };
  const status = err instanceof CodeContextError ? e.status : (e.statusCode ?? 500);
  return reply
    .code(status)
    .type('application/json')
    .send(
      JSON.stringify({
        error: e.message ?? String(err),
        code: err instanceof CodeContextError ? e.code : undefined,
      }),
    );
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw new CodeContextError(ErrorCode.VALIDATION_FAILED, 400, `'${name}' must be a string`);
  return value;
}

function stringMap(value: unknown, name: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value))
    throw new CodeContextError(ErrorCode.VALIDATION_FAILED, 400, `'${name}' must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string')
      throw new CodeContextError(ErrorCode.VALIDATION_FAILED, 400, `'${name}.${k}' must be a string`);
    out[k] = v;
  }
  return out;
}
