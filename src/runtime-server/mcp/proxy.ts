/**
 * The sandbox's MCP proxy, Berth's counterpart of the reference's MCPProxyManager (a FastMCP proxy
 * over the stdio servers the app pushes with POST /update_mcp_server, served at /mcp/sse):
 *   - each configured stdio server runs as a child of this server (so as the sandbox user), started
 *     when the list arrives, with a bound on how long it may take to answer `initialize`;
 *   - every SSE session is an MCP server of its own whose tools are the children's tools: named as
 *     the child names them when one server is configured, `<server>_<tool>` when there are several
 *     (as FastMCP's composite proxy names them); tools/call is forwarded to the child that has it;
 *   - a new list ends the children it no longer names, or names differently, and starts the new
 *     ones; a child named the same way (command, args, env) keeps running;
 *   - reset() ends every child but keeps the list: a child is started again on its next use, as is
 *     one that exited by itself. One that failed to start stays failed until the next list.
 * Only tools are proxied (what OpenHands uses); resources and prompts are not.
 */

import type { ServerResponse } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CallToolResultSchema,
  ListToolsRequestSchema,
  ListToolsResultSchema,
  McpError,
  ErrorCode as McpErrorCode,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { BerthError, ErrorCode } from '../../protocol/errors.js';
import type { ProcessTable } from '../core/process/table.js';
import { type StdioServerConfig, sameServer } from './config.js';
import { SseSession } from './sse-session.js';
import { StdioChild } from './stdio-child.js';

const PROXY_INFO = { name: 'berth-mcp-proxy', version: '1.0.0' };
/** The app gives /update_mcp_server 60 s; children start side by side, each within this. */
export const DEFAULT_START_TIMEOUT_MS = 40_000;
/** tools/list of one child, on every listing. */
const LIST_TIMEOUT_MS = 15_000;
/** tools/call of one child; progress notifications from it restart the clock. */
const CALL_TIMEOUT_MS = 15 * 60_000;
/** Pages of tools/list followed from one child. */
const MAX_LIST_PAGES = 50;
/** Open SSE sessions at once; the oldest is closed to make room. */
const MAX_SESSIONS = 64;

export interface McpProxyOptions {
  /** The table the children are started in and owned by. */
  processes: ProcessTable;
  /** Working directory of the children (the workspace). */
  cwd: string;
  logger: Logger;
  startTimeoutMs?: number;
}

type ChildState = 'starting' | 'running' | 'stopped' | 'failed';

interface Child {
  readonly config: StdioServerConfig;
  state: ChildState;
  transport?: StdioChild;
  client?: Client;
  starting?: Promise<void>;
  error?: string;
  /** Bumped by every start and stop: a start that finds it changed was overtaken and changes nothing. */
  generation: number;
}

interface Route {
  child: Child;
  /** The tool's name as its own server knows it. */
  name: string;
}

export interface UpdateResult {
  detail: string;
  router_error_log: string;
}

export class McpProxy {
  private children: Child[] = [];
  private routes = new Map<string, Route>();
  private readonly sessions = new Map<string, { session: SseSession; server: Server }>();
  private updating: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private readonly startTimeoutMs: number;
  private readonly logger: Logger;

  constructor(private readonly options: McpProxyOptions) {
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.logger = options.logger.child({ svc: 'mcp' });
  }

  /** The configured servers with their state and child pid, for diagnostics and tests. */
  status(): { name: string; state: ChildState; pid?: number; error?: string }[] {
    return this.children.map((c) => ({
      name: c.config.name,
      state: c.state,
      ...(c.transport?.pid !== undefined && c.state === 'running' ? { pid: c.transport.pid } : {}),
      ...(c.error ? { error: c.error } : {}),
    }));
  }

  /** Replaces the list of servers (POST /update_mcp_server). One update at a time. */
  update(configs: StdioServerConfig[]): Promise<UpdateResult> {
    const run = this.updating.then(() => this.applyUpdate(configs));
    this.updating = run.catch(() => undefined);
    return run;
  }

