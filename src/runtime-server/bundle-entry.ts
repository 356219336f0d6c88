/**
 * Entry of the single-file bundle that runs inside sandbox images:
 *   node /berth/runtime-server.mjs --port P --working-dir DIR [--host H] [--plugins agent_skills,jupyter]
 * The session key comes from SESSION_API_KEY, never from argv (argv is visible in `ps`).
 */
import { parseArgs } from 'node:util';
import { loadRuntimeServerConfig } from '../config/runtime-server.js';
import { runRuntimeServerUntilSignal } from './main.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'working-dir': { type: 'string' },
    plugins: { type: 'string', multiple: true },
  },
  strict: true,
});

try {
  const config = loadRuntimeServerConfig({
    port: values.port,
    host: values.host,
    workingDir: values['working-dir'],
    plugins: values.plugins,
  });
  await runRuntimeServerUntilSignal(config);
} catch (err) {
  process.stderr.write(`berth runtime server failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}
