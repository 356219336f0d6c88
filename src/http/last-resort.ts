/**
 * The last line of defence of a long-lived server process: an exception thrown outside any request
 * (a library's callback, a timer) or a rejection no one awaits is logged with a code and the process
 * keeps serving. A request in progress still ends through its own error handler as a JSON 500; a
 * server that dies on one stray error would take every sandbox's API down with it.
 */
import { ErrorCode } from '../protocol/errors.js';

export interface LastResortLogger {
  error(obj: object, msg: string): void;
}

let installed = false;

export function keepServingOnStrayErrors(logger: LastResortLogger): void {
  if (installed) return;
  installed = true;
  process.on('uncaughtException', (err, origin) => {
    logger.error(
      { err, origin, code: ErrorCode.INTERNAL },
      'stray exception outside any request (kept serving)',
    );
  });
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason, code: ErrorCode.INTERNAL }, 'unhandled promise rejection (kept serving)');
  });
}
