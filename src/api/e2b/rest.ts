/**
 * E2B's control-plane API under /e2b (E2B_API_URL=http://<berth>/e2b): create, connect, get, list,
 * kill, timeout, pause and resume, in E2B's shapes, with `X-API-Key` (a Berth API key; E2B's Python
 * SDK wants it shaped `e2b_<hex>`) and errors as `{"code": <status>, "message"}`, since the SDKs read
 * the code from the body (a 404 without `"code": 404` makes `kill()` throw instead of answering false).
 *
 * A sandbox made here is an ordinary Berth sandbox: its metadata are its labels, its E2B timeout its
 * lifetime, and `autoPause` the `berth.on_timeout=pause` label; the template is the image.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import { toBerthError } from '../../http/errors.js';
import type { CreateSandboxBody } from '../../protocol/api.js';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { ManagerSettings, SandboxManager } from '../../sandboxes/manager.js';
import { ON_TIMEOUT_LABEL } from '../../sandboxes/reaper.js';
import type { SandboxRecord } from '../../store/sandboxes.js';
import { errorBody } from '../auth.js';
import { envdAccessToken, trafficAccessToken } from './tokens.js';

export const E2B_PREFIX = '/e2b';
/**
 * The envd version Berth reports: the SDKs enable features by it. 0.5.7 is the highest whose features
 * Berth implements (octet-stream uploads); 0.6.2 would turn on file metadata, kept in xattrs, which
 * Berth does not keep.
 */
export const ENVD_VERSION = '0.5.7';
/** The template name of the configured runtime image, as E2B's default template is named. */
export const DEFAULT_TEMPLATE = 'base';
/**
 * Templates served by the runtime image itself: `base`, and `code-interpreter-v1` (the default of the
 * code-interpreter SDKs), because every runtime server also serves the code interpreter (port 49999).
 */
const BUILT_IN_TEMPLATES: ReadonlySet<string> = new Set([DEFAULT_TEMPLATE, 'code-interpreter-v1']);
/** E2B's default sandbox timeout, in seconds, when a create names none. */
const DEFAULT_TIMEOUT_SECONDS = 300;
/** Longest E2B timeout accepted: Berth's longest lifetime. */
const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;
/** E2B's page size limits for GET /v2/sandboxes. */
const MAX_PAGE = 100;
/** The label holding the template a sandbox was made from. */
export const TEMPLATE_LABEL = 'berth.e2b.template';
/** What E2B calls the owner of a sandbox; a required field of its responses with no meaning here. */
const CLIENT_ID = 'berth';

export interface E2bRestOptions {
  manager: SandboxManager;
  defaultLimits: ManagerSettings['limits'];
}

/** E2B's error: the status, and the same status as the body's code. */
function e2bError(status: number, message: string): BerthError {
  const code =
    status === 404
      ? ErrorCode.NOT_FOUND
      : status === 409
        ? ErrorCode.CONFLICT
        : status === 400
          ? ErrorCode.VALIDATION_FAILED
          : ErrorCode.INTERNAL;
  return new BerthError(code, message);
}

