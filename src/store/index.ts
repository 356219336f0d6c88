/** SQLite persistence for the control plane: sandbox records and their append-only event logs. */
export { toStoreError } from './errors.js';
export {
  DEFAULT_EVENT_PAGE,
  type EventKindName,
  type EventPage,
  EventRepo,
  MAX_EVENT_PAGE,
  type NewEvent,
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
export type { Timestamp } from './values.js';
