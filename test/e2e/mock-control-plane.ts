/**
 * A THROWAWAY, IN-MEMORY MOCK of the control plane's HTTP and WebSocket contract (src/protocol/api.ts),
 * for developing and unit-checking the web UI without Docker. It fakes a shell, a file system and the
 * event log. It is never a substitute for the real control plane: web-ui.test.ts drives the real one.
 *
 *   node --import tsx test/e2e/mock-control-plane.ts   # serves web/dist on http://127.0.0.1:3000
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import yazl from 'yazl';
import type { CreateSandboxBody, Sandbox, SandboxEvent } from '../../src/protocol/api.js';

export interface MockOptions {
  /** API keys; none: no auth. */
  apiKeys?: string[];
  /** Directory served at / (the built UI). */
  webRoot?: string;
  port?: number;
}

interface Session {
  scrollback: string;
  line: string;
  clients: Set<WebSocket>;
}

interface MockSandbox {
  record: Sandbox;
  files: Map<string, Buffer>;
  dirs: Set<string>;
  sessions: Map<string, Session>;
}

export interface MockControlPlane {
  url: string;
  close(): Promise<void>;
  sandboxes: Map<string, MockSandbox>;
  /** The next upload answers this error (then uploads work again). */
  failNextUpload: { status: number; code: string; message: string } | null;
  /** Exact bytes of a file, as the API would give them. */
  readFile(id: string, file: string): string | undefined;
  /** Runs an action as an agent would (recorded in the event log). */
  execute(id: string, action: string, args: Record<string, unknown>): Promise<unknown>;
  /** Changes a sandbox's state as if the engine had (e.g. the container died). */
  setState(id: string, state: Sandbox['state'], error?: string): void;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

const PROMPT = '\x1b[1;32magent@sandbox\x1b[0m:\x1b[1;34m/workspace\x1b[0m$ ';
const SCROLLBACK_CAP = 64 * 1024;

export async function startMockControlPlane(options: MockOptions = {}): Promise<MockControlPlane> {
  const keys = new Set(options.apiKeys ?? []);
  const sandboxes = new Map<string, MockSandbox>();
  const events = new Map<string, SandboxEvent[]>();
  const globalClients = new Set<WebSocket>();
  const sandboxClients = new Map<string, Set<WebSocket>>();
  let seq = 0;
  const startedAt = Date.now();
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const mock: MockControlPlane = {
    url: '',
    close: async () => undefined,
    sandboxes,
    failNextUpload: null,
    readFile: (id, file) => sandboxes.get(id)?.files.get(file)?.toString('utf8'),
    execute: async (id, action, args) => {
      const sb = sandboxes.get(id);
      if (!sb) throw new Error(`no sandbox ${id}`);
      return runAction(sb, action, args);
    },
    setState: (id, state, error) => {
      const sb = sandboxes.get(id);
      if (!sb) return;
      sb.record = { ...sb.record, state, error: error ?? null };
      lifecycle(sb, state, error ?? 'set by the test');
      broadcastSandbox(sb.record);
    },
  };

  const now = () => new Date().toISOString();
  const send = (ws: WebSocket, data: unknown) => {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(data));
  };

  function broadcastSandbox(record: Sandbox) {
    for (const c of globalClients) send(c, { type: 'sandbox', sandbox: record });
  }

  function record(
    sb: MockSandbox,
    kind: SandboxEvent['kind'],
    payload: unknown,
    durationMs: number | null = null,
  ) {
    const e: SandboxEvent = {
      seq: ++seq,
      sandbox_id: sb.record.id,
      kind,
      at: now(),
      payload,
      duration_ms: durationMs,
    };
    const list = events.get(sb.record.id) ?? [];
    list.push(e);
    events.set(sb.record.id, list);
    if (kind !== 'lifecycle') sb.record = { ...sb.record, last_activity_at: e.at };
    for (const c of globalClients) send(c, e);
    for (const c of sandboxClients.get(sb.record.id) ?? []) send(c, e);
    return e;
  }

  function lifecycle(sb: MockSandbox, event: string, reason: string) {
    record(sb, 'lifecycle', { event, reason });
  }

