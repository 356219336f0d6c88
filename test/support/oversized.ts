/**
 * POSTs a body a server will refuse for its size. The server answers 413 as soon as it sees the
 * length and may close the connection while the body is still being sent, so the answer is read even
 * when the rest of the upload fails (fetch would report only the broken pipe).
 */
import { request } from 'node:http';

export function postOversized(
  target: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; text: string }> {
  const url = new URL(target);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    // A write error after the answer arrived is expected; without an answer it is a failure.
    req.on('error', (err) => setTimeout(() => reject(err), 1000));
    req.end(body);
  });
}