  private async applyUpdate(configs: StdioServerConfig[]): Promise<UpdateResult> {
    if (this.disposed) throw new BerthError(ErrorCode.UNAVAILABLE, 'the runtime server is shutting down');
    const old = this.children;
    const next: Child[] = configs.map((config) => {
      const same = old.find(
        (c) => c.state === 'running' && c.transport?.alive && sameServer(c.config, config),
      );
      return same ?? { config, state: 'stopped', generation: 0 };
    });
    const ended = old.filter((c) => !next.includes(c));
    this.children = next;
    this.routes.clear();
    await Promise.allSettled(ended.map((c) => this.stopChild(c)));
    await Promise.allSettled(next.map((c) => this.ensureRunning(c)));
    const failures = next.filter((c) => c.state === 'failed').map((c) => `${c.config.name}: ${c.error}`);
    this.logger.info({ servers: this.status() }, 'MCP servers updated');
    return { detail: 'MCP server updated successfully', router_error_log: failures.join('\n') };
  }

  /** Ends every child and keeps the list; each is started again on its next use (POST /berth/reset). */
  async reset(): Promise<void> {
    // Failed ones too: after a reset each gets one more try.
    await Promise.allSettled(this.children.map((c) => this.stopChild(c)));
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.closeSessions();
    await Promise.allSettled(this.children.map((c) => this.stopChild(c)));
  }

  /** Ends every SSE stream (before the HTTP server closes, which would otherwise wait for them). */
  async closeSessions(): Promise<void> {
    const open = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(open.map(({ server }) => server.close()));
  }

