/**
 * A test host of our own outside Docker: a network namespace joined to this machine by a veth pair,
 * serving HTTP. Reachable from a container with egress, so a failed reach from a restricted one
 * proves the restriction, not a missing server. Needs root and iproute2.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface TestHost {
  ip: string;
  port: number;
  close(): void;
}

export async function startTestHost(): Promise<TestHost> {
  const tag = randomBytes(3).toString('hex');
  const ns = `berth-t${tag}`;
  const hostIf = `bh${tag}`;
  const nsIf = `bn${tag}`;
  // A /30 in a range Docker does not use by default, picked at random to keep parallel runs apart.
  const n = 4 * Math.floor(Math.random() * 60);
  const hostIp = `10.253.${Math.floor(Math.random() * 250)}.${n + 1}`;
  const nsIp = hostIp.replace(/\d+$/, String(n + 2));
  const sh = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  sh('netns', 'add', ns);
  let server: ChildProcess | undefined;
  try {
    sh('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    sh('link', 'set', nsIf, 'netns', ns);
    sh('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    sh('link', 'set', hostIf, 'up');
    sh('netns', 'exec', ns, 'ip', 'addr', 'add', `${nsIp}/30`, 'dev', nsIf);
    sh('netns', 'exec', ns, 'ip', 'link', 'set', nsIf, 'up');
    sh('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
    sh('netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'via', hostIp);
    const port = 18080;
    server = spawn(
      'ip',
      ['netns', 'exec', ns, 'python3', '-m', 'http.server', String(port), '--bind', nsIp],
      {
        stdio: 'ignore',
        cwd: '/',
      },
    );
    // Wait until it answers from this machine.
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync(
          'python3',
          ['-c', `import urllib.request as u; u.urlopen('http://${nsIp}:${port}/', timeout=1)`],
          {
            stdio: 'ignore',
          },
        );
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return {
      ip: nsIp,
      port,
      close() {
        server?.kill('SIGKILL');
        try {
          sh('link', 'del', hostIf);
        } catch {
          // gone with the namespace
        }
        sh('netns', 'del', ns);
      },
    };
  } catch (err) {
    server?.kill('SIGKILL');
    try {
      sh('netns', 'del', ns);
    } catch {
      // nothing to clean
    }
    throw err;
  }
}
