/**
 * The typed TypeScript client of Berth's control plane.
 *
 *   const berth = new BerthClient({ url: 'http://127.0.0.1:3000', apiKey });
 *   const sb = await berth.sandboxes.create({ workspace: '/home/me/project' });
 *   const out = await berth.sandbox(sb.id).run('ls');
 */
import WebSocket from 'ws';
import type * as z from 'zod';
import type { CreateSandboxBody, EventPage, Sandbox, SandboxEvent, SandboxState } from '../protocol/api.js';
import type { Observation } from '../protocol/openhands.js';
import { errorFromResponse } from './errors.js';

export interface BerthClientOptions {
  /** Control plane base URL. @default "http://127.0.0.1:3000" (the CLI reads BERTH_URL) */
  url?: string;
  /** API key, sent as `Authorization: Bearer`. The CLI reads BERTH_API_KEY. */
  apiKey?: string;
  /** Per-request timeout for calls that are not actions. @default 60000 */
  requestTimeoutMs?: number;
}

export interface RunOptions {
  /** Hard timeout in seconds; also turns off the soft (no new output) timeout unless `soft` is true. */
  timeoutSeconds?: number;
  isInput?: boolean;
  soft?: boolean;
}

export class BerthClient {
  readonly url: string;
  private readonly apiKey: string | undefined;
  private readonly requestTimeoutMs: number;

  constructor(options: BerthClientOptions = {}) {
    this.url = (options.url ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  /** Low-level request; throws a typed BerthApiError for any non-2xx answer. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw errorFromResponse(res.status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  health(): Promise<{ status: string; docker: string; version: string; sandboxes: number }> {
    return this.request('GET', '/health');
  }

  readonly sandboxes = {
    create: (body: CreateSandboxBody = {}, timeoutMs = 300_000) =>
      this.request<Sandbox>('POST', '/api/sandboxes', body, timeoutMs),
    list: (filter: { state?: SandboxState; labels?: Record<string, string> } = {}) => {
      const q = new URLSearchParams();
      if (filter.state) q.set('state', filter.state);
      for (const [k, v] of Object.entries(filter.labels ?? {})) q.append('label', `${k}=${v}`);
      const qs = q.toString();
      return this.request<{ sandboxes: Sandbox[] }>('GET', `/api/sandboxes${qs ? `?${qs}` : ''}`).then(
        (r) => r.sandboxes,
      );
    },
    get: (id: string) => this.request<Sandbox>('GET', `/api/sandboxes/${encodeURIComponent(id)}`),
    delete: (id: string, opts: { keep?: boolean } = {}) =>
      this.request<void>(
        'DELETE',
        `/api/sandboxes/${encodeURIComponent(id)}${opts.keep ? '?keep=true' : ''}`,
      ),
    pause: (id: string) => this.request<Sandbox>('POST', `/api/sandboxes/${encodeURIComponent(id)}/pause`),
    resume: (id: string) =>
      this.request<Sandbox>('POST', `/api/sandboxes/${encodeURIComponent(id)}/resume`, undefined, 120_000),
    stop: (id: string) =>
      this.request<Sandbox>('POST', `/api/sandboxes/${encodeURIComponent(id)}/stop`, undefined, 120_000),
    /** Ends every process of the sandbox user and starts a fresh shell (after a fork bomb, say). */
    reset: (id: string) =>
      this.request<Sandbox>('POST', `/api/sandboxes/${encodeURIComponent(id)}/reset`, undefined, 120_000),
    setEnv: (id: string, env: Record<string, string>) =>
      this.request<Sandbox>('POST', `/api/sandboxes/${encodeURIComponent(id)}/env`, { env }),
    extendTimeout: (id: string, timeoutSeconds: number) =>
      this.request<Sandbox>('POST', `/api/sandboxes/${encodeURIComponent(id)}/timeout`, {
        timeout_seconds: timeoutSeconds,
      }),
  };

  /** Actions, files and events of one sandbox. */
  sandbox(id: string): SandboxApi {
    return new SandboxApi(this, id);
  }

  /** @internal */
  authHeader(): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {};
  }
}

