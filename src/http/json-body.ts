/**
 * The JSON body parser both Berth servers use: malformed JSON is a 400 INVALID_JSON with our error
 * body (Fastify's own parser answers in its own shape), and an empty body parses as `undefined` so
 * route validation can name what is missing.
 */
import type { FastifyInstance } from 'fastify';
import { BerthError, ErrorCode } from '../protocol/errors.js';

export function installJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(
        new BerthError(ErrorCode.INVALID_JSON, `Malformed JSON body: ${(err as Error).message}`),
        undefined,
      );
    }
  });
}
