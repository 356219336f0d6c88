/**
 * Raw HTTP/1.1 over a socket: sends the request target exactly as given (fetch and ws would normalise
 * percent-encoding and dot segments away, which is the very thing an attacker relies on).
 */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

export function rawRequest(
  base: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = '',
  timeoutMs = 10_000,
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(url.port), url.hostname);
    let data = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer to ${method} ${target} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      const end = data.indexOf('\r\n\r\n');
      const head = end >= 0 ? data.slice(0, end) : data;
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body: end >= 0 ? data.slice(end + 4) : '' });
      sock.destroy();
    };
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      data += chunk;
      // A complete head is enough for an upgrade answer; for others wait for the body too.
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.slice(0, end);
      const len = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (/^HTTP\/1\.1 101/.test(head) || (len && data.length - end - 4 >= Number(len[1]))) done();
    });
    sock.on('end', done);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const all: Record<string, string> = { Host: url.host, Connection: 'close', ...headers };
    const lines = [`${method} ${target} HTTP/1.1`, ...Object.entries(all).map(([k, v]) => `${k}: ${v}`)];
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    sock.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}

/** Headers of a WebSocket upgrade request. */
export const UPGRADE_HEADERS: Record<string, string> = {
  Connection: 'Upgrade',
  Upgrade: 'websocket',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version': '13',
};
