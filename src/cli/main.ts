/** The `berth` command. Each subcommand parses its flags and calls a library function. */
import { Command } from 'commander';
import { loadRuntimeServerConfig } from '../config/runtime-server.js';
import { VERSION } from '../protocol/version.js';
import { registerControlPlaneImageCommand } from './control-plane-image-command.js';
import { registerCpCommand } from './cp-command.js';
import { registerGcCommand, registerImageCommands } from './image-commands.js';
import { explain } from './output.js';
import { cliClient, registerSandboxCommands } from './sandbox-commands.js';
import { registerUpCommand } from './up-command.js';

const program = new Command();
program
  .name('berth')
  .description('Sandboxes for AI agents, OpenHands-compatible, on Docker')
  .option('--url <url>', 'control plane URL (default: $BERTH_URL or http://127.0.0.1:3000)')
  .option('--api-key <key>', 'API key (default: $BERTH_API_KEY)')
  .version(VERSION, '-V, --version', 'print the version')
  // Options after a subcommand belong to it (and, for exec, to the command run: `exec ID ls -la`).
  .enablePositionalOptions()
  .showHelpAfterError();

program
  .command('runtime-server')
  .description('Run the action execution server directly on this machine (no container)')
  .option('--port <port>', 'port to listen on (0 picks a free one)', '8000')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--working-dir <dir>', 'initial working directory of the shell', process.cwd())
  .option('--session-api-key <key>', 'require this X-Session-API-Key (default: $SESSION_API_KEY)')
  .option(
    '--plugins <names...>',
    'plugins: agent_skills, jupyter, vscode, or none (default: $BERTH_PLUGINS or "agent_skills jupyter")',
  )
  .action(
    async (opts: {
      port: string;
      host: string;
      workingDir: string;
      sessionApiKey?: string;
      plugins?: string[];
    }) => {
      const config = loadRuntimeServerConfig(opts);
      // Loaded here only: the server (and its PTY addon) is not needed by any other command.
      const { runRuntimeServerUntilSignal } = await import('../runtime-server/main.js');
      await runRuntimeServerUntilSignal(config);
    },
  );

registerUpCommand(program);
registerSandboxCommands(program);
registerCpCommand(program, cliClient);
registerImageCommands(program);
registerGcCommand(program);
registerControlPlaneImageCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const { message, code } = explain(err);
  process.stderr.write(`berth: ${message}\n`);
  process.exit(code);
});
