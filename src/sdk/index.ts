/**
 * Berth's TypeScript SDK for Node.js: `@berth/sdk` (packages/sdk, with no native dependencies), also
 * `berth/sdk` in the berth package. The control-plane client and the error classes (also in
 * `@berth/sdk/browser`, without Node.js modules), and the client of one runtime server.
 *
 *   import { BerthClient, NotFoundError } from '@berth/sdk';
 */
export * from './browser.js';
export { type RuntimeRequest, RuntimeServerClient } from './runtime-client.js';
