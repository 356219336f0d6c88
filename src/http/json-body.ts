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

/** Bodies up to this size are read and thrown away before a 413, so the client sees the answer. */
const DRAIN_LIMIT_BYTES = 1024 * 1024 * 1024;

/**
 * Refuses a JSON body whose declared length is over `limit` with a 413. The rest of the body is read
 * and discarded first: answering while the client is still sending, then closing, makes most clients
 * (and proxies in between, such as Docker's) report a broken pipe instead of the answer.
 * Multipart bodies (file uploads) have their own limits and are left alone.
 */
export function refuseOversizedJson(app: FastifyInstance, limit: number): void {
  app.addHook('onRequest', (req, reply, done) => {
    const length = Number(req.headers['content-length']);
    const type = req.headers['content-type'] ?? '';
    if (!(length > limit) || type.startsWith('multipart/')) return done();
    const err = new BerthError(
      ErrorCode.PAYLOAD_TOO_LARGE,
      `Request body of ${length} bytes is larger than the limit of ${limit} bytes`,
    );
    if (length > DRAIN_LIMIT_BYTES) {
      reply.header('connection', 'close').code(err.status).send(err.toBody());
      return;
    }
    req.raw.on('end', () => reply.code(err.status).send(err.toBody()));
    req.raw.on('error', () => reply.code(err.status).send(err.toBody()));
    req.raw.resume();
  });
}
