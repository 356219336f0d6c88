/** Whether this engine can run a Berth sandbox on gVisor (runsc), and why not when it cannot. */
import { engine, runtime, specFor } from './docker-target.js';

export const OCI_RUNTIME = 'runsc';

let probe: Promise<string | undefined> | undefined;

/** undefined when runsc is registered with dockerd and a sandbox starts on it; otherwise the reason. */
export function gvisorUnavailable(): Promise<string | undefined> {
  probe ??= (async () => {
    const info = (await engine.docker.info()) as { Runtimes?: Record<string, unknown> };
    if (!info.Runtimes?.[OCI_RUNTIME]) {
      return `dockerd has no "${OCI_RUNTIME}" runtime (registered: ${Object.keys(info.Runtimes ?? {}).join(', ')}); BERTH_GVISOR=1 scripts/setup.sh installs and registers it`;
    }
    const spec = await specFor({ ociRuntime: OCI_RUNTIME });
    try {
      await runtime.start(spec);
      return undefined;
    } catch (err) {
      return `a sandbox on ${OCI_RUNTIME} did not start: ${(err as Error).message}`;
    } finally {
      await runtime.remove(spec.id).catch(() => undefined);
    }
  })();
  return probe;
}
