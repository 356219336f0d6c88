/** `berth up`: the control plane on 127.0.0.1:3000 with a ready runtime image, until Ctrl-C. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { startControlPlane } from '../api/start.js';
import {
  loadControlPlaneConfig,
  renderConfigTable,
  resolveControlPlaneConfig,
} from '../config/control-plane.js';
import { PACKAGE_ROOT } from '../docker/image-builder.js';
import { keepServingOnStrayErrors } from '../http/last-resort.js';
import { printJson } from './output.js';

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('Start the control plane (API, web UI) with a ready sandbox image')
    .option('--host <host>', 'address to listen on (default 127.0.0.1; others need BERTH_API_KEY)')
    .option('--port <port>', 'port to listen on (default 3000)')
    .option('--data-dir <dir>', 'where the database lives')
    .option('--config <file>', 'TOML configuration file')
    .action(async (opts: { host?: string; port?: string; dataDir?: string; config?: string }) => {
      const config = loadControlPlaneConfig({
        flags: { host: opts.host, port: opts.port, data_dir: opts.dataDir, config_file: opts.config },
      });
      const t0 = Date.now();
      const say = (m: string) =>
        process.stderr.write(`[berth ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
      say('connecting to Docker');
      const webDir = join(PACKAGE_ROOT, 'web', 'dist');
      const cp = await startControlPlane({ config, webDir, onProgress: say });
      keepServingOnStrayErrors(cp.logger);
      say(
        `control plane listening on ${cp.url}${existsSync(join(webDir, 'index.html')) ? ` (web UI at ${cp.url}/)` : ''}`,
      );
      if (config.api_keys.length === 0) say('no API keys set: only clients on this machine can reach it');
      process.stdout.write(`berth control plane listening on ${cp.url}\n`);
      const stop = () => {
        say('shutting down (sandboxes keep running; `berth up` re-attaches to them)');
        cp.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  program
    .command('config')
    .description('Show the effective configuration and where each value came from')
    .option('--json', 'print JSON')
    .option('--table', 'print the Markdown table of every option (for the README)')
    .action((opts: { json?: boolean; table?: boolean }) => {
      if (opts.table) {
        process.stdout.write(`${renderConfigTable()}\n`);
        return;
      }
      const { config, sources } = resolveControlPlaneConfig();
      if (opts.json)
        printJson({ config: { ...config, api_keys: config.api_keys.map(() => '***') }, sources });
      else
        for (const [k, src] of Object.entries(sources)) {
          const v = k === 'api_keys' ? '***' : JSON.stringify(getPath(config, k));
          process.stdout.write(
            `${k} = ${v}  (${src.kind}${'name' in src ? ` ${src.name}` : ''}${'file' in src ? ` ${src.file}` : ''})\n`,
          );
        }
    });
}

function getPath(obj: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}
