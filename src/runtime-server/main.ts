/**
 * Starts the runtime server: builds the services, listens, and disposes of everything on SIGTERM/SIGINT.
 * Used by `berth runtime-server` on the host and by the bundled entry inside a sandbox image.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Logger, pino } from 'pino';
import type { RuntimeServerConfig } from '../config/runtime-server.js';
import { keepServingOnStrayErrors } from '../http/last-resort.js';
import { createRuntimeHttpServer } from './http.js';
import { createRuntimeServices } from './runtime-services.js';

export interface RunningRuntimeServer {
  url: string;
  port: number;
  logger: Logger;
  close(): Promise<void>;
}

export async function startRuntimeServer(config: RuntimeServerConfig): Promise<RunningRuntimeServer> {
  const logger = pino({ level: config.logLevel, base: { svc: 'runtime-server' } }, pino.destination(2));
  const workingDir = resolve(config.workingDir);
  mkdirSync(workingDir, { recursive: true });
  const services = await createRuntimeServices({
    workingDir,
    noChangeTimeoutSeconds: config.noChangeTimeoutSeconds,
    ownsPidNamespace: config.ownsPidNamespace,
    plugins: config.plugins,
    logger,
  });
  const app = await createRuntimeHttpServer(services, {
    sessionApiKey: config.sessionApiKey,
    archiveLimits: config.archiveLimits,
    logger,
  });
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ port, workingDir }, 'runtime server listening');
  let closed: Promise<void> | undefined;
  return {
    url: `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`,
    port,
    logger,
    close() {
      closed ??= (async () => {
        await app.close();
        await services.dispose();
      })();
      return closed;
    },
  };
}

/** Runs until a termination signal, then shuts down cleanly. */
export async function runRuntimeServerUntilSignal(config: RuntimeServerConfig): Promise<void> {
  const server = await startRuntimeServer(config);
  keepServingOnStrayErrors(server.logger);
  // Printed for whoever started us (tests, the CLI) to learn the port when --port 0 is used.
  process.stdout.write(`berth runtime server listening on ${server.url}\n`);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