  function createSandbox(body: CreateSandboxBody): MockSandbox {
    const id = `sb-${randomBytes(5).toString('hex')}`;
    const at = now();
    const sb: MockSandbox = {
      record: {
        id,
        state: 'starting',
        image: body.image ?? 'berth-runtime:mock',
        workspace: body.workspace ?? null,
        url: 'http://127.0.0.1:0',
        session_api_key: randomBytes(8).toString('hex'),
        container_id: randomBytes(12).toString('hex'),
        labels: body.labels ?? {},
        created_at: at,
        last_activity_at: at,
        expires_at: body.timeout_seconds
          ? new Date(Date.now() + body.timeout_seconds * 1000).toISOString()
          : null,
        from_pool: false,
        error: null,
      },
      files: new Map([
        ['/workspace/README.md', Buffer.from('# Mock workspace\n\nFiles here live in memory.\n')],
        ['/workspace/src/main.py', Buffer.from('print("hello from the mock")\n')],
      ]),
      dirs: new Set(['/workspace', '/workspace/src']),
      sessions: new Map(),
    };
    sandboxes.set(id, sb);
    lifecycle(sb, 'created', 'api');
    const t = setTimeout(() => {
      timers.delete(t);
      if (sb.record.state !== 'starting') return;
      sb.record = { ...sb.record, state: 'running' };
      lifecycle(sb, 'running', 'container started');
      broadcastSandbox(sb.record);
    }, 300);
    timers.add(t);
    return sb;
  }

  // ---------- the fake shell ----------

