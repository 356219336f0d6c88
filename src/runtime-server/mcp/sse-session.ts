/**
 * The server side of MCP's HTTP+SSE transport (protocol 2024-11-05), the one OpenHands' MCP client
 * speaks to `{runtime_url}/mcp/sse`: a GET opens an event stream whose first event, `endpoint`,
 * names where the client POSTs its messages; the server's messages come back as `message` events.
 *
 * The endpoint is written relative to the stream's URL (`messages?session_id=…`): clients resolve it
 * against that URL, so it stays right behind a proxy that serves the runtime server under a prefix
 * (the SDK's SSEServerTransport writes an absolute path, which such a proxy would break).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';

/** A comment line now and then, so that idle proxies and load balancers keep the stream open. */
const KEEPALIVE_MS = 15_000;

export class SseSession implements Transport {
  readonly sessionId = randomUUID();
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private keepalive: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly res: ServerResponse) {}

  async start(): Promise<void> {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.res.write(`event: endpoint\ndata: messages?session_id=${this.sessionId}\n\n`);
    this.keepalive = setInterval(() => this.res.write(': ping\n\n'), KEEPALIVE_MS);
    this.keepalive.unref();
    // 'close' comes when the stream ends either way: we ended it, or the client went away.
    this.res.on('close', () => this.finish());
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw new Error('the SSE stream is closed');
    this.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  /** A POSTed message (or batch). Throws on one that is not JSON-RPC, for a 400. */
  receive(body: unknown): void {
    const messages = Array.isArray(body) ? body : [body];
    const parsed = messages.map((m) => JSONRPCMessageSchema.parse(m));
    for (const m of parsed) this.onmessage?.(m);
  }

  async close(): Promise<void> {
    if (!this.closed) this.res.end();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    this.onclose?.();
  }
}
