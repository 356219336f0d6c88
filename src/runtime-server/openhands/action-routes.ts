/** POST /execute_action: the reference's one RPC. Parse, run, reply with the observation. */
import type { FastifyInstance } from 'fastify';
import { errorObservation, RESET_ACTION, resetObservation } from '../../protocol/openhands.js';

/** The reference's text for a browse action when its browser is disabled. */
export const BROWSER_UNAVAILABLE = 'Browser functionality is not supported or disabled.';

import type { RuntimeServices } from '../services.js';

export function registerActionRoutes(app: FastifyInstance, services: RuntimeServices): void {
  app.post('/execute_action', async (req) => {
    // Berth's reset does not wait in the queue: it is what frees a queue stuck behind a runaway command.
    const type = (req.body as { action?: { action?: unknown } } | undefined)?.action?.action;
    if (type === RESET_ACTION) return resetObservation(await services.reset());
    // As the reference started with --no-enable-browser: Berth's sandboxes have no browser.
    if (type === 'browse' || type === 'browse_interactive') return errorObservation(BROWSER_UNAVAILABLE);
    const action = services.executor.parse(req.body);
    return services.executor.execute(action);
  });
}
