/**
 * Ends every process of this server's user in this PID namespace except the server itself: what a
 * `reset` needs after a fork bomb or a runaway process tree, whose members no longer share a process
 * group (background jobs get their own) or even a parent (orphans go to the container's init).
 *
 * Each round first stops every such process (so none can fork while the round goes on), then kills
 * them; rounds repeat until none is left. Only where the server is the sandbox's own (a PID namespace
 * of its own, which the caller says): on a shared machine the same sweep would end the user's every
 * process.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Rounds before giving up on processes that keep appearing. */
const MAX_ROUNDS = 20;

export interface SweepResult {
  /** Processes signalled (counted once each). */
  killed: number;
  /** Processes still there after the last round. */
  left: number;
}

async function sameUserPids(uid: number, self: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1 || pid === self) continue;
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    // Zombies hold no resources but a pid; their parent (or init) reaps them once it is gone.
    if (m && Number(m[1]) === uid && !/^State:\s+Z/m.test(status)) out.push(pid);
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already, or not ours
  }
}

export async function sweepUserProcesses(): Promise<SweepResult> {
  const uid = process.getuid?.() ?? -1;
  const seen = new Set<number>();
  let left: number[] = [];
  for (let round = 0; round < MAX_ROUNDS; round++) {
    left = await sameUserPids(uid, process.pid);
    if (left.length === 0) break;
    for (const pid of left) signal(pid, 'SIGSTOP');
    for (const pid of left) {
      signal(pid, 'SIGKILL');
      seen.add(pid);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { killed: seen.size, left: (await sameUserPids(uid, process.pid)).length };
}