export function e2bRestRoutes(opts: E2bRestOptions): FastifyPluginAsync {
  const { manager } = opts;
  return async (app: FastifyInstance) => {
    app.addHook('onRoute', (route) => {
      route.config = { ...route.config, e2bErrors: true };
      route.schema = { ...route.schema, hide: true };
    });
    app.setErrorHandler((error, req, reply) => {
      const berth = toBerthError(error, req);
      if (berth.code === ErrorCode.INTERNAL) req.log.error({ err: error }, 'E2B request failed');
      reply.code(berth.status).send(errorBody(req, berth));
    });

    const live = (id: string): SandboxRecord => {
      const rec = findE2bSandbox(manager, id);
      if (!rec) throw e2bError(404, `sandbox "${id}" not found`);
      return rec;
    };

    const create = async (body: unknown, reply: FastifyReply) => {
      const rec = await createSandbox(manager, body);
      return reply.code(201).send(sandboxJson(rec));
    };
    app.post('/sandboxes', async (req, reply) => create(req.body, reply));
    app.post('/v2/sandboxes', async (req, reply) => create(req.body, reply));

    app.get<{ Params: { id: string } }>('/sandboxes/:id', async (req) =>
      detailJson(live(req.params.id), opts.defaultLimits),
    );

    // v1 lists every sandbox at once; v2 a page at a time.
    app.get<{ Querystring: Record<string, unknown> }>('/sandboxes', async (req) =>
      listSandboxes(manager, req.query, false).page.map((r) => listedJson(r, opts.defaultLimits)),
    );
    app.get<{ Querystring: Record<string, unknown> }>('/v2/sandboxes', async (req, reply) => {
      const { page, next } = listSandboxes(manager, req.query, true);
      if (next) reply.header('x-next-token', next);
      return page.map((r) => listedJson(r, opts.defaultLimits));
    });

    app.delete<{ Params: { id: string } }>('/sandboxes/:id', async (req, reply) => {
      live(req.params.id);
      // Ended by its timeout (or another kill) while this one waited: E2B's "not found", kill() false.
      if (!(await manager.delete(req.params.id, { reason: 'killed (E2B)' })))
        throw e2bError(404, `sandbox "${req.params.id}" not found`);
      return reply.code(204).send();
    });

    // E2B keeps a series sampled every few seconds; Berth answers one sample, taken now. Paused and
    // stopped sandboxes use nothing, so they answer an empty series.
    app.get<{ Params: { id: string } }>('/sandboxes/:id/metrics', async (req) => {
      const rec = live(req.params.id);
      if (rec.state !== 'running') return [];
      const m = await manager.resources(rec.id);
      const now = new Date();
      return [
        {
          timestamp: now.toISOString(),
          timestampUnix: Math.floor(now.getTime() / 1000),
          cpuUsedPct: m.cpuUsedPct,
          cpuCount: Math.max(1, Math.round(m.cpuCount)),
          memUsed: m.memUsed,
          memTotal: m.memTotal,
          memCache: m.memCache,
          diskUsed: m.diskUsed,
          diskTotal: m.diskTotal,
        },
      ];
    });

    app.post<{ Params: { id: string } }>('/sandboxes/:id/timeout', async (req, reply) => {
      live(req.params.id);
      manager.extendTimeout(
        req.params.id,
        timeoutSeconds((req.body as { timeout?: unknown })?.timeout, undefined),
      );
      return reply.code(204).send();
    });

    const connect = async (id: string, body: unknown, reply: FastifyReply) => {
      let rec = live(id);
      const seconds = timeoutSeconds(
        (body as { timeout?: unknown } | undefined)?.timeout,
        DEFAULT_TIMEOUT_SECONDS,
      );
      let status = 200;
      if (rec.state === 'paused' || rec.state === 'stopped') {
        rec = await manager.resume(id, 'connected (E2B)');
        status = 201;
      } else if (rec.state === 'exited') rec = await manager.startIfExited(id, 'connected (E2B)');
      // A connect extends the end, never shortens it.
      const wanted = Date.now() + seconds * 1000;
      if (rec.expires_at === null || Date.parse(rec.expires_at) < wanted)
        rec = manager.extendTimeout(id, seconds);
      return reply.code(status).send(sandboxJson(rec));
    };
    app.post<{ Params: { id: string } }>('/sandboxes/:id/connect', async (req, reply) =>
      connect(req.params.id, req.body, reply),
    );
    app.post<{ Params: { id: string } }>('/v2/sandboxes/:id/connect', async (req, reply) =>
      connect(req.params.id, req.body, reply),
    );
    app.post<{ Params: { id: string } }>('/sandboxes/:id/resume', async (req, reply) =>
      connect(req.params.id, req.body, reply),
    );

    app.post<{ Params: { id: string } }>('/sandboxes/:id/pause', async (req, reply) => {
      const rec = live(req.params.id);
      if (rec.state === 'paused' || rec.state === 'stopped')
        throw e2bError(409, `sandbox "${rec.id}" is already paused`);
      await manager.pause(rec.id, 'paused (E2B)');
      return reply.code(204).send();
    });
  };
}