export class SandboxApi {
  private readonly base: string;

  constructor(
    private readonly client: BerthClient,
    readonly id: string,
  ) {
    this.base = `/api/sandboxes/${encodeURIComponent(id)}`;
  }

  /** Sends any OpenHands action and returns its observation. */
  executeAction(
    action: string,
    args: Record<string, unknown>,
    timeoutSeconds?: number,
  ): Promise<Observation> {
    const body = { action: { action, args, ...(timeoutSeconds ? { timeout: timeoutSeconds } : {}) } };
    const httpTimeout = ((timeoutSeconds ?? 120) + 30) * 1000;
    return this.client.request<Observation>('POST', `${this.base}/execute_action`, body, httpTimeout);
  }

  /** Runs a command in the sandbox's persistent shell. */
  run(command: string, opts: RunOptions = {}): Promise<Observation> {
    const blocking = opts.timeoutSeconds !== undefined && !opts.soft;
    return this.executeAction(
      'run',
      { command, is_input: opts.isInput ?? false, blocking },
      opts.timeoutSeconds,
    );
  }

  read(path: string, range: { start?: number; end?: number } = {}): Promise<Observation> {
    return this.executeAction('read', { path, ...range });
  }

  write(path: string, content: string): Promise<Observation> {
    return this.executeAction('write', { path, content });
  }

  /** The str_replace editor: view, create, str_replace, insert, undo_edit. */
  edit(args: {
    command: 'view' | 'create' | 'str_replace' | 'insert' | 'undo_edit';
    path: string;
    file_text?: string;
    old_str?: string;
    new_str?: string;
    insert_line?: number;
    view_range?: [number, number];
  }): Promise<Observation> {
    return this.executeAction('edit', { ...args });
  }

  runPython(code: string, timeoutSeconds?: number): Promise<Observation> {
    return this.executeAction('run_ipython', { code }, timeoutSeconds);
  }

  listFiles(path?: string): Promise<string[]> {
    return this.client.request<string[]>(
      'POST',
      `${this.base}/list_files`,
      path === undefined ? {} : { path },
    );
  }

  /** Uploads bytes as destination/<filename>; a .zip (or recursive) upload is unpacked there. */
  async upload(
    destination: string,
    filename: string,
    data: Blob | Uint8Array,
    recursive = false,
  ): Promise<unknown> {
    const form = new FormData();
    form.append('file', data instanceof Blob ? data : new Blob([data]), filename);
    const q = new URLSearchParams({ destination, recursive: String(recursive) });
    const res = await fetch(`${this.client.url}${this.base}/upload_file?${q}`, {
      method: 'POST',
      headers: this.client.authHeader(),
      body: form,
    });
    const text = await res.text();
    if (!res.ok) throw errorFromResponse(res.status, text);
    return JSON.parse(text);
  }

  /** Downloads a file or directory as a zip. */
  async download(path: string): Promise<Uint8Array> {
    const res = await fetch(
      `${this.client.url}${this.base}/download_files?path=${encodeURIComponent(path)}`,
      {
        headers: this.client.authHeader(),
      },
    );
    if (!res.ok) throw errorFromResponse(res.status, await res.text());
    return new Uint8Array(await res.arrayBuffer());
  }

  events(after = 0, limit = 200): Promise<z.infer<typeof EventPage>> {
    return this.client.request('GET', `${this.base}/events?after=${after}&limit=${limit}`);
  }

  /** Calls `onEvent` for every event after `after`, live; returns a function that stops following. */
  followEvents(onEvent: (e: SandboxEvent) => void, after = 0): () => void {
    const wsUrl = `${this.client.url.replace(/^http/, 'ws')}${this.base}/events/stream?after=${after}`;
    const ws = new WebSocket(wsUrl, { headers: this.client.authHeader() });
    ws.on('message', (raw) => onEvent(JSON.parse(raw.toString()) as SandboxEvent));
    ws.on('error', () => undefined);
    return () => ws.close();
  }
}
