/**
 * The reference's MCP routes (openhands/runtime/action_execution_server.py):
 *   POST /update_mcp_server   a JSON array of stdio servers ({name, command, args, env}); 200
 *                             {"detail": "MCP server updated successfully", "router_error_log": "..."}
 *                             with one line per server that failed to start; a body that is not such
 *                             a list is a 400 VALIDATION_FAILED (the reference: 400 or 500);
 *   GET  /mcp/sse             the MCP SSE stream serving the servers' tools (see proxy.ts);
 *   POST /mcp/messages        the SSE session's client-to-server messages (?session_id=).
 * All need the session key, like every route but /alive and /server_info (http.ts). The proxy and the
 * MCP SDK are loaded on the first of these requests, not at start-up (see lazy.ts).
 */
import type { FastifyInstance } from 'fastify';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { RuntimeServices } from '../services.js';

export function registerMcpRoutes(app: FastifyInstance, services: RuntimeServices): void {
  app.post('/update_mcp_server', async (req) => {
    const { parseServerList } = await import('./config.js');
    const servers = parseServerList(req.body);
    const proxy = await services.mcp.get();
    return proxy.update(servers);
  });

  app.get('/mcp/sse', async (_req, reply) => {
    const proxy = await services.mcp.get();
    reply.hijack();
    try {
      await proxy.openSession(reply.raw);
    } catch (err) {
      const berth =
        err instanceof BerthError ? err : new BerthError(ErrorCode.INTERNAL, (err as Error).message);
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(berth.status, { 'content-type': 'application/json' });
      }
      reply.raw.end(JSON.stringify(berth.toBody()));
    }
  });

  app.post<{ Querystring: { session_id?: string; sessionId?: string } }>(
    '/mcp/messages',
    async (req, reply) => {
      const id = req.query.session_id ?? req.query.sessionId;
      if (typeof id !== 'string' || id === '') {
        throw new BerthError(ErrorCode.VALIDATION_FAILED, 'the session_id query parameter is required');
      }
      const proxy = await services.mcp.get();
      proxy.postMessage(id, req.body);
      return reply.code(202).type('text/plain').send('Accepted');
    },
  );

  // Before Fastify closes the listener: open SSE streams would keep it waiting.
  app.addHook('preClose', async () => {
    await services.mcp.ifMade((proxy) => proxy.closeSessions());
  });
}
