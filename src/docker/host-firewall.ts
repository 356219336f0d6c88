/**
 * What Docker's own firewall leaves open between sandboxes and the host itself, closed.
 *
 * Docker filters forwarded traffic (to other containers, to the internet) but not traffic to the
 * host's own addresses: every container can open connections to any host service listening on
 * 0.0.0.0 through its bridge's gateway address, "internal" networks included (which are meant to
 * have no way out). Two kinds of rules go into the INPUT chain, each tagged with a comment:
 *
 * - from an internal network's bridge: no new connections to the host at all (replies to
 *   connections the host opens, such as the control plane's to a runtime server, still pass);
 * - from any sandbox bridge: nothing to the control plane's own port.
 *
 * They need root (and the iptables command Docker itself uses). Without them the control plane still
 * refuses connections from sandbox addresses itself (see SandboxAddresses), but other host services
 * stay reachable from internal networks; that is logged once, loudly.
 */
import { execFile } from 'node:child_process';

const COMMENT = 'berth: sandboxes may not reach the host here';

/** Check-and-insert runs under way in this process, by rule. */
const CHECKING = new Map<string, Promise<void>>();

export interface FirewallLogger {
  warn(obj: object, msg: string): void;
}

export type IptablesRunner = (args: string[]) => Promise<void>;

const runIptables: IptablesRunner = (args) =>
  new Promise((resolve, reject) => {
    execFile('iptables', ['-w', '5', ...args], { timeout: 10_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(stderr.trim() || err.message)) : resolve(),
    );
  });

export class HostFirewall {
  /** Rules in place, by bridge. */
  private readonly applied = new Map<string, string[][]>();
  private unavailable: string | undefined;

  constructor(
    private readonly logger: FirewallLogger,
    private readonly iptables: IptablesRunner = runIptables,
  ) {}

  /** No new connections from this bridge to the host. */
  refuseNewConnections(bridge: string): Promise<void> {
    return this.ensure(bridge, ['-m', 'conntrack', '--ctstate', 'NEW']);
  }

  /** No TCP from this bridge to this host port. */
  refusePort(bridge: string, port: number): Promise<void> {
    return this.ensure(bridge, ['-p', 'tcp', '--dport', String(port)]);
  }

  /** Removes the rules for a bridge that is going away (a sandbox's link network). */
  async release(bridge: string): Promise<void> {
    for (const rule of this.applied.get(bridge) ?? [])
      await this.iptables(['-D', 'INPUT', ...rule]).catch(() => undefined);
    this.applied.delete(bridge);
  }

  /** Why rules cannot be applied, when they cannot. */
  get problem(): string | undefined {
    return this.unavailable;
  }

  private async ensure(bridge: string, match: string[]): Promise<void> {
    const rule = ['-i', bridge, ...match, '-m', 'comment', '--comment', COMMENT, '-j', 'DROP'];
    const rules = this.applied.get(bridge) ?? [];
    if (this.unavailable || rules.some((r) => r.join(' ') === rule.join(' '))) return;
    try {
      // -C fails when the rule is not there yet; then insert it first in the chain. One check-and-insert
      // per rule at a time in this process, or two runtimes checking at once would both insert it.
      const key = rule.join(' ');
      let check = CHECKING.get(key);
      if (!check) {
        check = this.iptables(['-C', 'INPUT', ...rule])
          .catch(() => this.iptables(['-I', 'INPUT', '1', ...rule]))
          .finally(() => CHECKING.delete(key));
        CHECKING.set(key, check);
      }
      await check;
      this.applied.set(bridge, [...rules, rule]);
    } catch (err) {
      this.unavailable = (err as Error).message;
      this.logger.warn(
        { err },
        `cannot add host firewall rules (${process.getuid?.() === 0 ? 'iptables failed' : 'not running as root'}): sandboxes on "internal" networks can reach services listening on the host's addresses; the control plane still refuses them itself`,
      );
    }
  }
}

/** The host-side interface Docker gives a bridge network: br-<first 12 hex digits of its id>. */
export function bridgeInterface(networkId: string, options: Record<string, string> = {}): string {
  return options['com.docker.network.bridge.name'] ?? `br-${networkId.slice(0, 12)}`;
}
