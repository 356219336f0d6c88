/**
 * The MCP and VS Code contract (test/contract/mcp.test.ts) against the runtime server inside a
 * container built from the runtime image: the stdio server runs on the image's Node as the sandbox
 * user (uid 1000), not as root.
 */
import { describe, expect, it } from 'vitest';
import { RuntimeClient, useTargetFactory } from '../contract/harness.js';
import { engineAvailable, startDockerTarget } from './docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) {
  console.warn(`SKIPPED: no Docker engine (${unavailable})`);
  describe.skip('MCP in Docker', () => it('needs a Docker engine'));
} else {
  useTargetFactory(startDockerTarget);
  await import('../contract/mcp.test.js');

  describe('MCP in Docker', () => {
    it('the sandbox user the children run as is not root', async () => {
      const target = await startDockerTarget({});
      try {
        const uid = (await new RuntimeClient(target).run('id -u')).content.trim().split('\n')[0];
        expect(uid).toBe('1000');
      } finally {
        await target.close();
      }
    });
  });
}
