/**
 * GET /vscode/connection_token, as the reference answers it when its VS Code plugin is not loaded:
 * {"token": null}. The app then has no VS Code URL and shows no VS Code tab, where a 404 here would
 * make it report the runtime as disconnected. Berth ships no VS Code server (see docs/openhands.md).
 */
import type { FastifyInstance } from 'fastify';

export function registerVscodeRoutes(app: FastifyInstance): void {
  app.get('/vscode/connection_token', async () => ({ token: null }));
}
