/**
 * A bad-input corpus on the real engine, sent both through the control plane's proxied runtime
 * routes and straight to a sandbox's runtime server: path traversal (plain and encoded), zip-slip
 * archives, zip bombs, FIFOs, NUL bytes, huge bodies and headers, wrong types in every action field,
 * absurd timeouts. Each gets a clear 4xx with a JSON `{code}` body (or the protocol's documented error
 * observation, or the reference's answer where it has one); afterwards nothing answered 5xx, the
 * control plane and the sandbox's runtime server are the same live processes, the sandbox works,
 * nothing was written outside a destination, and the event log is complete action/observation pairs.
 *
 * Then a disk-full run (root only): a workspace on a 2 MiB tmpfs, where a 3 MB write, edit or upload
 * fails cleanly (error observation or 507 NO_SPACE), leaves no partial or temporary file, and a small
 * write still works.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/api/start.js';
import { api, startInProcess } from '../integration/control-plane-helpers.js';
import { engineAvailable } from '../integration/docker-target.js';
import { buildZip, type RawEntry, S_IFLNK, S_IFREG } from '../unit/transfer-helpers.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: bad-input suite (${unavailable})`);
const notRoot = process.getuid?.() !== 0 ? 'not root: a tmpfs workspace needs mount' : undefined;
if (!unavailable && notRoot) console.warn(`SKIPPED: disk-full test (${notRoot})`);

/** The archive limit the corpus's sandbox runs with (read by its runtime server). */
const MAX_EXPANDED = 1024 * 1024;
const MAX_ENTRIES = 1000;
/** Anything that should answer at once must answer within this (a hang would take the action timeout). */
const PROMPT_MS = 5_000;

const docker = (...args: string[]) => execFileSync('docker', args, { encoding: 'utf8' }).trim();

interface Reply {
  status: number;
  json: any;
  text: string;
  ms: number;
}

/** One way to reach a sandbox's runtime protocol: through the control plane, or to the server itself. */
interface Surface {
  name: 'control plane' | 'runtime server';
  base: string;
  headers: Record<string, string>;
}

/** Every status any request of this file got, to assert that none was a 5xx but the documented 507. */
const seen: string[] = [];
const fivexx = () => seen.filter((s) => / 5\d\d$/.test(s) && !s.endsWith(' NO_SPACE 507'));

async function hit(
  s: Surface,
  method: string,
  path: string,
  o: { json?: unknown; body?: Buffer | string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...s.headers, ...o.headers };
  let body: Buffer | string | undefined = o.body;
  if (o.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(o.json);
  }
  const t0 = Date.now();
  const res = await fetch(s.base + path, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  seen.push(`${s.name} ${method} ${path.slice(0, 100)} ${(json as any)?.code ?? '-'} ${res.status}`);
  return { status: res.status, json, text, ms: Date.now() - t0 };
}

const act = (s: Surface, action: Record<string, unknown>) =>
  hit(s, 'POST', '/execute_action', { json: { action: { timeout: 60, ...action } } });
const run = async (s: Surface, command: string) => {
  const r = await act(s, { action: 'run', args: { command } });
  expect(r.status, r.text).toBe(200);
  return r.json.content as string;
};

/** A multipart body with one `file` part; the file name is written byte for byte. */
function multipart(
  filename: string | Buffer,
  data: Buffer,
): { body: Buffer; headers: Record<string, string> } {
  const boundary = `----berth${Math.random().toString(16).slice(2)}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="`),
    Buffer.from(filename),
    Buffer.from('"\r\nContent-Type: application/octet-stream\r\n\r\n'),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

const upload = (s: Surface, query: string, filename: string | Buffer, data: Buffer) =>
  hit(s, 'POST', `/upload_file?${query}`, multipart(filename, data));
const uploadZip = (s: Surface, destination: string, entries: RawEntry[]) =>
  upload(s, `destination=${encodeURIComponent(destination)}&recursive=true`, 'x.zip', buildZip(entries));

/** A 4xx with the error vocabulary's body. */
function expectRefused(r: Reply, status: number | number[], code?: string | string[]) {
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses, `${r.status} ${r.text.slice(0, 300)}`).toContain(r.status);
  expect(typeof r.json?.code, r.text.slice(0, 300)).toBe('string');
  expect(typeof r.json?.message).toBe('string');
  if (code !== undefined) expect(Array.isArray(code) ? code : [code]).toContain(r.json.code);
}

/** An error observation, answered at once. */
function expectErrorObservation(r: Reply, content: RegExp) {
  expect(r.status, r.text.slice(0, 300)).toBe(200);
  expect(r.ms).toBeLessThan(PROMPT_MS);
  const obs = r.json;
  const isError = obs.observation === 'error' || String(obs.content).startsWith('ERROR:');
  expect(isError, JSON.stringify(obs).slice(0, 300)).toBe(true);
  expect(obs.content).toMatch(content);
}

