/** SQLite persistence for the control plane: sandbox records and their append-only event logs. */
export { toStoreError } from './errors.js';
export {
  DEFAULT_EVENT_PAGE,
  DEFAULT_MAX_EVENT_PAYLOAD_BYTES,
  type EventKindName,
  type EventPage,
  EventRepo,
  type EventUsage,
  MAX_EVENT_PAGE,
  type NewEvent,
  type PruneReport,
  type RetentionPolicy,
} from './events.js';
export { MIGRATIONS, type Migration, migrate } from './migrations.js';
export {
  type NewSandbox,
  type SandboxFilter,
  type SandboxPatch,
  type SandboxRecord,
  SandboxRepo,
  toApiSandbox,
  type UpdateOptions,
} from './sandboxes.js';
export { Store, type StoreOptions } from './store.js';
export { type Capped, capPayload, MIN_PAYLOAD_CAP, type Truncation } from './truncate.js';
export type { Timestamp } from './values.js';
