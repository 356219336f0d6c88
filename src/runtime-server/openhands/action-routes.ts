/** POST /execute_action: the reference's one RPC. Parse, run, reply with the observation. */
import type { FastifyInstance } from 'fastify';
import { RESET_ACTION, resetObservation } from '../../protocol/openhands.js';
import type { RuntimeServices } from '../services.js';

export function registerActionRoutes(app: FastifyInstance, services: RuntimeServices): void {
  app.post('/execute_action', async (req) => {
    // Berth's reset does not wait in the queue: it is what frees a queue stuck behind a runaway command.
    if ((req.body as { action?: { action?: unknown } } | undefined)?.action?.action === RESET_ACTION) {
      return resetObservation(await services.reset());
    }
    const action = services.executor.parse(req.body);
    return services.executor.execute(action);
  });
}
