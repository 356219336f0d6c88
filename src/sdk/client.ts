/**
 * The typed TypeScript client of Berth's control plane, on fetch: the one client the CLI, the web UI
 * and the benches use. Browser-safe: nothing of Node.js is imported (sockets load `ws` only when they
 * run outside a browser, see socket.ts).
 *
 *   const berth = new BerthClient({ url: 'http://127.0.0.1:3000', apiKey });
 *   const sb = await berth.sandboxes.create({ workspace: '/home/me/project' });
 *   const out = await berth.sandbox(sb.id).run('ls');
 */
import type * as z from 'zod';
import type { CreateSandboxBody, EventPage, Sandbox, SandboxEvent, SandboxState } from '../protocol/api.js';
import { ErrorCode } from '../protocol/errors.js';
import type { Observation } from '../protocol/openhands.js';
import { BerthApiError, errorFromResponse, NetworkError } from './errors.js';
import { type ExecOptions, ExecProcess } from './exec.js';
import { openSocket } from './socket.js';

/** Where `berth up` listens by default. */
const DEFAULT_URL = 'http://127.0.0.1:3000';
/** Calls that are not actions answer quickly; one that takes a minute is stuck. */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** A create may pull or build the runtime image and wait for the new runtime server to be ready. */
const CREATE_TIMEOUT_MS = 300_000;
/** Resume, stop and reset start or stop a container and wait for its runtime server. */
const LIFECYCLE_TIMEOUT_MS = 120_000;
/** An action without a timeout gets the runtime server's default deadline (DEFAULT_ACTION_DEADLINE_SECONDS). */
const DEFAULT_ACTION_TIMEOUT_SECONDS = 120;
/** Beyond an action's own timeout, as long as the control plane's proxy waits (PROXY_GRACE_SECONDS), so its answer arrives. */
const ACTION_GRACE_SECONDS = 30;
/** Log lines and events fetched when the caller names no count (the control plane's default page). */
const DEFAULT_TAIL = 200;

export interface BerthClientOptions {
  /** Control plane base URL. @default "http://127.0.0.1:3000" (the CLI reads BERTH_URL) */
  url?: string;
  /** API key, sent as `Authorization: Bearer`. The CLI reads BERTH_API_KEY. */
  apiKey?: string;
  /** Per-request timeout for calls that are not actions. @default 60000 */
  requestTimeoutMs?: number;
}

/** GET /api/sandboxes/{id}/stats: the sandbox's uptime, idle time and resource use. */
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

/** What POST .../upload_file answers. */
export interface UploadResult {
  filename: string;
  destination: string;
  recursive: boolean;
}

