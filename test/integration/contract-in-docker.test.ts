/**
 * The runtime server's whole contract suite, run against the server inside a container built from
 * the runtime image, with the workspace bind-mounted from the host.
 */
import { describe, it } from 'vitest';
import { useTargetFactory } from '../contract/harness.js';
import { engineAvailable, startDockerTarget } from './docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) {
  console.warn(`SKIPPED: no Docker engine (${unavailable})`);
  describe.skip('contract suite in Docker', () => it('needs a Docker engine'));
} else {
  useTargetFactory(startDockerTarget);
  await import('../contract/shell.test.js');
  await import('../contract/protocol.test.js');
  await import('../contract/files.test.js');
  await import('../contract/terminal.test.js');
  await import('../contract/exec.test.js');
}
