/**
 * The runtime server's stateful services, built once and disposed once. Route handlers only parse
 * requests, call into these, and shape responses.
 */
import type { Logger } from 'pino';
import type { CodeContexts } from './code-interpreter/contexts.js';
import type { ProcessTable } from './core/process/table.js';
import type { TerminalManager } from './core/terminal/terminals.js';
import type * as transfer from './core/transfer/index.js';
import type { FilesystemService } from './envd/filesystem-service.js';
import type { ProcessService } from './envd/process-service.js';
import type { Lazy } from './lazy.js';
import type { McpProxy } from './mcp/proxy.js';
import type { ActionExecutor } from './openhands/executor.js';

export interface RuntimeServicesOptions {
  /** Initial working directory of the shell; also the editor's workspace root and list_files' base. */
  workingDir: string;
  /** Seconds without new output before a command returns with the soft-timeout suffix. */
  noChangeTimeoutSeconds: number;
  logger: Logger;
  /**
   * Whether this server is the sandbox's own, in a PID namespace of its own (a container), so that a
   * reset may end every other process of its user. On a shared machine it only restarts its shell
   * and kernel.
   */
  ownsPidNamespace?: boolean;
  /** The reference's --plugins (see config/runtime-server.ts). @default ['agent_skills', 'jupyter'] */
  plugins?: readonly string[];
}

/** envd's two Connect services; the filesystem one holds watchers to close. */
export interface EnvdServices {
  process: ProcessService;
  filesystem: FilesystemService;
}

/** The file transfer core (uploads, zip downloads, list_files), loaded on the first transfer. */
export type TransferCore = typeof transfer;

export interface RuntimeServices {
  readonly options: RuntimeServicesOptions;
  /** Every child process the server starts (see core/process/table.ts). */
  readonly processes: ProcessTable;
  readonly executor: ActionExecutor;
  /** Made on the first terminal (see lazy.ts): most sandboxes never open one. */
  readonly terminals: Lazy<TerminalManager>;
  /** Loaded on the first upload, download or listing (see lazy.ts). */
  readonly transfer: Lazy<TransferCore>;
  /** The MCP proxy (POST /update_mcp_server, /mcp/sse), with the MCP SDK, made on its first request. */
  readonly mcp: Lazy<McpProxy>;
  /** E2B's envd services (envd/), made on the first envd request: most sandboxes never get one. */
  readonly envd: Lazy<EnvdServices>;
  /** E2B's code-interpreter contexts (code-interpreter/), made on the first such request. */
  readonly codeContexts: Lazy<CodeContexts>;
  ready(): boolean;
  /**
   * Makes the sandbox usable again after a fork bomb or runaway processes: ends every process of the
   * sandbox user (where ownsPidNamespace), then starts a fresh shell; the Python kernel, editor and
   * terminals are made again on next use. Files are untouched; shell state (cwd kept) is lost.
   */
  reset(): Promise<{ killed: number; left: number; swept?: false }>;
  /**
   * Sets environment variables on the sandbox: for every process started from now on, exported into
   * the agent's running shell, and recorded so they outlive a stop and start (the reference's
   * add_env_vars). Invalid names are refused with VALIDATION_FAILED before anything changes.
   */
  setEnv(vars: Record<string, unknown>): Promise<{ names: string[] }>;
  serverInfo(): Promise<Record<string, unknown>>;
  dispose(): Promise<void>;
}
