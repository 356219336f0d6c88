/**
 * API keys for the control plane: with keys configured, every /api route needs
 * `Authorization: Bearer <key>`. Browsers cannot set headers on WebSockets, so those may pass the key
 * as `?token=<key>` instead. Comparison is constant-time.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BerthError, ErrorCode } from '../protocol/errors.js';

export function keyMatches(given: string, keys: readonly string[]): boolean {
  const g = Buffer.from(given);
  let ok = false;
  for (const k of keys) {
    const kb = Buffer.from(k);
    if (kb.length === g.length && timingSafeEqual(kb, g)) ok = true;
  }
  return ok;
}

export function presentedKey(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  const token = (req.query as Record<string, unknown> | undefined)?.token;
  return typeof token === 'string' ? token : undefined;
}

export function installAuth(app: FastifyInstance, keys: readonly string[]): void {
  if (keys.length === 0) return;
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?', 1)[0] ?? '';
    if (!path.startsWith('/api/')) return;
    const key = presentedKey(req);
    if (key === undefined || !keyMatches(key, keys)) {
      const err = new BerthError(
        ErrorCode.UNAUTHORIZED,
        key === undefined ? 'Missing API key: send Authorization: Bearer <key>' : 'Invalid API key',
      );
      return reply.code(err.status).send(err.toBody());
    }
  });
}
