/** The `berth` command. Each subcommand parses its flags and calls a library function. */
import { Command } from 'commander';
import { loadRuntimeServerConfig } from '../config/runtime-server.js';
import { runRuntimeServerUntilSignal } from '../runtime-server/main.js';

const program = new Command();
program.name('berth').description('Sandboxes for AI agents, OpenHands-compatible, on Docker').showHelpAfterError();

program
  .command('runtime-server')
  .description('Run the action execution server directly on this machine (no container)')
  .option('--port <port>', 'port to listen on (0 picks a free one)', '8000')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--working-dir <dir>', 'initial working directory of the shell', process.cwd())
  .option('--session-api-key <key>', 'require this X-Session-API-Key (default: $SESSION_API_KEY)')
  .action(async (opts: { port: string; host: string; workingDir: string; sessionApiKey?: string }) => {
    const config = loadRuntimeServerConfig(opts);
    await runRuntimeServerUntilSignal(config);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`berth: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