async function createSandbox(manager: SandboxManager, raw: unknown): Promise<SandboxRecord> {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw)))
    throw e2bError(400, 'the body must be a JSON object');
  const body = (raw ?? {}) as Record<string, unknown>;
  const template =
    body.templateID === undefined || body.templateID === '' ? DEFAULT_TEMPLATE : body.templateID;
  if (typeof template !== 'string') throw e2bError(400, 'templateID must be a string');
  const request: CreateSandboxBody = {
    timeout_seconds: timeoutSeconds(body.timeout, DEFAULT_TIMEOUT_SECONDS),
    ...(BUILT_IN_TEMPLATES.has(template) ? {} : { image: template }),
    ...(body.metadata === undefined ? {} : { labels: stringMap(body.metadata, 'metadata') }),
    ...(body.envVars === undefined ? {} : { env: stringMap(body.envVars, 'envVars') }),
    // No internet: the network without egress.
    ...(body.allow_internet_access === false ? { network: 'internal' } : {}),
  };
  const own: Record<string, string> = { [TEMPLATE_LABEL]: template };
  if (body.autoPause === true) own[ON_TIMEOUT_LABEL] = 'pause';
  try {
    return await manager.create(request, { labels: own });
  } catch (err) {
    const e = err as BerthError;
    // An image that is not there, or not a runtime image, is a template E2B would not know.
    // (By code, not by wording: an engine outage that mentions the image is not a missing template.)
    if (
      !BUILT_IN_TEMPLATES.has(template) &&
      (e.code === ErrorCode.NOT_FOUND ||
        (e.code === ErrorCode.VALIDATION_FAILED && (e.message ?? '').includes(template)))
    )
      throw e2bError(404, `template '${template}' not found`);
    throw err;
  }
}

function timeoutSeconds(raw: unknown, fallback: number | undefined): number {
  if (raw === undefined && fallback !== undefined) return fallback;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > MAX_TIMEOUT_SECONDS)
    throw e2bError(400, `timeout must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}`);
  return raw;
}

function stringMap(raw: unknown, field: string): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw e2bError(400, `${field} must be an object of strings`);
  for (const [k, v] of Object.entries(raw))
    if (typeof v !== 'string') throw e2bError(400, `${field}.${k} must be a string`);
  return raw as Record<string, string>;
}

function templateOf(rec: SandboxRecord): string {
  return rec.labels[TEMPLATE_LABEL] ?? DEFAULT_TEMPLATE;
}

/** A sandbox's metadata: its labels but Berth's own. */
function metadataOf(rec: SandboxRecord): Record<string, string> {
  return Object.fromEntries(Object.entries(rec.labels).filter(([k]) => !k.startsWith('berth.')));
}

/** Whether E2B would still know the sandbox: not deleted, vanished, or broken past use. */
function existsForE2b(rec: SandboxRecord): boolean {
  return rec.state !== 'deleted' && rec.state !== 'vanished' && rec.state !== 'error';
}

/** The sandbox by id as E2B's API and envd's proxy see it; undefined for one E2B would not know. */
export function findE2bSandbox(manager: SandboxManager, id: string): SandboxRecord | undefined {
  try {
    const rec = manager.get(id);
    return existsForE2b(rec) ? rec : undefined;
  } catch (err) {
    if (err instanceof BerthError && err.code === ErrorCode.NOT_FOUND) return undefined;
    throw err;
  }
}

