/**
 * The runtime server's stateful services, built once and disposed once. Route handlers only parse
 * requests, call into these, and shape responses.
 */
import type { Logger } from 'pino';
import type { TerminalManager } from './core/terminal/terminals.js';
import type { ActionExecutor } from './openhands/executor.js';

export interface RuntimeServicesOptions {
  /** Initial working directory of the shell; also the editor's workspace root and list_files' base. */
  workingDir: string;
  /** Seconds without new output before a command returns with the soft-timeout suffix. */
  noChangeTimeoutSeconds: number;
  logger: Logger;
}

export interface RuntimeServices {
  readonly options: RuntimeServicesOptions;
  readonly executor: ActionExecutor;
  readonly terminals: TerminalManager;
  ready(): boolean;
  serverInfo(): Promise<Record<string, unknown>>;
  dispose(): Promise<void>;
}