  function shell(sb: MockSandbox, line: string): { out: string; code: number } {
    const trimmed = line.trim();
    if (!trimmed) return { out: '', code: 0 };
    const [cmd, ...rest] = trimmed.split(/\s+/);
    const argText = trimmed.slice(cmd!.length).trim();
    const unquote = (s: string) => s.replace(/(["'])(.*?)\1/g, '$2');
    switch (cmd) {
      case 'echo': {
        const redirect = /^(.*?)\s*>\s*(\S+)$/.exec(argText);
        if (redirect) {
          const file = path.posix.resolve('/workspace', redirect[2]!);
          sb.files.set(file, Buffer.from(`${unquote(redirect[1]!)}\n`));
          return { out: '', code: 0 };
        }
        return { out: `${unquote(argText)}\n`, code: 0 };
      }
      case 'pwd':
        return { out: '/workspace\n', code: 0 };
      case 'ls':
        return {
          out: `${listDir(sb, rest[0] ? path.posix.resolve('/workspace', rest[0]) : '/workspace').join('  ')}\n`,
          code: 0,
        };
      case 'cat': {
        const f = sb.files.get(path.posix.resolve('/workspace', rest[0] ?? ''));
        return f
          ? { out: f.toString('utf8'), code: 0 }
          : { out: `cat: ${rest[0]}: No such file or directory\n`, code: 1 };
      }
      case 'colors':
        return {
          out: `${[31, 32, 33, 34, 35, 36].map((c) => `\x1b[${c}mcolour ${c}\x1b[0m`).join(' ')}\n`,
          code: 0,
        };
      case 'false':
        return { out: '', code: 1 };
      default:
        return { out: `\x1b[31mbash: ${cmd}: command not found\x1b[0m\n`, code: 127 };
    }
  }

  function listDir(sb: MockSandbox, dir: string): string[] {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    const subdirs = new Set<string>();
    const files: string[] = [];
    for (const d of sb.dirs)
      if (d.startsWith(prefix) && !d.slice(prefix.length).includes('/'))
        subdirs.add(`${d.slice(prefix.length)}/`);
    for (const f of sb.files.keys()) {
      if (!f.startsWith(prefix)) continue;
      const rel = f.slice(prefix.length);
      if (rel.includes('/')) subdirs.add(`${rel.split('/')[0]}/`);
      else files.push(rel);
    }
    const sort = (a: string, b: string) => a.toLowerCase().localeCompare(b.toLowerCase());
    return [...[...subdirs].sort(sort), ...files.sort(sort)];
  }

  function termWrite(session: Session, data: string) {
    session.scrollback = (session.scrollback + data).slice(-SCROLLBACK_CAP);
    for (const c of session.clients) send(c, { type: 'output', data });
  }

  function termInput(sb: MockSandbox, session: Session, data: string) {
    for (let i = 0; i < data.length; i++) {
      const ch = data[i]!;
      if (ch === '\x1b') {
        // Skip an escape sequence (arrows and the like).
        while (i + 1 < data.length && !/[A-Za-z~]/.test(data[i + 1]!)) i++;
        i++;
      } else if (ch === '\r' || ch === '\n') {
        termWrite(session, '\r\n');
        const line = session.line;
        session.line = '';
        if (line.trim() === 'exit') {
          for (const c of session.clients) {
            send(c, { type: 'exit', code: 0 });
            c.close(1000);
          }
          sb.sessions.forEach((s, k) => {
            if (s === session) sb.sessions.delete(k);
          });
          return;
        }
        if (line.trim() === 'clear') termWrite(session, '\x1b[2J\x1b[H');
        else termWrite(session, shell(sb, line).out.replace(/\n/g, '\r\n'));
        termWrite(session, PROMPT);
      } else if (ch === '\x7f') {
        if (session.line) {
          session.line = session.line.slice(0, -1);
          termWrite(session, '\b \b');
        }
      } else if (ch === '\x03') {
        session.line = '';
        termWrite(session, `^C\r\n${PROMPT}`);
      } else if (ch >= ' ') {
        session.line += ch;
        termWrite(session, ch);
      }
    }
  }

  // ---------- actions ----------

  async function runAction(sb: MockSandbox, action: string, args: Record<string, unknown>): Promise<unknown> {
    const started = Date.now();
    record(sb, 'action', { action, args });
    await new Promise((r) => setTimeout(r, 40));
    let obs: Record<string, unknown>;
    const p = typeof args.path === 'string' ? path.posix.resolve('/workspace', args.path) : '';
    switch (action) {
      case 'run': {
        const command = String(args.command ?? '');
        const { out, code } = shell(sb, command);
        obs = {
          observation: 'run',
          content: out,
          extras: {
            command,
            hidden: false,
            metadata: { exit_code: code, pid: 42, working_dir: '/workspace' },
          },
          message: `Command \`${command}\` executed with exit code ${code}.`,
          success: code === 0,
        };
        break;
      }
      case 'read': {
        const f = sb.files.get(p);
        obs = f
          ? f.includes(0)
            ? {
                observation: 'error',
                content: 'ERROR_BINARY_FILE',
                extras: { error_id: '' },
                message: 'ERROR_BINARY_FILE',
              }
            : {
                observation: 'read',
                content: f.toString('utf8'),
                extras: { path: p, impl_source: 'default' },
                message: `I read the file ${p}.`,
              }
          : {
              observation: 'error',
              content: `File not found: ${p}. Your current working directory is /workspace.`,
              extras: { error_id: '' },
              message: `File not found: ${p}.`,
            };
        break;
      }
      case 'write': {
        const content = String(args.content ?? '');
        sb.files.set(p, Buffer.from(`${content.split('\n').join('\n')}\n`));
        obs = {
          observation: 'write',
          content: '',
          extras: { path: p },
          message: `I wrote to the file ${p}.`,
        };
        break;
      }
      default:
        obs = {
          observation: 'error',
          content: `Unknown action ${action}`,
          extras: { error_id: '' },
          message: 'error',
        };
    }
    record(sb, 'observation', obs, Date.now() - started);
    return obs;
  }

  // ---------- HTTP ----------

  function fail(res: ServerResponse, status: number, code: string, message: string) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ code, message }));
  }
  function ok(res: ServerResponse, body: unknown, status = 200) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }
  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }
  const authorized = (req: IncomingMessage, url: URL) => {
    if (keys.size === 0) return true;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    return keys.has(bearer ?? url.searchParams.get('token') ?? '');
  };

  function serveStatic(res: ServerResponse, pathname: string) {
    const root = options.webRoot;
    if (!root) return fail(res, 404, 'NOT_FOUND', 'no web UI');
    const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
    const file = path.resolve(root, rel);
    if (!file.startsWith(path.resolve(root)) || !existsSync(file) || !statSync(file).isFile()) {
      return fail(res, 404, 'NOT_FOUND', `no file ${pathname}`);
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://mock');
    const p = url.pathname;
    const method = req.method ?? 'GET';
    if (p === '/health') return ok(res, { status: 'ok', docker: 'ok', version: '0.0.0-mock' });
    if (!p.startsWith('/api/')) return serveStatic(res, p);
    if (!authorized(req, url)) return fail(res, 401, 'UNAUTHORIZED', 'Missing or wrong API key');
    if (p === '/api/auth/check') return ok(res, { ok: true });
    if (p === '/api/sandboxes' && method === 'GET') {
      const state = url.searchParams.get('state');
      return ok(res, {
        sandboxes: [...sandboxes.values()].map((s) => s.record).filter((s) => !state || s.state === state),
      });
    }
    if (p === '/api/sandboxes' && method === 'POST') {
      const body = (await readJson(req)) as CreateSandboxBody;
      const sb = createSandbox(body);
      broadcastSandbox(sb.record);
      return ok(res, sb.record, 201);
    }
    const m = /^\/api\/sandboxes\/([^/]+)(?:\/(.+))?$/.exec(p);
    if (!m) return fail(res, 404, 'NOT_FOUND', `no route ${method} ${p}`);
    const sb = sandboxes.get(decodeURIComponent(m[1]!));
    if (!sb) return fail(res, 404, 'NOT_FOUND', `sandbox ${m[1]} not found`);
    const sub = m[2] ?? '';
    const needRunning = () => {
      if (sb.record.state === 'running') return false;
      fail(res, 409, 'CONFLICT', `sandbox ${sb.record.id} is ${sb.record.state}`);
      return true;
    };
    if (sub === '' && method === 'GET') return ok(res, sb.record);
    if (sub === '' && method === 'DELETE') {
      sandboxes.delete(sb.record.id);
      sb.record = { ...sb.record, state: 'deleted' };
      lifecycle(sb, 'deleted', 'api');
      broadcastSandbox(sb.record);
      for (const s of sb.sessions.values()) for (const c of s.clients) c.close(1001);
      res.writeHead(204).end();
      return;
    }
    if ((sub === 'pause' || sub === 'resume') && method === 'POST') {
      const from = sub === 'pause' ? 'running' : 'paused';
      if (sb.record.state !== from)
        return fail(res, 409, 'CONFLICT', `sandbox is ${sb.record.state}, not ${from}`);
      sb.record = { ...sb.record, state: sub === 'pause' ? 'paused' : 'running' };
      lifecycle(sb, sb.record.state, 'api');
      broadcastSandbox(sb.record);
      if (sub === 'pause') for (const s of sb.sessions.values()) for (const c of s.clients) c.close(1001);
      return ok(res, sb.record);
    }
    if (sub === 'stats' && method === 'GET') {
      if (needRunning()) return;
      const t = (Date.now() - startedAt) / 1000;
      return ok(res, {
        uptime: (Date.now() - Date.parse(sb.record.created_at)) / 1000,
        idle_time: (Date.now() - Date.parse(sb.record.last_activity_at)) / 1000,
        resources: {
          cpu_percent: 3 + 2 * Math.sin(t),
          memory: { rss: 48_000_000, vms: 300_000_000, percent: 2.3 },
          disk: { total: 64e9, used: 12.5e9, free: 51.5e9, percent: 19.5 },
          io: { read_bytes: 0, write_bytes: 0 },
        },
      });
    }
    if (sub === 'execute_action' && method === 'POST') {
      if (needRunning()) return;
      const body = await readJson(req);
      const a = body.action as { action: string; args?: Record<string, unknown> };
      return ok(res, await runAction(sb, a.action, a.args ?? {}));
    }
    if (sub === 'list_files' && method === 'POST') {
      if (needRunning()) return;
      const body = await readJson(req);
      return ok(res, listDir(sb, String(body.path ?? '/workspace')));
    }
    if (sub === 'download_files' && method === 'GET') {
      if (needRunning()) return;
      const target = url.searchParams.get('path') ?? '/workspace';
      const zip = new yazl.ZipFile();
      for (const [f, data] of sb.files) {
        if (f === target || f.startsWith(`${target}/`))
          zip.addBuffer(data, path.posix.relative(path.posix.dirname(target), f));
      }
      zip.end();
      res.writeHead(200, {
        'content-type': 'application/zip',
        'content-disposition': `attachment; filename="${path.posix.basename(target)}.zip"`,
      });
      zip.outputStream.pipe(res);
      return;
    }
    if (sub === 'upload_file' && method === 'POST') {
      if (needRunning()) return;
      if (mock.failNextUpload) {
        const f = mock.failNextUpload;
        mock.failNextUpload = null;
        return fail(res, f.status, f.code, f.message);
      }
      const destination = url.searchParams.get('destination') ?? '/';
      const request = new Request('http://mock/upload', {
        method: 'POST',
        headers: { 'content-type': req.headers['content-type'] ?? '' },
        body: Readable.toWeb(req) as ReadableStream,
        duplex: 'half',
      } as RequestInit);
      const form = await request.formData();
      const file = form.get('file');
      if (!file || typeof file === 'string')
        return fail(res, 400, 'VALIDATION_FAILED', 'Missing multipart field "file"');
      const name = (file as File).name;
      sb.files.set(path.posix.join(destination, name), Buffer.from(await (file as File).arrayBuffer()));
      for (let d = destination; d !== '/' && d !== '.'; d = path.posix.dirname(d)) sb.dirs.add(d);
      return ok(res, { filename: name, destination, recursive: false });
    }
    if (sub === 'events' && method === 'GET') {
      const after = Number(url.searchParams.get('after') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 200);
      const page = (events.get(sb.record.id) ?? []).filter((e) => e.seq > after).slice(0, limit);
      return ok(res, { events: page, next_after: page.at(-1)?.seq ?? after });
    }
    return fail(res, 404, 'NOT_FOUND', `no route ${method} ${p}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) fail(res, 500, 'INTERNAL', (err as Error).message);
      else res.destroy();
    });
  });

  // ---------- WebSockets ----------

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://mock');
    const reject = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!authorized(req, url)) return reject(401, 'Unauthorized');
    if (url.pathname === '/api/events/stream') {
      wss.handleUpgrade(req, socket, head, (ws) => {
        globalClients.add(ws);
        ws.on('close', () => globalClients.delete(ws));
      });
      return;
    }
    const m = /^\/api\/sandboxes\/([^/]+)\/(events\/stream|terminal)$/.exec(url.pathname);
    const sb = m ? sandboxes.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m || !sb) return reject(404, 'Not Found');
    if (m[2] === 'events/stream') {
      wss.handleUpgrade(req, socket, head, (ws) => {
        const after = Number(url.searchParams.get('after') ?? 0);
        for (const e of events.get(sb.record.id) ?? []) if (e.seq > after) send(ws, e);
        const set = sandboxClients.get(sb.record.id) ?? new Set();
        set.add(ws);
        sandboxClients.set(sb.record.id, set);
        ws.on('close', () => set.delete(ws));
      });
      return;
    }
    if (sb.record.state !== 'running') return reject(409, 'Conflict');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const name = url.searchParams.get('session') ?? 'default';
      let session = sb.sessions.get(name);
      if (!session) {
        session = { scrollback: '', line: '', clients: new Set() };
        sb.sessions.set(name, session);
        session.scrollback = `Berth mock shell (session ${name})\r\n${PROMPT}`;
      }
      const s = session;
      send(ws, { type: 'output', data: s.scrollback });
      s.clients.add(ws);
      ws.on('message', (raw) => {
        let msg: { type?: string; data?: unknown; cols?: unknown; rows?: unknown };
        try {
          msg = JSON.parse(String(raw));
        } catch {
          send(ws, { type: 'error', code: 'VALIDATION_FAILED', message: 'not JSON' });
          return;
        }
        if (msg.type === 'input' && typeof msg.data === 'string') termInput(sb, s, msg.data);
        else if (msg.type === 'resize') {
          /* sizes are accepted and ignored */
        } else send(ws, { type: 'error', code: 'VALIDATION_FAILED', message: 'unknown message' });
      });
      ws.on('close', () => s.clients.delete(ws));
    });
  });

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  mock.url = `http://127.0.0.1:${port}`;
  mock.close = async () => {
    for (const t of timers) clearTimeout(t);
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return mock;
}

// Development entry: serve web/dist with a couple of sandboxes.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/dist');
  const keys = process.env.MOCK_API_KEY ? [process.env.MOCK_API_KEY] : [];
  const mock = await startMockControlPlane({
    webRoot: root,
    port: Number(process.env.PORT ?? 3000),
    apiKeys: keys,
  });
  process.stdout.write(`mock control plane (NOT the real one) on ${mock.url}, serving ${root}\n`);
}