interface SendOptions {
  body?: RequestInit['body'];
  headers?: Record<string, string>;
  /** @default the client's requestTimeoutMs; null: none (uploads and downloads, as large as they come) */
  timeoutMs?: number | null;
  /** Aborts the request (the caller's AbortError is thrown as it is). */
  signal?: AbortSignal;
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
    this.url = (options.url ?? DEFAULT_URL).replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /**
   * Low-level JSON request; throws a typed BerthApiError for any non-2xx answer, a NetworkError when
   * the control plane is not reached.
   */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = this.requestTimeoutMs,
    signal?: AbortSignal,
  ): Promise<T> {
    const res = await this.send(method, path, {
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      timeoutMs,
      signal,
    });
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The raw fetch Response of a 2xx answer (for bodies that are not JSON); errors as for request. */
  async send(method: string, path: string, opts: SendOptions = {}): Promise<Response> {
    const timeout =
      opts.timeoutMs === null ? undefined : AbortSignal.timeout(opts.timeoutMs ?? this.requestTimeoutMs);
    const signals = [timeout, opts.signal].filter((s) => s !== undefined);
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers: { ...this.authHeader(), ...opts.headers },
        body: opts.body,
        signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0],
      });
    } catch (err) {
      // A timeout or the caller's abort stays what it is; anything else is not reaching the server.
      const name = (err as Error)?.name;
      if (name === 'AbortError' || name === 'TimeoutError' || err instanceof BerthApiError) throw err;
      throw new NetworkError(
        `Cannot reach the control plane${this.url ? ` at ${this.url}` : ''} (${(err as Error)?.message ?? err})`,
        err,
      );
    }
    if (!res.ok) throw errorFromResponse(res.status, await res.text().catch(() => ''));
    return res;
  }

  /** GET /metrics, Prometheus' text format. */
  async metrics(): Promise<string> {
    return (await this.send('GET', '/metrics')).text();
  }

  /** Resolves when the client's API key (or no key) is accepted; an AuthenticationError when not. */
  async checkAuth(): Promise<void> {
    await this.send('GET', '/api/auth/check');
  }

  health(): Promise<{ status: string; docker: string; version: string; sandboxes: number }> {
    return this.request('GET', '/health');
  }

  readonly sandboxes = {
    create: (body: CreateSandboxBody = {}, timeoutMs = CREATE_TIMEOUT_MS) =>
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
      this.request<Sandbox>(
        'POST',
        `/api/sandboxes/${encodeURIComponent(id)}/resume`,
        undefined,
        LIFECYCLE_TIMEOUT_MS,
      ),
    stop: (id: string) =>
      this.request<Sandbox>(
        'POST',
        `/api/sandboxes/${encodeURIComponent(id)}/stop`,
        undefined,
        LIFECYCLE_TIMEOUT_MS,
      ),
    /** Ends every process of the sandbox user and starts a fresh shell (after a fork bomb, say). */
    reset: (id: string) =>
      this.request<Sandbox>(
        'POST',
        `/api/sandboxes/${encodeURIComponent(id)}/reset`,
        undefined,
        LIFECYCLE_TIMEOUT_MS,
      ),
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
    const httpTimeout = ((timeoutSeconds ?? DEFAULT_ACTION_TIMEOUT_SECONDS) + ACTION_GRACE_SECONDS) * 1000;
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
  ): Promise<UploadResult> {
    const form = new FormData();
    form.append('file', data instanceof Blob ? data : new Blob([data as Uint8Array<ArrayBuffer>]), filename);
    const q = new URLSearchParams({ destination, recursive: String(recursive) });
    const res = await this.client.send('POST', `${this.base}/upload_file?${q}`, {
      body: form,
      timeoutMs: null,
    });
    return JSON.parse(await res.text()) as UploadResult;
  }

  /** Downloads a file or directory as a zip. */
  async download(path: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.downloadResponse(path)).arrayBuffer());
  }

  /** Downloads a file or directory as a zip, as a stream (nothing held in memory). */
  async downloadStream(path: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.downloadResponse(path);
    if (!res.body)
      throw new BerthApiError(res.status, ErrorCode.INTERNAL, 'the download answered without a body');
    return res.body;
  }

  /** Downloads a file or directory as a zip Blob (what a browser saves). */
  async downloadBlob(path: string): Promise<Blob> {
    return (await this.downloadResponse(path)).blob();
  }

  private downloadResponse(path: string): Promise<Response> {
    return this.client.send('GET', `${this.base}/download_files?path=${encodeURIComponent(path)}`, {
      timeoutMs: null,
    });
  }

  /** The sandbox's uptime, idle time and resource use. */
  stats(signal?: AbortSignal): Promise<SandboxStats> {
    return this.client.request('GET', `${this.base}/stats`, undefined, undefined, signal);
  }

  /** The container's own output (the runtime server's log): its last `tail` lines. */
  async logs(tail = DEFAULT_TAIL): Promise<string> {
    return (await this.client.send('GET', `${this.base}/logs?tail=${tail}`)).text();
  }

  /**
   * The container's output as it is written: `onText` gets the last `tail` lines, then every new chunk.
   * `done` settles when the container stops (or `stop()` is called, which resolves it).
   */
  followLogs(onText: (text: string) => void, tail = DEFAULT_TAIL): { stop(): void; done: Promise<void> } {
    const abort = new AbortController();
    const done = (async () => {
      const res = await this.client.send('GET', `${this.base}/logs/stream?tail=${tail}`, {
        timeoutMs: null,
        signal: abort.signal,
      });
      const decoder = new TextDecoder();
      const reader = res.body?.getReader();
      if (!reader) return;
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        onText(decoder.decode(value, { stream: true }));
      }
      const rest = decoder.decode();
      if (rest) onText(rest);
    })().catch((err: unknown) => {
      if (!abort.signal.aborted) throw err;
    });
    return { stop: () => abort.abort(), done };
  }

  events(after = 0, limit = DEFAULT_TAIL): Promise<z.infer<typeof EventPage>> {
    return this.client.request('GET', `${this.base}/events?after=${after}&limit=${limit}`);
  }

  /**
   * Calls `onEvent` for every event after `after`, live; returns a function that stops following.
   * In Node.js the key goes in the Authorization header (on `ws`, loaded here only); in a browser, whose
   * WebSocket cannot send headers, as `?token=`.
   */
  followEvents(onEvent: (e: SandboxEvent) => void, after = 0): () => void {
    const wsUrl = `${this.client.url.replace(/^http/, 'ws')}${this.base}/events/stream?after=${after}`;
    const socket = openSocket(wsUrl, this.client.authHeader().authorization, {
      onMessage: (raw) => onEvent(JSON.parse(raw) as SandboxEvent),
      onClose: () => undefined,
    });
    return () => socket.close();
  }

  /**
   * Runs `argv` as a fresh process in the sandbox, like `docker exec` (not in the agent's shell):
   * output streams through the callbacks, and `done` gives the exit code and the whole output.
   */
  exec(argv: readonly string[], opts: ExecOptions = {}): ExecProcess {
    if (argv.length === 0)
      throw new BerthApiError(0, ErrorCode.VALIDATION_FAILED, 'exec needs a program to run');
    const wsUrl = `${this.client.url.replace(/^http/, 'ws')}${this.base}/exec`;
    return new ExecProcess(wsUrl, this.client.authHeader().authorization, argv, opts);
  }
}
