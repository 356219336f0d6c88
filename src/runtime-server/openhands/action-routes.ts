/** POST /execute_action: the reference's one RPC. Parse, run, reply with the observation. */
import type { FastifyInstance } from 'fastify';
import type { RuntimeServices } from '../services.js';

export function registerActionRoutes(app: FastifyInstance, services: RuntimeServices): void {
  app.post('/execute_action', async (req) => {
    const action = services.executor.parse(req.body);
    return services.executor.execute(action);
  });
}
