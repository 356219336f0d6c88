import { createReadStream } from 'node:fs';
import http from 'node:http';
const src = '/tmp/dbg-src.bin';
const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
const M = 1024 * 1024;
const fmt = () => { const m = process.memoryUsage(); return `rss ${(m.rss / M).toFixed(0)} ab ${(m.arrayBuffers / M).toFixed(0)}`; };
const t = setInterval(() => { if (process.argv[2] === 'gc') (globalThis as any).gc(); console.log(fmt()); }, 1000);
const mode = process.argv[3];
let body: any;
async function* gen() { for await (const c of createReadStream(src, { highWaterMark: 256 * 1024 })) yield c; }
if (mode === 'web') { const { Readable } = await import('node:stream'); body = Readable.toWeb(createReadStream(src, { highWaterMark: 256 * 1024 })); }
else if (mode === 'copy') { body = (async function* () { for await (const c of createReadStream(src, { highWaterMark: 256 * 1024 })) yield new Uint8Array(c); })(); }
else body = gen();
const res = await fetch(`http://127.0.0.1:${(srv.address() as any).port}/`, { method: 'POST', body, duplex: 'half' } as any);
console.log(res.status, await res.text(), fmt());
clearInterval(t); srv.close();
