/**
 * Client of one runtime server (the in-sandbox OpenHands protocol), on kept-alive connections.
 * The control plane proxies through it; SDK users can also talk to a sandbox directly with the
 * `url` and `session_api_key` a create call returns.
 */
import { Agent, type IncomingMessage, request } from 'node:http';
import type { Readable } from 'node:stream';
import { ErrorCode } from '../protocol/errors.js';
import type { Observation } from '../protocol/openhands.js';
import { BerthApiError, errorFromResponse } from './errors.js';

/** Connections kept open per runtime server: one action at a time runs, plus file transfers. */
const MAX_SOCKETS_PER_SANDBOX = 8;
/** Setting variables waits behind the action running in the agent's shell (the server bounds it at 30 s). */
const SET_ENV_TIMEOUT_MS = 40_000;
/** Most a JSON answer is read to (an observation of a large read or output is some tens of MiB). */
const MAX_JSON_ANSWER_BYTES = 512 * 1024 * 1024;
/** Most a status answer (/alive, /server_info) is read to. */
const SMALL_ANSWER_BYTES = 1024 * 1024;

export interface RuntimeRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
  timeoutMs?: number;
}

export class RuntimeServerClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_SANDBOX });
  private readonly base: URL;

  constructor(
    url: string,
    private readonly sessionApiKey: string,
  ) {
    this.base = new URL(url);
  }

  /** Sends a request and returns the raw response stream (for proxying). */
  send(req: RuntimeRequest): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const r = request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          path: req.path,
          method: req.method,
          headers: { ...req.headers, 'x-session-api-key': this.sessionApiKey },
          timeout: req.timeoutMs,
        },
        resolve,
      );
      r.on('timeout', () =>
        r.destroy(
          new BerthApiError(504, ErrorCode.TIMEOUT, `runtime server did not answer ${req.path} in time`),
        ),
      );
      r.on('error', (err) =>
        reject(
          err instanceof BerthApiError
            ? err
            : new BerthApiError(
                503,
                ErrorCode.UNAVAILABLE,
                `runtime server unreachable: ${(err as Error).message}`,
              ),
        ),
      );
      const body = req.body;
      if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) r.end(body);
      else body.pipe(r);
    });
  }

  /**
   * A JSON call. The answer is read up to `maxBytes` (a runtime server is inside the sandbox, so a
   * hostile one could otherwise send an endless body into the caller's memory).
   */
  async json<T>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs?: number,
    maxBytes = MAX_JSON_ANSWER_BYTES,
  ): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const res = await this.send({
      method,
      path,
      body: text,
      headers: text === undefined ? {} : { 'content-type': 'application/json' },
      timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res) {
      size += (c as Buffer).length;
      if (size > maxBytes) {
        res.destroy();
        throw new BerthApiError(
          502,
          ErrorCode.UNAVAILABLE,
          `the runtime server's answer to ${method} ${path} is larger than ${maxBytes} bytes`,
        );
      }
      chunks.push(c as Buffer);
    }
    const out = Buffer.concat(chunks).toString('utf8');
    if ((res.statusCode ?? 500) >= 400) throw errorFromResponse(res.statusCode ?? 500, out);
    return JSON.parse(out) as T;
  }

  /** Sets environment variables on the sandbox (every later process, and the agent's shell). */
  setEnv(env: Record<string, string>, timeoutMs = SET_ENV_TIMEOUT_MS): Promise<{ names: string[] }> {
    return this.json('POST', '/berth/env', { env }, timeoutMs);
  }

  alive(timeoutMs = 2000): Promise<{ status: string }> {
    return this.json('GET', '/alive', undefined, timeoutMs, SMALL_ANSWER_BYTES);
  }

  serverInfo(): Promise<Record<string, unknown>> {
    return this.json('GET', '/server_info', undefined, 10_000, SMALL_ANSWER_BYTES);
  }

  executeAction(action: unknown, timeoutMs?: number): Promise<Observation> {
    return this.json('POST', '/execute_action', action, timeoutMs);
  }

  close(): void {
    this.agent.destroy();
  }
}
