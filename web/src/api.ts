/**
 * The UI's view of the control plane, on the SDK's browser-safe client (src/sdk/browser.ts): REST
 * calls with the session's API key as a bearer token, WebSocket URLs with the key as `?token=`, and
 * the SDK's error classes (BerthApiError; a NetworkError, status 0, when the control plane is not
 * reached). Wire types come from the server's own contract (type-only: nothing of zod is bundled).
 */
import type { z } from 'zod';
import type { Health as HealthSchema } from '../../src/protocol/api.js';
import {
  BerthApiError,
  BerthClient,
  type CreateSandboxBody,
  type Observation,
  type Sandbox,
  type SandboxEvent,
  type SandboxStats,
  type UploadResult,
} from '../../src/sdk/browser.js';

export type { CreateSandboxBody, Observation, Sandbox, SandboxEvent, SandboxStats };
export type Health = z.infer<typeof HealthSchema>;
export type { SandboxState, TerminalServerMessage } from '../../src/protocol/api.js';
export { BerthApiError, NetworkError } from '../../src/sdk/browser.js';

/** A frame on /api/events/stream: an event, or a sandbox record that changed. */
export type LiveFrame = { type: 'sandbox'; sandbox: Sandbox } | SandboxEvent;

const KEY_STORAGE = 'berth.apiKey';

function readStoredKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

/** A client on the page's own origin (url ''), sending `key` (null: none). */
const clientFor = (key: string | null) => new BerthClient({ url: '', apiKey: key ?? undefined });

let apiKey: string | null = readStoredKey();
let client = clientFor(apiKey);
const unauthorizedListeners = new Set<() => void>();

export function getApiKey(): string | null {
  return apiKey;
}

/** Keeps the key for this browser session (sessionStorage), or forgets it with null. */
export function setApiKey(key: string | null): void {
  apiKey = key;
  client = clientFor(key);
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

/** Runs a call on the stored key's client; a 401 tells the listeners before it is thrown. */
async function call<T>(fn: (c: BerthClient) => Promise<T>): Promise<T> {
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof BerthApiError && err.status === 401) for (const l of unauthorizedListeners) l();
    throw err;
  }
}

export const api = {
  health: () => call((c) => c.request<Health>('GET', '/health')),

  /** Whether `key` (null: none) is accepted. Resolves false on 401, throws on anything else. */
  async checkKey(key: string | null): Promise<boolean> {
    try {
      await clientFor(key).checkAuth();
      return true;
    } catch (err) {
      if (err instanceof BerthApiError && err.status === 401) return false;
      throw err;
    }
  },

  listSandboxes: () => call((c) => c.sandboxes.list()),
  getSandbox: (id: string) => call((c) => c.sandboxes.get(id)),
  createSandbox: (body: CreateSandboxBody) => call((c) => c.sandboxes.create(body)),
  deleteSandbox: (id: string) => call((c) => c.sandboxes.delete(id)),
  pauseSandbox: (id: string) => call((c) => c.sandboxes.pause(id)),
  resumeSandbox: (id: string) => call((c) => c.sandboxes.resume(id)),
  stats: (id: string, signal?: AbortSignal) => call((c) => c.sandbox(id).stats(signal)),

  executeAction: (id: string, action: string, args: Record<string, unknown>, timeout?: number) =>
    call((c) => c.sandbox(id).executeAction(action, args, timeout)),

  listFiles: (id: string, path: string) => call((c) => c.sandbox(id).listFiles(path)),

  /** A file or directory as a zip archive. */
  download: (id: string, path: string): Promise<Blob> => call((c) => c.sandbox(id).downloadBlob(path)),

  /** Saves `data` as destination/filename, byte for byte (a name ending in .zip is unpacked). */
  upload: (id: string, destination: string, data: Blob, filename: string): Promise<UploadResult> =>
    call((c) => c.sandbox(id).upload(destination, filename, data)),

  events: (id: string, after: number, limit = 500) =>
    call((c) => c.sandbox(id).events(after, limit)) as Promise<{
      events: SandboxEvent[];
      next_after: number;
    }>,
};

/** A WebSocket URL on the page's own origin, with the API key as `token`. */
export function wsUrl(path: string, query: Record<string, string | number | undefined> = {}): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...query, token: apiKey ?? undefined }))
    if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return `${proto}//${location.host}${path}${qs ? `?${qs}` : ''}`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof BerthApiError) return err.status ? `${err.message} (${err.code})` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
