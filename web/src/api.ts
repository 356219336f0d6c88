/**
 * The control plane client the UI uses: REST calls with the session's API key as a bearer token,
 * WebSocket URLs with the key as `?token=`, and one error type carrying the server's `{code, message}`.
 * Wire types come from the server's own contract (type-only imports: nothing of zod is bundled).
 */
import type { z } from 'zod';
import type {
  CreateSandboxBody,
  Health as HealthSchema,
  Sandbox,
  SandboxEvent,
} from '../../src/protocol/api.js';
import type { Observation } from '../../src/protocol/openhands.js';

export type { CreateSandboxBody, Observation, Sandbox, SandboxEvent };
export type Health = z.infer<typeof HealthSchema>;
export type { SandboxState, TerminalServerMessage } from '../../src/protocol/api.js';

export interface SandboxStats {
  uptime: number;
  idle_time: number;
  resources: {
    cpu_percent: number;
    memory: { rss: number; vms: number; percent: number };
    disk: { total: number; used: number; free: number; percent: number };
    io?: unknown;
  };
}

/** A frame on /api/events/stream: an event, or a sandbox record that changed. */
export type LiveFrame = { type: 'sandbox'; sandbox: Sandbox } | SandboxEvent;

/** An error from the control plane (or from reaching it: status 0, code NETWORK). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const KEY_STORAGE = 'berth.apiKey';

function readStoredKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

let apiKey: string | null = readStoredKey();
const unauthorizedListeners = new Set<() => void>();

export function getApiKey(): string | null {
  return apiKey;
}

/** Keeps the key for this browser session (sessionStorage), or forgets it with null. */
export function setApiKey(key: string | null): void {
  apiKey = key;
  try {
    if (key === null) sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage disabled: the key lives in memory until the page reloads.
  }
}

/** Called whenever an /api request answers 401; the app then asks for a key again. */
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

interface RequestOptions {
  json?: unknown;
  body?: BodyInit;
  query?: Record<string, string | number | undefined>;
  /** Send this key instead of the stored one (to test a key before keeping it). */
  key?: string | null;
  signal?: AbortSignal;
}

function withQuery(path: string, query?: RequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function send(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  const key = opts.key === undefined ? apiKey : opts.key;
  if (key) headers.authorization = `Bearer ${key}`;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), { method, headers, body, signal: opts.signal });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `Cannot reach the control plane (${(err as Error).message})`);
  }
  if (res.ok) return res;
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const text = await res.text();
    try {
      const parsed = JSON.parse(text) as { code?: unknown; message?: unknown };
      if (typeof parsed.code === 'string') code = parsed.code;
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      if (text.trim()) message = text.trim().slice(0, 500);
    }
  } catch {
    // keep the status line
  }
  if (res.status === 401 && opts.key === undefined) for (const l of unauthorizedListeners) l();
  throw new ApiError(res.status, code, message);
}

async function json<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
  const res = await send(method, path, opts);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const sandboxPath = (id: string) => `/api/sandboxes/${encodeURIComponent(id)}`;

export const api = {
  health: () => json<Health>('GET', '/health'),

  /** Whether `key` (null: none) is accepted. Resolves false on 401, throws on anything else. */
  async checkKey(key: string | null): Promise<boolean> {
    try {
      await send('GET', '/api/auth/check', { key });
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return false;
      throw err;
    }
  },

  listSandboxes: () => json<{ sandboxes: Sandbox[] }>('GET', '/api/sandboxes').then((r) => r.sandboxes),
  getSandbox: (id: string) => json<Sandbox>('GET', sandboxPath(id)),
  createSandbox: (body: CreateSandboxBody) => json<Sandbox>('POST', '/api/sandboxes', { json: body }),
  deleteSandbox: (id: string) => json<void>('DELETE', sandboxPath(id)),
  pauseSandbox: (id: string) => json<Sandbox>('POST', `${sandboxPath(id)}/pause`),
  resumeSandbox: (id: string) => json<Sandbox>('POST', `${sandboxPath(id)}/resume`),
  stats: (id: string, signal?: AbortSignal) =>
    json<SandboxStats>('GET', `${sandboxPath(id)}/stats`, { signal }),

  executeAction: (id: string, action: string, args: Record<string, unknown>, timeout?: number) =>
    json<Observation>('POST', `${sandboxPath(id)}/execute_action`, {
      json: { action: { action, args, ...(timeout ? { timeout } : {}) } },
    }),

  listFiles: (id: string, path: string) =>
    json<string[]>('POST', `${sandboxPath(id)}/list_files`, { json: { path } }),

  /** A file or directory as a zip archive. */
  async download(id: string, path: string): Promise<Blob> {
    const res = await send('GET', `${sandboxPath(id)}/download_files`, { query: { path } });
    return res.blob();
  },

  /** Saves `data` as destination/filename, byte for byte (a name ending in .zip is unpacked). */
  upload: (id: string, destination: string, data: Blob, filename: string) => {
    const form = new FormData();
    form.append('file', data, filename);
    return json<{ filename: string; destination: string; recursive: boolean }>(
      'POST',
      `${sandboxPath(id)}/upload_file`,
      { body: form, query: { destination } },
    );
  },

  events: (id: string, after: number, limit = 500) =>
    json<{ events: SandboxEvent[]; next_after: number }>('GET', `${sandboxPath(id)}/events`, {
      query: { after, limit },
    }),
};

/** A WebSocket URL on the page's own origin, with the API key as `token`. */
export function wsUrl(path: string, query: Record<string, string | number | undefined> = {}): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const all = { ...query, token: apiKey ?? undefined };
  return `${proto}//${location.host}${withQuery(path, all)}`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.status ? `${err.message} (${err.code})` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