function e2bState(rec: SandboxRecord): 'running' | 'paused' {
  return rec.state === 'paused' || rec.state === 'stopped' ? 'paused' : 'running';
}

/** E2B's `Sandbox`: what create and connect answer. */
function sandboxJson(rec: SandboxRecord) {
  return {
    sandboxID: rec.id,
    templateID: templateOf(rec),
    alias: templateOf(rec),
    clientID: CLIENT_ID,
    envdVersion: ENVD_VERSION,
    envdAccessToken: envdAccessToken(rec.session_api_key),
    trafficAccessToken: trafficAccessToken(rec.session_api_key),
    domain: null,
  };
}

function listedJson(rec: SandboxRecord, defaults: ManagerSettings['limits']) {
  const limits = rec.spec.limits ?? {};
  return {
    sandboxID: rec.id,
    templateID: templateOf(rec),
    alias: templateOf(rec),
    clientID: CLIENT_ID,
    startedAt: rec.created_at,
    // A paused sandbox has no lifetime running: its end is open.
    endAt: rec.expires_at ?? rec.last_activity_at,
    cpuCount: Math.max(1, Math.round(limits.cpus ?? defaults.cpus ?? 1)),
    memoryMB: limits.memory_mb ?? defaults.memoryMb ?? 0,
    diskSizeMB: limits.disk_mb ?? defaults.diskMb ?? 0,
    state: e2bState(rec),
    envdVersion: ENVD_VERSION,
    metadata: metadataOf(rec),
  };
}

/** E2B's `SandboxDetail`: what get answers. */
function detailJson(rec: SandboxRecord, defaults: ManagerSettings['limits']) {
  return {
    ...listedJson(rec, defaults),
    envdAccessToken: envdAccessToken(rec.session_api_key),
    domain: null,
    lifecycle: { onTimeout: rec.labels[ON_TIMEOUT_LABEL] === 'pause' ? 'pause' : 'kill', autoResume: false },
  };
}

/** GET /v2/sandboxes: live sandboxes, newest first, filtered by state and metadata, a page at a time. */
function listSandboxes(
  manager: SandboxManager,
  query: Record<string, unknown>,
  paged: boolean,
): { page: SandboxRecord[]; next: string | undefined } {
  const states = typeof query.state === 'string' && query.state !== '' ? query.state.split(',') : undefined;
  for (const s of states ?? [])
    if (s !== 'running' && s !== 'paused') throw e2bError(400, `state must be running or paused, not "${s}"`);
  const metadata = typeof query.metadata === 'string' ? parseMetadataQuery(query.metadata) : {};
  const limit = query.limit === undefined ? MAX_PAGE : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw e2bError(400, `limit must be a whole number from 1 to ${MAX_PAGE}`);
  const offset = query.nextToken === undefined ? 0 : decodeToken(String(query.nextToken));
  const order = query.order === 'asc' ? 1 : -1;
  const all = manager
    .list({ labels: metadata })
    .filter(existsForE2b)
    .filter((r) => !states || states.includes(e2bState(r)))
    .sort(
      (a, b) =>
        order * (Date.parse(a.created_at) - Date.parse(b.created_at)) || order * a.id.localeCompare(b.id),
    );
  if (!paged) return { page: all, next: undefined };
  const page = all.slice(offset, offset + limit);
  const end = offset + page.length;
  return { page, next: end < all.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

/** The SDK sends metadata as one URL-encoded `k=v&k2=v2` string, each key and value encoded again. */
function parseMetadataQuery(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    try {
      out[decodeURIComponent(k)] = decodeURIComponent(v);
    } catch {
      throw e2bError(400, 'metadata is not a valid query string');
    }
  }
  return out;
}

function decodeToken(token: string): number {
  const n = Number(Buffer.from(token, 'base64url').toString('utf8'));
  if (!Number.isInteger(n) || n < 0) throw e2bError(400, 'nextToken is not one this server gave');
  return n;
}