/**
 * Raw HTTP, for what fetch will not send or hides: oversized headers, a chunked body that never ends.
 * Returns the status line's code, or 0 when the server closed without answering (a clean close).
 */
function rawRequest(
  base: string,
  head: string,
  body?: { chunk: Buffer; count: number },
): Promise<{ status: number; text: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and no close within 30 s: ${head.slice(0, 80)}`));
    }, 30_000);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined); // EPIPE/ECONNRESET after the server answered and closed
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.on('connect', async () => {
      socket.write(head);
      if (!body) return;
      for (let i = 0; i < body.count && !socket.destroyed && chunks.length === 0; i++) {
        const frame = Buffer.concat([
          Buffer.from(`${body.chunk.length.toString(16)}\r\n`),
          body.chunk,
          Buffer.from('\r\n'),
        ]);
        if (!socket.write(frame)) await drainOrClose(socket);
      }
      if (!socket.destroyed) socket.write('0\r\n\r\n');
    });
  });
}

function drainOrClose(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });
}

describe.skipIf(unavailable !== undefined)(
  'bad input, through the control plane and to the runtime server',
  () => {
    let cp: RunningControlPlane & { apiKey: string };
    let id: string;
    let surfaces: Surface[];
    let serverPid: string;
    let mountParent: string;
    const call = (method: string, path: string, body?: unknown) => api(cp.url, cp.apiKey, method, path, body);
    const serverPidNow = () =>
      docker('exec', `berth-sandbox-${id}`, 'sh', '-c', 'pgrep -f runtime-server.mjs | head -n 1');
    /** Paths that must never exist: where an escape would have written. */
    const ESCAPES = ['/tmp/evil', '/etc/evil', '/evil', '/tmp/evil.txt', '/home/evil', '/tmp/nul'];
    const nothingEscaped = async () => {
      const out = await run(
        surfaces[1]!,
        `for p in ${ESCAPES.join(' ')}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done; echo done`,
      );
      expect(out).toBe('done');
    };

    beforeAll(async () => {
      mountParent = mkdtempSync(join(tmpdir(), 'berth-diskfull-'));
      cp = await startInProcess({ poolSize: 0, env: { BERTH_ALLOWED_MOUNT_ROOTS: mountParent } });
      const created = await call('POST', '/api/sandboxes', {
        env: {
          BERTH_UPLOAD_MAX_EXPANDED_BYTES: String(MAX_EXPANDED),
          BERTH_UPLOAD_MAX_ENTRIES: String(MAX_ENTRIES),
        },
      });
      expect(created.status, created.text).toBe(201);
      id = created.json.id;
      surfaces = [
        {
          name: 'control plane',
          base: `${cp.url}/api/sandboxes/${id}`,
          headers: { authorization: `Bearer ${cp.apiKey}` },
        },
        {
          name: 'runtime server',
          base: created.json.url,
          headers: { 'x-session-api-key': created.json.session_api_key },
        },
      ];
      serverPid = serverPidNow();
      expect(serverPid).toMatch(/^\d+$/);
      await run(surfaces[0]!, 'mkdir -p /tmp/dest /tmp/zs && mkfifo /tmp/fifo && echo x > /tmp/regular');
    });
    afterAll(async () => {
      if (!cp) return;
      for (const s of cp.manager.list({})) await cp.manager.delete(s.id).catch(() => undefined);
      await cp.close();
      await cp.manager['runtime'].reap(new Set());
      rmSync(mountParent, { recursive: true, force: true });
    });

    it('path traversal in download, list and upload destination: 400 for relative forms, never out of the sandbox', async () => {
      const relative = [
        '../../etc/passwd',
        '..%2F..%2Fetc%2Fpasswd',
        '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
        '%252e%252e%252fetc%252fpasswd', // double-encoded: a literal "%2e%2e%2f..." name, still relative
        '..%5C..%5Cetc%5Cpasswd', // backslashes
        '.%2e/.%2e/etc/passwd',
        '',
      ];
      for (const s of surfaces) {
        for (const p of relative) {
          expectRefused(await hit(s, 'GET', `/download_files?path=${p}`), 400, 'VALIDATION_FAILED');
        }
        expectRefused(await hit(s, 'GET', '/download_files'), 400, 'VALIDATION_FAILED');
        // An absolute path is the sandbox's own file system (the agent can read it anyway): `..` is
        // resolved inside the container, so this is the container's /etc/passwd, zipped under its name.
        const inside = await hit(s, 'GET', '/download_files?path=/workspace/../../../etc/passwd');
        expect(inside.status).toBe(200);
        expect(inside.text).toContain('passwd');
        const encoded = await hit(s, 'GET', '/download_files?path=%2Ftmp%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd');
        expect(encoded.status).toBe(200);

        // list_files answers as the reference does: relative to the working directory, [] when missing.
        const listed = await hit(s, 'POST', '/list_files', { json: { path: '../../../../etc' } });
        expect(listed.status).toBe(200);
        expect(listed.json).toContain('passwd');
        for (const p of ['/nonexistent/../../nope/../x', '%2e%2e%2fetc', '/tmp/regular/../../etc/passwd/x']) {
          const r = await hit(s, 'POST', '/list_files', { json: { path: p } });
          expect(r.status).toBe(200);
          expect(Array.isArray(r.json)).toBe(true);
        }

        for (const d of ['../../tmp', '..%2F..%2Ftmp', '%2e%2e%2ftmp', 'tmp/dest', '.']) {
          expectRefused(
            await upload(s, `destination=${d}`, 'evil', Buffer.from('x')),
            400,
            'VALIDATION_FAILED',
          );
        }
        // Resolved inside the container to /etc, which the sandbox user may not write.
        const etc = await upload(s, 'destination=/tmp/dest/../../etc', 'evil', Buffer.from('x'));
        expectRefused(etc, 403, 'PERMISSION_DENIED');
        for (const name of ['../evil', '../../../tmp/evil', '/tmp/evil', '..', '.', 'a/../../evil', '']) {
          const r = await upload(s, 'destination=/tmp/dest', name, Buffer.from('x'));
          expectRefused(r, 400, ['PATH_NOT_ALLOWED', 'VALIDATION_FAILED']);
        }
        // A percent-encoded name in a multipart header is not decoded: a literal, harmless name.
        const literal = await upload(s, 'destination=/tmp/dest', '..%2Fevil', Buffer.from('x'));
        expect(literal.status).toBe(200);
      }
      expect(await run(surfaces[0]!, 'ls -A /tmp/dest')).toBe('..%2Fevil');
      await nothingEscaped();
    });

    it('zip-slip archives: refused whole with 400, nothing written anywhere', async () => {
      const file = (name: string | Buffer, data = 'evil'): RawEntry => ({
        name,
        data,
        mode: S_IFREG | 0o644,
      });
      const link = (name: string, target: string): RawEntry => ({
        name,
        data: target,
        mode: S_IFLNK | 0o777,
      });
      const hostile: Array<[string, RawEntry[]]> = [
        ['../ entry', [file('ok.txt', 'fine'), file('../evil')]],
        ['deep ../ entry', [file('../../../../../../tmp/evil')]],
        ['../ in the middle', [file('a/b/../../../evil')]],
        ['absolute entry', [file('/tmp/evil')]],
        ['absolute dir entry', [{ name: '/etc/', mode: 0o040755 }, file('/etc/evil')]],
        ['backslash entry', [file('..\\..\\tmp\\evil')]],
        ['drive letter entry', [file('C:/tmp/evil')]],
        ['symlink to an absolute path outside', [link('out', '/tmp')]],
        ['symlink out, then a file through it', [link('out', '/tmp'), file('out/evil')]],
        ['relative symlink out, then a file through it', [link('up', '../../..'), file('up/tmp/evil')]],
        ['symlink to /etc/passwd', [link('pw', '/etc/passwd')]],
        ['symlink inside, then a file through it', [{ name: 'sub/' }, link('in', 'sub'), file('in/evil')]],
        ['NUL in an entry name', [file(Buffer.from('ok\0/../../evil'))]],
      ];
      for (const s of surfaces) {
        for (const [what, entries] of hostile) {
          const r = await uploadZip(s, '/tmp/zs', entries);
          expect(r.status, `${s.name}: ${what}: ${r.text}`).toBe(400);
          expectRefused(r, 400, ['PATH_NOT_ALLOWED', 'BAD_ARCHIVE']);
        }
      }
      // A symlink already on disk, made by the agent, pointing outside: extraction does not follow it.
      await run(surfaces[0]!, 'mkdir -p /tmp/zs2 && ln -s /tmp /tmp/zs2/out');
      for (const s of surfaces) {
        expectRefused(await uploadZip(s, '/tmp/zs2', [file('out/evil')]), 400, 'PATH_NOT_ALLOWED');
        // A destination through that link is the agent's own choice: the link is followed, once.
        expectRefused(await uploadZip(s, '/tmp/zs2/out', [file('../evil')]), 400, 'PATH_NOT_ALLOWED');
      }
      expect(await run(surfaces[0]!, 'ls -A /tmp/zs; ls -A /tmp/zs2')).toBe('out');
      await nothingEscaped();
    });

    it('zip bombs: bounded by BERTH_UPLOAD_MAX_EXPANDED_BYTES and _ENTRIES, nothing written', async () => {
      const zeros = Buffer.alloc(4 * MAX_EXPANDED);
      for (const s of surfaces) {
        // 4 MiB of zeros in ~4 KB.
        const bomb = await uploadZip(s, '/tmp/bomb', [{ name: 'zeros.bin', data: zeros }]);
        expectRefused(bomb, 413, 'PAYLOAD_TOO_LARGE');
        expect(bomb.json.details).toMatchObject({ limit: 'max_expanded_bytes', max: MAX_EXPANDED });
        // Many small entries that add up past the limit.
        const many = Array.from({ length: 8 }, (_, i) => ({
          name: `z${i}.bin`,
          data: zeros.subarray(0, 200_000),
        }));
        expectRefused(await uploadZip(s, '/tmp/bomb', many), 413, 'PAYLOAD_TOO_LARGE');
        // A ZIP64 entry claiming a terabyte: refused on the claim (no room for it, or over the limit).
        const claim = await uploadZip(s, '/tmp/bomb', [
          { name: 'huge.bin', data: 'tiny', declaredSize: 2n ** 40n },
        ]);
        expectRefused(claim, [413, 507], ['PAYLOAD_TOO_LARGE', 'NO_SPACE']);
        // An entry that claims 4 bytes but inflates to 4 MiB: caught while checking, before writing.
        const liar = await uploadZip(s, '/tmp/bomb', [
          { name: 'liar.bin', data: 'tiny', rawData: zlib.deflateRawSync(zeros) },
        ]);
        expectRefused(liar, 400, 'BAD_ARCHIVE');
        // More entries than allowed, each empty.
        const entries = Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => ({ name: `e${i}`, data: '' }));
        const crowd = await uploadZip(s, '/tmp/bomb', entries);
        expectRefused(crowd, 413, 'PAYLOAD_TOO_LARGE');
        expect(crowd.json.details).toMatchObject({ limit: 'max_entries', max: MAX_ENTRIES });
        // Not a zip at all.
        expectRefused(
          await upload(
            s,
            'destination=/tmp/bomb&recursive=true',
            'x.zip',
            Buffer.from('PK\x03\x04 not really'),
          ),
          400,
          'BAD_ARCHIVE',
        );
      }
      expect(await run(surfaces[0]!, 'ls -A /tmp/bomb 2>/dev/null | wc -l')).toBe('0');
    });

    it('a FIFO: read, write and edit answer at once with an error observation', async () => {
      for (const s of surfaces) {
        const notRegular = /FIFO|not a regular file/i;
        expectErrorObservation(await act(s, { action: 'read', args: { path: '/tmp/fifo' } }), notRegular);
        expectErrorObservation(
          await act(s, { action: 'read', args: { path: '/tmp/fifo', impl_source: 'oh_aci' } }),
          /./,
        );
        expectErrorObservation(
          await act(s, { action: 'write', args: { path: '/tmp/fifo', content: 'x' } }),
          notRegular,
        );
        for (const args of [
          { command: 'view', path: '/tmp/fifo' },
          { command: 'str_replace', path: '/tmp/fifo', old_str: 'a', new_str: 'b' },
          { command: 'insert', path: '/tmp/fifo', insert_line: 0, new_str: 'b' },
          { command: 'create', path: '/tmp/fifo', file_text: 'x' },
          { command: 'undo_edit', path: '/tmp/fifo' },
        ]) {
          expectErrorObservation(await act(s, { action: 'edit', args }), /./);
        }
        // Relative, through the shell's working directory.
        await run(s, 'cd /tmp');
        expectErrorObservation(await act(s, { action: 'read', args: { path: 'fifo' } }), notRegular);
        // Devices and sockets likewise.
        expectErrorObservation(await act(s, { action: 'read', args: { path: '/dev/zero' } }), /device/i);
        expectErrorObservation(
          await act(s, { action: 'write', args: { path: '/dev/null', content: 'x' } }),
          /device/i,
        );
        // A download of the FIFO is refused; one of its directory skips it.
        expectRefused(await hit(s, 'GET', '/download_files?path=/tmp/fifo'), 400, 'VALIDATION_FAILED');
        // An upload onto the FIFO's name must not block on it either.
        const onto = await upload(s, 'destination=/tmp', 'fifo', Buffer.from('x'));
        expect(onto.ms).toBeLessThan(PROMPT_MS);
        expectRefused(onto, 409, 'CONFLICT');
        expect(onto.json.message).toContain('FIFO');
      }
      expect(await run(surfaces[0]!, 'test -p /tmp/fifo && echo still a fifo')).toBe('still a fifo');
    });

    it('NUL bytes in names and paths: refused, nothing created', async () => {
      for (const s of surfaces) {
        expectErrorObservation(await act(s, { action: 'read', args: { path: '/tmp/regular\0/x' } }), /./);
        expectErrorObservation(
          await act(s, { action: 'write', args: { path: '/tmp/nul\0evil', content: 'x' } }),
          /./,
        );
        expectErrorObservation(
          await act(s, { action: 'edit', args: { command: 'create', path: '/tmp/nul\0x', file_text: 'x' } }),
          /./,
        );
        expectErrorObservation(
          await act(s, { action: 'edit', args: { command: 'view', path: '/tmp\0' } }),
          /./,
        );
        // A command with a NUL: the shell gets some command; the action answers and the shell lives.
        const cmd = await act(s, { action: 'run', args: { command: 'echo a\0b' } });
        expect(cmd.status).toBe(200);
        expect(cmd.ms).toBeLessThan(PROMPT_MS * 2);
        expect(await run(s, 'echo after')).toBe('after');

        expectRefused(
          await hit(s, 'GET', '/download_files?path=/etc/passwd%00.txt'),
          400,
          'VALIDATION_FAILED',
        );
        const listed = await hit(s, 'POST', '/list_files', { json: { path: '/tmp\0/x' } });
        expect(listed.status).toBe(200);
        expect(listed.json).toEqual([]);
        expectRefused(
          await upload(s, 'destination=/tmp/nul%00evil', 'f', Buffer.from('x')),
          400,
          'VALIDATION_FAILED',
        );
        const nulName = await upload(s, 'destination=/tmp/dest', Buffer.from('evil\0.txt'), Buffer.from('x'));
        expectRefused(nulName, 400, ['PATH_NOT_ALLOWED', 'VALIDATION_FAILED']);
        expectRefused(
          await upload(
            s,
            'destination=/tmp/dest',
            Buffer.from('evil\0.zip'),
            buildZip([{ name: 'a', data: 'x' }]),
          ),
          400,
          ['PATH_NOT_ALLOWED', 'VALIDATION_FAILED'],
        );
      }
      expect(await run(surfaces[0]!, 'ls -A /tmp/dest')).toBe('..%2Fevil');
      await nothingEscaped();
    });

    it('a JSON body over 64 MiB: 413 PAYLOAD_TOO_LARGE, with a length or chunked', async () => {
      const big = JSON.stringify({
        action: { action: 'run', args: { command: `echo ${'x'.repeat(64 * 1024 * 1024 + 16)}` } },
      });
      for (const s of surfaces) {
        expectRefused(
          await hit(s, 'POST', '/execute_action', {
            body: big,
            headers: { 'content-type': 'application/json' },
          }),
          413,
          'PAYLOAD_TOO_LARGE',
        );
        expectRefused(
          await hit(s, 'POST', '/list_files', { body: big, headers: { 'content-type': 'application/json' } }),
          413,
          'PAYLOAD_TOO_LARGE',
        );
        // Chunked, no length: the server stops reading at the limit and answers (or closes).
        const url = new URL(s.base);
        const auth = Object.entries(s.headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('');
        const chunked = await rawRequest(
          s.base,
          `POST ${url.pathname.replace(/\/$/, '')}/execute_action HTTP/1.1\r\nHost: ${url.host}\r\n${auth}` +
            'content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n',
          { chunk: Buffer.alloc(1024 * 1024, 0x20), count: 80 },
        );
        seen.push(`${s.name} chunked 80 MiB ${chunked.status}`);
        expect([413, 0], chunked.text.slice(0, 300)).toContain(chunked.status);
        if (chunked.status === 413) expect(chunked.text).toContain('PAYLOAD_TOO_LARGE');
      }
    });

    it('huge headers and URLs: 431 or a clean close, never a crash', async () => {
      for (const s of surfaces) {
        const url = new URL(s.base);
        const prefix = url.pathname.replace(/\/$/, '');
        const auth = Object.entries(s.headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('');
        const cases = {
          'one 100 KB header': `GET ${prefix}/list_files HTTP/1.1\r\nHost: ${url.host}\r\n${auth}x-big: ${'a'.repeat(100_000)}\r\nconnection: close\r\n\r\n`,
          '5000 small headers': `GET ${prefix}/list_files HTTP/1.1\r\nHost: ${url.host}\r\n${auth}${Array.from({ length: 5000 }, (_, i) => `x-h${i}: v\r\n`).join('')}connection: close\r\n\r\n`,
          'a 100 KB URL': `GET ${prefix}/download_files?path=/${'a'.repeat(100_000)} HTTP/1.1\r\nHost: ${url.host}\r\n${auth}connection: close\r\n\r\n`,
          'a 100 KB key': `GET ${prefix}/download_files?path=/etc HTTP/1.1\r\nHost: ${url.host}\r\nauthorization: Bearer ${'k'.repeat(100_000)}\r\nx-session-api-key: ${'k'.repeat(100_000)}\r\nconnection: close\r\n\r\n`,
        };
        for (const [what, head] of Object.entries(cases)) {
          const r = await rawRequest(s.base, head);
          seen.push(`${s.name} ${what} ${r.status}`);
          expect([431, 414, 0], `${s.name} ${what}: ${r.text.slice(0, 200)}`).toContain(r.status);
        }
        // A 10 KB header is within the limits: answered normally.
        const ok = await hit(s, 'POST', '/list_files', {
          json: { path: '/tmp' },
          headers: { 'x-ok': 'a'.repeat(10_000) },
        });
        expect(ok.status).toBe(200);
      }
    });

    it('wrong types for every field of an action, and absurd timeouts: 400 with the field named', async () => {
      const base: Record<string, Record<string, unknown>> = {
        run: { command: 'true' },
        run_ipython: { code: '1' },
        read: { path: '/tmp/regular' },
        write: { path: '/tmp/wt', content: 'x' },
        edit: { command: 'view', path: '/tmp/regular' },
      };
      const wrong: Array<[string, string, unknown]> = [
        ['run', 'command', 123],
        ['run', 'command', null],
        ['run', 'command', ['echo', 'hi']],
        ['run', 'is_input', 'yes'],
        ['run', 'blocking', 1],
        ['run', 'is_static', {}],
        ['run', 'cwd', 5],
        ['run', 'hidden', 'false'],
        ['run', 'thought', 1],
        ['run', 'security_risk', 'high'],
        ['run', 'security_risk', 1.5],
        ['run', 'confirmation_state', false],
        ['run_ipython', 'code', 1],
        ['run_ipython', 'include_extra', 'x'],
        ['run_ipython', 'kernel_init_code', 5],
        ['read', 'path', 1],
        ['read', 'path', null],
        ['read', 'start', '0'],
        ['read', 'end', 1.5],
        ['read', 'impl_source', 'x'],
        ['read', 'view_range', 'a'],
        ['read', 'view_range', [1.5, 2]],
        ['write', 'path', []],
        ['write', 'content', 5],
        ['write', 'content', null],
        ['write', 'start', '1'],
        ['write', 'end', true],
        ['edit', 'path', {}],
        ['edit', 'command', 1],
        ['edit', 'file_text', 5],
        ['edit', 'old_str', 1],
        ['edit', 'new_str', []],
        ['edit', 'insert_line', true],
        ['edit', 'insert_line', 1.5],
        ['edit', 'view_range', ['a']],
        ['edit', 'content', 1],
        ['edit', 'start', 'x'],
        ['edit', 'impl_source', 'x'],
      ];
      const envelopes: Array<[string, unknown, string[]]> = [
        ['a JSON array', [], ['VALIDATION_FAILED']],
        ['a JSON string', 'run', ['VALIDATION_FAILED']],
        ['no action', {}, ['VALIDATION_FAILED']],
        ['action as a string', { action: 'run' }, ['VALIDATION_FAILED']],
        ['action.action as a number', { action: { action: 123 } }, ['VALIDATION_FAILED']],
        ['action.action missing', { action: { args: {} } }, ['VALIDATION_FAILED']],
        ['args as a string', { action: { action: 'run', args: 'echo hi' } }, ['VALIDATION_FAILED']],
        ['args as an array', { action: { action: 'run', args: ['echo'] } }, ['VALIDATION_FAILED']],
        ['args null', { action: { action: 'run', args: null } }, ['VALIDATION_FAILED']],
        [
          'timeout "x"',
          { action: { action: 'run', args: { command: 'true' }, timeout: 'x' } },
          ['VALIDATION_FAILED'],
        ],
        [
          'timeout true',
          { action: { action: 'run', args: { command: 'true' }, timeout: true } },
          ['VALIDATION_FAILED'],
        ],
        [
          'timeout -1',
          { action: { action: 'run', args: { command: 'true' }, timeout: -1 } },
          ['VALIDATION_FAILED'],
        ],
        [
          'timeout 0',
          { action: { action: 'run', args: { command: 'true' }, timeout: 0 } },
          ['VALIDATION_FAILED'],
        ],
        [
          'timeout {}',
          { action: { action: 'run', args: { command: 'true' }, timeout: {} } },
          ['VALIDATION_FAILED'],
        ],
        [
          'timeout 2^40 ms',
          { action: { action: 'run', args: { command: 'true' }, timeout: 2 ** 40 / 1000 } },
          ['VALIDATION_FAILED'],
        ],
        [
          'timeout 2^31 ms (a timer that would fire at once)',
          { action: { action: 'run', args: { command: 'true' }, timeout: 2 ** 31 / 1000 } },
          ['VALIDATION_FAILED'],
        ],
        [
          'timeout 2^40 ms on a read',
          { action: { action: 'read', args: { path: '/tmp/regular' }, timeout: 2 ** 40 / 1000 } },
          ['VALIDATION_FAILED'],
        ],
        ['an unknown action', { action: { action: 'rm_rf', args: {} } }, ['UNKNOWN_ACTION']],
        ['an agent-side action', { action: { action: 'think', args: {} } }, ['UNKNOWN_ACTION']],
        ['a prototype key as action', { action: { action: '__proto__', args: {} } }, ['UNKNOWN_ACTION']],
        ['constructor as action', { action: { action: 'constructor', args: {} } }, ['UNKNOWN_ACTION']],
      ];
      for (const s of surfaces) {
        for (const [type, field, value] of wrong) {
          const r = await act(s, { action: type, args: { ...base[type], [field]: value } });
          expectRefused(r, 400, 'VALIDATION_FAILED');
          expect(r.json.message, `${s.name} ${type}.${field}`).toContain(field);
        }
        for (const [what, body, codes] of envelopes) {
          const r = await hit(s, 'POST', '/execute_action', { json: body });
          expect(r.status, `${s.name} ${what}: ${r.text}`).toBe(400);
          expectRefused(r, 400, codes);
        }
        // 1e999 parses as Infinity; `__proto__` keys must not confuse anything.
        for (const raw of [
          '{"action": {"action": "run", "args": {"command": "true"}, "timeout": 1e999}}',
          '{"action": {"action": "run", "args": {"command": "true"}, "timeout": 2e400}}',
          '{"__proto__": {"action": {"action": "run"}}, "action": {"action": "run", "args": {"__proto__": {"command": 1}}}}',
          '{"action": {"action": "run", "args": {"command": "true"}',
          '',
        ]) {
          const r = await hit(s, 'POST', '/execute_action', {
            body: raw,
            headers: { 'content-type': 'application/json' },
          });
          expectRefused(r, 400, ['VALIDATION_FAILED', 'INVALID_JSON']);
        }
        expectRefused(
          await hit(s, 'POST', '/execute_action', { body: 'run', headers: { 'content-type': 'text/plain' } }),
          [400, 415],
          ['UNSUPPORTED_MEDIA_TYPE', 'VALIDATION_FAILED'],
        );
        expectRefused(await hit(s, 'POST', '/list_files', { json: { path: 123 } }), 400, 'VALIDATION_FAILED');
        expectRefused(await hit(s, 'POST', '/list_files', { json: [1] }), 400, 'VALIDATION_FAILED');
        expectRefused(await hit(s, 'GET', '/download_files?path=/etc&path=/tmp'), 400, 'VALIDATION_FAILED');
        expectRefused(
          await upload(s, 'destination=/tmp/dest&recursive=maybe', 'a', Buffer.from('x')),
          400,
          'VALIDATION_FAILED',
        );
        expectRefused(
          await hit(s, 'POST', '/upload_file?destination=/tmp/dest', { json: { file: 'x' } }),
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        );
      }
    });

    it('afterwards: no 5xx, both servers alive and the same processes, the sandbox usable, the log complete', async () => {
      expect(fivexx()).toEqual([]);
      const health = await fetch(`${cp.url}/health`);
      expect(health.status).toBe(200);
      expect(serverPidNow()).toBe(serverPid);
      for (const s of surfaces) expect(await run(s, 'echo ok')).toBe('ok');
      await nothingEscaped();
      const sandbox = await call('GET', `/api/sandboxes/${id}`);
      expect(sandbox.json.state).toBe('running');
      const events = (await call('GET', `/api/sandboxes/${id}/events?limit=1000`)).json.events as Array<{
        kind: string;
        payload: any;
      }>;
      expect(events.length).toBeLessThan(1000);
      const actions = events.filter((e) => e.kind === 'action').length;
      expect(actions).toBeGreaterThan(50);
      expect(events.filter((e) => e.kind === 'observation').length).toBe(actions);
      // No restart or failure of the sandbox along the way.
      const lifecycle = events.filter((e) => e.kind === 'lifecycle').map((e) => e.payload.event);
      expect(lifecycle.filter((e) => e !== 'created' && e !== 'started')).toEqual([]);
      console.log(`bad-input corpus: ${seen.length} requests, statuses: ${summary(seen)}`);
    });
  },
);

function summary(lines: string[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) {
    const status = l.slice(l.lastIndexOf(' ') + 1);
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort()
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
}

describe.skipIf(unavailable !== undefined || notRoot !== undefined)(
  'a full disk: a 2 MiB tmpfs workspace',
  () => {
    let cp: RunningControlPlane & { apiKey: string };
    let parent: string;
    let workspace: string;
    let mounted = false;
    let id: string;
    let surfaces: Surface[];
    const call = (method: string, path: string, body?: unknown) => api(cp.url, cp.apiKey, method, path, body);
    const threeMB = 3 * 1024 * 1024;

    beforeAll(async () => {
      parent = mkdtempSync(join(tmpdir(), 'berth-diskfull-'));
      workspace = join(parent, 'ws');
      mkdirSync(workspace);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', workspace]);
      mounted = true;
      chownSync(workspace, 1000, 1000);
      cp = await startInProcess({ poolSize: 0, env: { BERTH_ALLOWED_MOUNT_ROOTS: parent } });
      const created = await call('POST', '/api/sandboxes', { workspace });
      expect(created.status, created.text).toBe(201);
      id = created.json.id;
      surfaces = [
        {
          name: 'control plane',
          base: `${cp.url}/api/sandboxes/${id}`,
          headers: { authorization: `Bearer ${cp.apiKey}` },
        },
        {
          name: 'runtime server',
          base: created.json.url,
          headers: { 'x-session-api-key': created.json.session_api_key },
        },
      ];
    });
    afterAll(async () => {
      if (cp) {
        for (const s of cp.manager.list({})) await cp.manager.delete(s.id).catch(() => undefined);
        await cp.close();
        await cp.manager['runtime'].reap(new Set());
      }
      if (mounted) {
        try {
          execFileSync('umount', [workspace]);
        } catch {
          execFileSync('umount', ['-l', workspace]);
        }
      }
      if (parent) rmSync(parent, { recursive: true, force: true });
    });

    it('a 3 MB write, edit or upload fails cleanly and leaves nothing; a small write still works', async () => {
      const listing = async (s: Surface) => run(s, 'ls -A /workspace');
      expect(await listing(surfaces[0]!)).toBe('');
      for (const s of surfaces) {
        const write = await act(s, {
          action: 'write',
          args: { path: '/workspace/big.txt', content: 'x'.repeat(threeMB) },
        });
        expectErrorObservation(write, /no space|ENOSPC/i);
        expect(await listing(s)).toBe('');

        const create = await act(s, {
          action: 'edit',
          args: { command: 'create', path: '/workspace/big.py', file_text: 'x'.repeat(threeMB) },
        });
        expectErrorObservation(create, /no space|ENOSPC/i);
        expect(await listing(s)).toBe('');

        const up = await upload(s, 'destination=/workspace', 'big.bin', Buffer.alloc(threeMB, 7));
        expectRefused(up, 507, 'NO_SPACE');
        expect(await listing(s)).toBe('');

        const zip = await uploadZip(s, '/workspace', [{ name: 'zeros.bin', data: Buffer.alloc(threeMB) }]);
        expectRefused(zip, 507, 'NO_SPACE');
        expect(await listing(s)).toBe('');

        // From the shell, the agent sees the same full disk; its partial file is its own to remove.
        await run(s, 'head -c 3M /dev/zero > /workspace/shell.bin; rm -f /workspace/shell.bin');
        expect(await listing(s)).toBe('');
      }
      // Nothing on the host side either: no partial file, no temporary name.
      expect(readdirSync(workspace)).toEqual([]);

      const small = await act(surfaces[0]!, {
        action: 'write',
        args: { path: '/workspace/small.txt', content: 'fine' },
      });
      expect(small.json.observation).toBe('write');
      const read = await act(surfaces[1]!, { action: 'read', args: { path: '/workspace/small.txt' } });
      expect(read.json.content).toBe('fine\n');
      const up = await upload(surfaces[0]!, 'destination=/workspace', 'small.bin', Buffer.from('ok'));
      expect(up.status).toBe(200);
      expect(readdirSync(workspace).sort()).toEqual(['small.bin', 'small.txt']);

      expect(fivexx()).toEqual([]);
      expect((await fetch(`${cp.url}/health`)).status).toBe(200);
      const events = (await call('GET', `/api/sandboxes/${id}/events?limit=1000`)).json.events as Array<{
        kind: string;
      }>;
      const actions = events.filter((e) => e.kind === 'action').length;
      expect(events.filter((e) => e.kind === 'observation').length).toBe(actions);
    });
  },
);
