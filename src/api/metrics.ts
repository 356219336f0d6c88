/** Prometheus text exposition for /metrics, written by hand: a few gauges and one histogram. */
import { SandboxState } from '../protocol/api.js';

/** Upper bounds (seconds) of the action latency histogram's buckets. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class ActionLatency {
  private counts = new Array<number>(BUCKETS.length).fill(0);
  private sum = 0;
  private count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.counts[i]!++;
  }

  render(name: string): string[] {
    const lines = [
      `# HELP ${name} Time from receiving an action to returning its observation.`,
      `# TYPE ${name} histogram`,
    ];
    for (const [i, b] of BUCKETS.entries()) lines.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`);
    lines.push(
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.count}`,
    );
    return lines;
  }
}

export function renderMetrics(input: {
  sandboxesByState: Record<string, number>;
  poolSize: number;
  latency: ActionLatency;
}): string {
  const lines = [
    '# HELP berth_sandboxes Sandboxes by state (pooled: warm, not yet handed out).',
    '# TYPE berth_sandboxes gauge',
  ];
  // Every state a record can be in (a deleted one is gone from the count), then the warm pool.
  const states = [...SandboxState.options.filter((s) => s !== 'deleted'), 'pooled'];
  for (const s of states) lines.push(`berth_sandboxes{state="${s}"} ${input.sandboxesByState[s] ?? 0}`);
  lines.push('# HELP berth_pool_size Ready sandboxes in the warm pool.', '# TYPE berth_pool_size gauge');
  lines.push(`berth_pool_size ${input.poolSize}`);
  lines.push(...input.latency.render('berth_action_duration_seconds'));
  return `${lines.join('\n')}\n`;
}