  /** GET /mcp/sse: serves one MCP session on this response until either side closes it. */
  async openSession(res: ServerResponse): Promise<void> {
    if (this.disposed) throw new BerthError(ErrorCode.UNAVAILABLE, 'the runtime server is shutting down');
    while (this.sessions.size >= MAX_SESSIONS) {
      const [oldestId, oldest] = this.sessions.entries().next().value as [string, { server: Server }];
      this.sessions.delete(oldestId);
      await oldest.server.close().catch(() => undefined);
    }
    const session = new SseSession(res);
    const server = new Server(PROXY_INFO, { capabilities: { tools: { listChanged: false } } });
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: await this.listTools() }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) =>
      this.callTool(request.params.name, request.params.arguments ?? {}, extra.signal),
    );
    server.onerror = (err) => this.logger.debug({ err }, 'MCP session error');
    this.sessions.set(session.sessionId, { session, server });
    session.onclose = () => {
      this.sessions.delete(session.sessionId);
    };
    await server.connect(session);
  }

  /** POST /mcp/messages?session_id=…: a client's message for its session. */
  postMessage(sessionId: string, body: unknown): void {
    const open = this.sessions.get(sessionId);
    if (!open)
      throw new BerthError(
        ErrorCode.NOT_FOUND,
        `No MCP session ${sessionId} (it has closed or never existed)`,
      );
    try {
      open.session.receive(body);
    } catch (err) {
      throw new BerthError(ErrorCode.VALIDATION_FAILED, `Not a JSON-RPC message: ${(err as Error).message}`);
    }
  }

  /** Every child's tools, under the names clients see; children not running are started first. */
  async listTools(): Promise<Tool[]> {
    const children = this.children;
    const prefixed = children.length > 1;
    const lists = await Promise.all(
      children.map(async (child) => {
        await this.ensureRunning(child);
        const client = child.client;
        if (child.state !== 'running' || !client) return [];
        try {
          return await listAll(client);
        } catch (err) {
          this.logger.warn(
            { server: child.config.name, err: (err as Error).message },
            'MCP tools/list failed',
          );
          return [];
        }
      }),
    );
    const tools: Tool[] = [];
    const routes = new Map<string, Route>();
    children.forEach((child, i) => {
      for (const tool of lists[i] ?? []) {
        const name = prefixed ? `${child.config.name}_${tool.name}` : tool.name;
        if (routes.has(name)) continue;
        routes.set(name, { child, name: tool.name });
        tools.push({ ...tool, name });
      }
    });
    // A listing that raced with an update describes the old list: keep the routes of the new one.
    if (children === this.children) this.routes = routes;
    return tools;
  }

  async callTool(name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    let route = this.routes.get(name);
    if (!route) {
      await this.listTools();
      route = this.routes.get(name);
    }
    if (!route) throw new McpError(McpErrorCode.InvalidParams, `Unknown tool: ${name}`);
    const { child } = route;
    await this.ensureRunning(child);
    const client = child.client;
    if (child.state !== 'running' || !client) {
      return toolError(`MCP server ${child.config.name} is not running: ${child.error ?? 'it has stopped'}`);
    }
    try {
      return (await client.request(
        { method: 'tools/call', params: { name: route.name, arguments: args } },
        CallToolResultSchema,
        { signal, timeout: CALL_TIMEOUT_MS, resetTimeoutOnProgress: true },
      )) as CallToolResult;
    } catch (err) {
      // The tool's own errors pass through as they are; a child that died or hung is a tool error.
      if (
        err instanceof McpError &&
        err.code !== McpErrorCode.ConnectionClosed &&
        err.code !== McpErrorCode.RequestTimeout
      ) {
        throw err;
      }
      return toolError(`MCP server ${child.config.name} failed on ${name}: ${(err as Error).message}`);
    }
  }

  /** Starts a child that is stopped (never started, reset, or exited); waits for one starting. */
  private async ensureRunning(child: Child): Promise<void> {
    if (this.disposed) return;
    if (child.state === 'running' && child.transport?.alive) return;
    if (child.state === 'failed') return;
    if (!child.starting) {
      const starting = this.startChild(child).finally(() => {
        if (child.starting === starting) child.starting = undefined;
      });
      child.starting = starting;
    }
    await child.starting;
  }

  private async startChild(child: Child): Promise<void> {
    const { config } = child;
    const generation = ++child.generation;
    child.state = 'starting';
    child.error = undefined;
    const transport = new StdioChild({
      processes: this.options.processes,
      command: config.command,
      args: config.args,
      env: config.env,
      cwd: this.options.cwd,
      onStderr: (line) => this.logger.debug({ server: config.name, line }, 'MCP server stderr'),
    });
    const client = new Client(
      { name: 'berth-runtime-server', version: PROXY_INFO.version },
      { capabilities: {} },
    );
    client.onerror = (err) =>
      this.logger.debug({ server: config.name, err: err.message }, 'MCP server error');
    transport.onclose = () => {
      if (child.transport === transport && child.state === 'running') {
        child.state = 'stopped';
        this.logger.warn({ server: config.name, stderr: transport.stderr }, 'MCP server exited');
      }
    };
    child.transport = transport;
    child.client = client;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.connect(transport, { timeout: this.startTimeoutMs }),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`did not answer initialize within ${this.startTimeoutMs / 1000} s`)),
            this.startTimeoutMs,
          );
        }),
      ]);
      if (child.generation !== generation) return;
      if (!transport.alive) throw new Error('exited while starting');
      child.state = 'running';
      this.logger.info({ server: config.name, pid: transport.pid }, 'MCP server started');
    } catch (err) {
      await transport.close().catch(() => undefined);
      if (child.generation !== generation) return;
      const stderr = transport.stderr;
      child.state = 'failed';
      child.error = `${startErrorMessage(config, err)}${stderr ? ` (stderr: ${stderr.slice(-500)})` : ''}`;
      this.logger.warn({ server: config.name, error: child.error }, 'MCP server failed to start');
    } finally {
      clearTimeout(timer);
    }
  }

  private async stopChild(child: Child): Promise<void> {
    const { transport, client, starting } = child;
    child.generation++;
    child.state = 'stopped';
    child.transport = undefined;
    child.client = undefined;
    child.starting = undefined;
    await client?.close().catch(() => undefined);
    await transport?.close().catch(() => undefined);
    await starting?.catch(() => undefined);
  }
}

async function listAll(client: Client): Promise<Tool[]> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const result = await client.request(
      { method: 'tools/list', params: cursor ? { cursor } : {} },
      ListToolsResultSchema,
      { timeout: LIST_TIMEOUT_MS },
    );
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (!cursor) break;
  }
  return tools;
}

function toolError(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

function startErrorMessage(config: StdioServerConfig, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return `command not found: ${config.command}`;
  if (e?.code === 'EACCES') return `permission denied running ${config.command}`;
  if (err instanceof McpError && err.code === McpErrorCode.ConnectionClosed)
    return 'exited before answering initialize';
  return e?.message ?? String(err);
}
