/**
 * Manager settings for tests that build a control plane in-process on a test runtime (no
 * configuration file): the defaults a fresh configuration gives, with what a test changes on top.
 */
import type { ManagerSettings } from '../../src/sandboxes/manager.js';
import type { SandboxPolicy } from '../../src/sandboxes/policy.js';

export function testManagerSettings(
  over: Partial<Omit<ManagerSettings, 'policy'>> & { policy?: Partial<SandboxPolicy> } = {},
): ManagerSettings {
  const { policy, ...rest } = over;
  return {
    defaultImage: async () => 'test-image',
    workspaceMountPathInSandbox: '/workspace',
    volumes: [],
    userId: 1000,
    bindingAddress: '127.0.0.1',
    network: 'isolated',
    useHostNetwork: false,
    env: {},
    limits: {},
    enableGpu: false,
    startTimeoutMs: 30_000,
    lifetimeSeconds: 3600,
    idleTimeoutSeconds: 3600,
    keepRuntimeAlive: false,
    poolSize: 0,
    actionTimeoutSeconds: 120,
    ...rest,
    policy: {
      networks: ['isolated', 'internal'],
      mountRoots: [],
      namedVolumes: false,
      maxCpus: 2,
      maxMemoryMb: 4096,
      maxPids: 1024,
      defaultNetwork: 'isolated',
      hostPathsVisible: true,
      ociRuntimes: [],
      ...policy,
    },
  };
}
