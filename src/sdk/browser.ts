/**
 * `berth/sdk/browser`: the browser-safe part of the SDK, the fetch-based control-plane client and the
 * error classes. No Node.js module is imported on this path (the web UI is built from it).
 */
export type {
  CreateSandboxBody,
  Sandbox,
  SandboxEvent,
  SandboxState,
} from '../protocol/api.js';
export type { ErrorCode } from '../protocol/errors.js';
export type { Observation } from '../protocol/openhands.js';
export {
  BerthClient,
  type BerthClientOptions,
  type RunOptions,
  SandboxApi,
  type SandboxStats,
  type UploadResult,
} from './client.js';
export * from './errors.js';
export { type ExecOptions, ExecProcess, type ExecResult, type ExecSignal } from './exec.js';
