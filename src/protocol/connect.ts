/**
 * The Connect protocol's wire format (connectrpc.com/docs/protocol), JSON codec only: what E2B's envd
 * speaks and its SDKs send. Pure: framing and the error vocabulary, no I/O.
 *
 * - Unary: `POST /<package>.<Service>/<Method>`, `Content-Type: application/json`, the message as the
 *   body; 200 with the answer as JSON, or an error status with `{"code", "message"}`.
 * - Server streams: `Content-Type: application/connect+json`, the request in one envelope, and the
 *   answer a sequence of envelopes `[flags u8][length u32 BE][JSON]`, ending with one flagged END_STREAM
 *   that carries `{}` or `{"error": {...}}`. Always HTTP 200: errors travel in the last envelope.
 */

/** Envelope flag of the stream's last frame. */
export const END_STREAM_FLAG = 0x02;
/** Envelope flag of a compressed message; never sent here, refused on input. */
export const COMPRESSED_FLAG = 0x01;
/** Largest request envelope accepted (a SendInput carries at most a chunk of stdin). */
export const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;

export const STREAM_CONTENT_TYPE = 'application/connect+json';
export const UNARY_CONTENT_TYPE = 'application/json';

/** Connect's error codes, with the HTTP status a unary error answers with. */
export const CONNECT_CODES = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
} as const;

export type ConnectCode = keyof typeof CONNECT_CODES;

export class ConnectError extends Error {
  constructor(
    readonly code: ConnectCode,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectError';
  }

  get status(): number {
    return CONNECT_CODES[this.code];
  }

  toJSON(): { code: ConnectCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** One envelope holding `message` as JSON. */
export function envelope(message: unknown, flags = 0): Buffer {
  const json = Buffer.from(JSON.stringify(message), 'utf8');
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

/** The stream's last envelope: success, or the error that ended it. */
export function endOfStream(error?: ConnectError): Buffer {
  return envelope(error ? { error: error.toJSON() } : {}, END_STREAM_FLAG);
}

/**
 * The one message of a server-stream request body. A body that is not exactly one uncompressed
 * envelope of JSON is invalid_argument.
 */
export function readRequestEnvelope(body: Buffer): unknown {
  if (body.length < 5) throw new ConnectError('invalid_argument', 'the request is not an enveloped message');
  const flags = body.readUInt8(0);
  const length = body.readUInt32BE(1);
  if (flags & COMPRESSED_FLAG)
    throw new ConnectError('unimplemented', 'compressed messages are not supported');
  if (length > MAX_ENVELOPE_BYTES)
    throw new ConnectError('resource_exhausted', 'the request message is too large');
  if (body.length !== 5 + length)
    throw new ConnectError('invalid_argument', 'the request body must be exactly one envelope');
  return parseJson(body.subarray(5));
}

/** A unary request's message; an empty body is the empty message. */
export function readUnaryMessage(body: Buffer): unknown {
  return body.length === 0 ? {} : parseJson(body);
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ConnectError('invalid_argument', 'the request message is not valid JSON');
  }
}

/** Splits a response body into its envelopes (for clients and tests). */
export function readEnvelopes(body: Buffer): { flags: number; message: unknown }[] {
  const out: { flags: number; message: unknown }[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const flags = body.readUInt8(at);
    const length = body.readUInt32BE(at + 1);
    out.push({ flags, message: JSON.parse(body.subarray(at + 5, at + 5 + length).toString('utf8')) });
    at += 5 + length;
  }
  return out;
}
