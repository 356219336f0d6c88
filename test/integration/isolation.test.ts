/**
 * Isolation proofs on the real engine, each with a positive control so a failed reach proves the
 * restriction and not a broken probe: sandboxes cannot reach each other on any network the default
 * policy lets a request choose; no sandbox reaches the control plane's port on any address of the host;
 * the Docker socket is nowhere inside; the capabilities inside, as the user and through sudo, are the
 * documented set. Probes talk only to this machine's own addresses and to containers on Berth's networks.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_NETWORK, ISOLATED_NETWORK, SANDBOX_CAPABILITIES } from '../../src/docker/container-spec.js';
import type { SandboxSpec } from '../../src/sandboxes/types.js';
import { RuntimeServerClient } from '../../src/sdk/runtime-client.js';
import { api, startInProcess } from './control-plane-helpers.js';
import { engine, engineAvailable, runtime, specFor } from './docker-target.js';

const unavailable = await engineAvailable();
if (unavailable) console.warn(`SKIPPED: isolation proofs need a Docker engine (${unavailable})`);

const started: string[] = [];
afterAll(async () => {
  await Promise.all(started.map((id) => runtime.remove(id).catch(() => undefined)));
});

interface Sandbox {
  spec: SandboxSpec;
  client: RuntimeServerClient;
  /** Its address on the network it is on. */
  ip: string;
  /** That network's gateway: this host's address on the bridge. */
  gateway: string;
  /** Its runtime and app ports, published on the host's loopback. */
  ports: number[];
}

async function start(mode: 'isolated' | 'internal'): Promise<Sandbox> {
  const spec = await specFor({ network: { mode } });
  started.push(spec.id);
  const ep = await runtime.start(spec);
  const info = await engine.containers.inspect(ep.containerId);
  const network = mode === 'isolated' ? ISOLATED_NETWORK : INTERNAL_NETWORK;
  const ip = info.networks[network];
  if (!ip)
    throw new Error(`sandbox ${spec.id} has no address on ${network}: ${JSON.stringify(info.networks)}`);
  const net = await engine.docker.getNetwork(network).inspect();
  const gateway = net.IPAM?.Config?.[0]?.Gateway as string | undefined;
  if (!gateway) throw new Error(`network ${network} has no gateway`);
  return {
    spec,
    client: new RuntimeServerClient(ep.url, spec.sessionApiKey),
    ip,
    gateway,
    ports: [ep.ports.runtime, ...ep.ports.app],
  };
}

async function run(s: Sandbox, command: string, timeout = 120) {
  const obs = await s.client.executeAction({
    action: { action: 'run', args: { command, blocking: true }, timeout },
  });
  return { out: obs.content, code: (obs.extras as any).metadata.exit_code as number };
}

/**
 * Connects to each host:port from inside the sandbox (2 s per try), sends an HTTP GET and keeps the
 * answer's end: "connected:<answer>" or the error's name and text.
 */
const PROBE = `
import json, socket, sys
out = {}
for t in sys.argv[1:]:
    host, port = t.rsplit(':', 1)
    host = host.strip('[]')
    try:
        s = socket.create_connection((host, int(port)), timeout=2)
        try:
            s.settimeout(2)
            s.sendall(b'GET / HTTP/1.0\\r\\nHost: probe\\r\\n\\r\\n')
            data = b''
            try:
                while len(data) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            out[t] = 'connected:' + data.decode('latin1')[:300]
        finally:
            s.close()
    except Exception as e:
        out[t] = '%s: %s' % (type(e).__name__, e)
print(json.dumps(out))
`;

async function probe(s: Sandbox, targets: string[]): Promise<Record<string, string>> {
  const code = Buffer.from(PROBE).toString('base64');
  const r = await run(
    s,
    `python3 -c "import base64; exec(base64.b64decode('${code}'))" ${targets.join(' ')}`,
  );
  const last = r.out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Record<string, string>;
  } catch {
    throw new Error(`probe printed no result: ${r.out}`);
  }
}

const reached = (results: Record<string, string>) =>
  Object.entries(results)
    .filter(([, v]) => v.startsWith('connected:'))
    .map(([k]) => k);

const target = (host: string, port: number) => (isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * Every address of this host's interfaces, down ones included (Node lists only those up and running,
 * so `ip` is asked too). IPv6 link-local addresses need a scope and are left out.
 */
function hostAddresses(): string[] {
  // Addresses of other Docker bridges (br-*) are left out: suites running beside this one make and
  // remove networks, and a listener of theirs on such a gateway is not the sandbox under test. A port
  // published beyond loopback would answer on every address kept here too (eth0, docker0, loopback),
  // and each probe adds the gateway of its own network.
  const out = new Set<string>();
  for (const [name, list] of Object.entries(networkInterfaces()))
    if (!name.startsWith('br-')) for (const a of list ?? []) out.add(a.address);
  try {
    const links = JSON.parse(
      execFileSync('ip', ['-j', 'addr'], { encoding: 'utf8', timeout: 10_000 }),
    ) as Array<{
      ifname?: string;
      addr_info?: Array<{ local?: string }>;
    }>;
    for (const l of links)
      if (!l.ifname?.startsWith('br-')) for (const a of l.addr_info ?? []) if (a.local) out.add(a.local);
  } catch {
    // no iproute2: Node's list only
  }
  return [...out].filter((a) => !a.startsWith('fe80:'));
}

/** A server on this host, on every address, answering with a token only the test knows. */
async function hostServer(): Promise<{ port: number; token: string; server: Server }> {
  const token = randomBytes(8).toString('hex');
  const server = createServer((_req, res) => res.end(token));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { port: (server.address() as AddressInfo).port, token, server };
}

describe.skipIf(unavailable !== undefined)('isolation on the real engine', () => {
  describe('sandbox to sandbox, on every network the default policy allows', () => {
    const LISTEN_PORT = 8099;
    let a: Record<'isolated' | 'internal', Sandbox>;
    let b: Record<'isolated' | 'internal', Sandbox>;

    beforeAll(async () => {
      const [ai, an, bi, bn] = await Promise.all([
        start('isolated'),
        start('internal'),
        start('isolated'),
        start('internal'),
      ]);
      a = { isolated: ai, internal: an };
      b = { isolated: bi, internal: bn };
      for (const s of [ai, an]) {
        await run(s, `(python3 -m http.server ${LISTEN_PORT} --bind 0.0.0.0 >/tmp/http.log 2>&1 &)`);
        const up = await run(
          s,
          `for i in $(seq 1 50); do python3 -c "import socket; socket.create_connection(('${s.ip}', ${LISTEN_PORT}), 1)" 2>/dev/null && echo up && break; sleep 0.2; done`,
        );
        expect(up.out).toBe('up');
      }
    });

    for (const network of ['isolated', 'internal'] as const) {
      it(`a listener in a sandbox on "${network}" answers inside it and from the host (the probe works)`, async () => {
        const self = await probe(a[network], [target(a[network].ip, LISTEN_PORT)]);
        expect(Object.values(self)[0]).toMatch(/^connected:HTTP\/1\.0 200/);
        const fromHost = await fetch(`http://${a[network].ip}:${LISTEN_PORT}/`, {
          signal: AbortSignal.timeout(5000),
        });
        expect(fromHost.status).toBe(200);
      });

      for (const from of ['isolated', 'internal'] as const) {
        it(`a sandbox on "${from}" cannot reach it by its container address, nor its ports through the host`, async () => {
          const victim = a[network];
          const viaHost = [b[from].gateway, victim.gateway, ...hostAddresses()].flatMap((h) =>
            victim.ports.map((p) => target(h, p)),
          );
          const results = await probe(b[from], [
            target(victim.ip, LISTEN_PORT),
            ...victim.ports.map((p) => target(victim.ip, p)),
            ...viaHost,
          ]);
          expect(reached(results), JSON.stringify(results, null, 1)).toEqual([]);
        });
      }
    }
  });

  describe('the control plane, from inside a sandbox', () => {
    let cp: Awaited<ReturnType<typeof startInProcess>>;
    let control: Awaited<ReturnType<typeof hostServer>>;
    let sandboxes: Record<'isolated' | 'internal', Sandbox>;

    beforeAll(async () => {
      cp = await startInProcess();
      control = await hostServer();
      const [i, n] = await Promise.all([start('isolated'), start('internal')]);
      sandboxes = { isolated: i, internal: n };
    });
    afterAll(async () => {
      control?.server.close();
      await cp?.close();
    });

    it('listens on loopback only', () => {
      expect(new URL(cp.url).hostname).toBe('127.0.0.1');
    });

    /** The control plane's port at every host address, and the 0.0.0.0 server at the gateway and host.docker.internal. */
    const probeHost = (s: Sandbox) =>
      probe(s, [
        ...[s.gateway, 'host.docker.internal', ...hostAddresses(), '127.0.0.1', '::1', '0.0.0.0'].map((h) =>
          target(h, cp.port),
        ),
        target(s.gateway, control.port),
        target('host.docker.internal', control.port),
      ]);

    for (const network of ['isolated', 'internal'] as const) {
      it(`from "${network}": the control plane's port is closed at the gateway, host.docker.internal, every host interface address and loopback`, async () => {
        const results = await probeHost(sandboxes[network]);
        const cpReached = reached(results).filter((t) => t.endsWith(`:${cp.port}`));
        expect(cpReached, JSON.stringify(results, null, 1)).toEqual([]);
        if (network === 'isolated') {
          // The probe works: the same connection to another port of the host, open on 0.0.0.0, gets through.
          expect(results[target(sandboxes[network].gateway, control.port)]).toContain(control.token);
        }
      });
    }

    it('from "internal" (no way out): a host server on 0.0.0.0 is not reachable either, at the gateway or host.docker.internal', async () => {
      const results = await probeHost(sandboxes.internal);
      expect(reached(results), JSON.stringify(results, null, 1)).toEqual([]);
    });

    it('a sandbox on the host network (which shares the loopback) is refused by the default policy', async () => {
      const res = await api(cp.url, cp.apiKey, 'POST', '/api/sandboxes', { network: 'host' });
      expect(res.status, res.text).toBe(403);
      expect(res.json.code).toBe('NETWORK_NOT_ALLOWED');
    });
  });

  describe('inside one sandbox', () => {
    let s: Sandbox;
    beforeAll(async () => {
      s = await start('isolated');
    });

    it('the Docker socket is nowhere: not at its paths, no *.sock anywhere, no DOCKER_HOST, no engine on TCP', async () => {
      const paths = await run(
        s,
        'sudo ls -la /var/run/docker.sock /run/docker.sock /run/containerd 2>&1; true',
      );
      for (const line of paths.out.split('\n').filter(Boolean))
        expect(line).toContain('No such file or directory');
      const socks = await run(
        s,
        "sudo find / \\( -path /proc -o -path /sys \\) -prune -o \\( -name '*.sock' -o -name '*docker*' -type s -o -name '*containerd*' -type s \\) -print 2>/dev/null; true",
      );
      expect(socks.out).toBe('');
      const env = await run(
        s,
        '(printenv DOCKER_HOST || echo unset); sudo sh -c \'cat /proc/*/environ 2>/dev/null\' | tr "\\0" "\\n" | grep -c "^DOCKER_HOST=" ; true',
      );
      expect(env.out.split('\n')).toEqual(['unset', '0']);
      const tcp = await probe(s, [target(s.gateway, 2375), target(s.gateway, 2376)]);
      expect(reached(tcp), JSON.stringify(tcp)).toEqual([]);
    });

    it('capabilities: none as the user; through sudo exactly SANDBOX_CAPABILITIES; never NET_RAW, MKNOD, SYS_ADMIN, SETFCAP', async () => {
      const asUser = parseCaps((await run(s, 'cat /proc/self/status')).out);
      const asRoot = parseCaps((await run(s, 'sudo -n cat /proc/self/status')).out);
      const documented = [...SANDBOX_CAPABILITIES].sort();
      expect(asUser.CapEff).toEqual([]);
      expect(asUser.CapPrm).toEqual([]);
      expect(asUser.CapBnd).toEqual(documented);
      expect(asRoot.CapEff).toEqual(documented);
      expect(asRoot.CapPrm).toEqual(documented);
      expect(asRoot.CapBnd).toEqual(documented);
      for (const caps of [asUser, asRoot]) {
        for (const set of Object.values(caps)) {
          for (const forbidden of ['NET_RAW', 'MKNOD', 'SYS_ADMIN', 'SETFCAP'])
            expect(set).not.toContain(forbidden);
        }
      }
    });

    it('a raw socket fails, with sudo too', async () => {
      const raw = `python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw-ok')" 2>&1 | tail -n 1`;
      const user = await run(s, raw);
      const root = await run(s, `sudo -n ${raw}`);
      for (const r of [user, root]) {
        expect(r.out).not.toContain('raw-ok');
        expect(r.out).toContain('PermissionError');
      }
      // The same command works where the capability is there: python can make sockets at all.
      expect((await run(s, `python3 -c "import socket; socket.socket(); print('tcp-ok')"`)).out).toBe(
        'tcp-ok',
      );
    });
  });
});

/** Capability names by bit number (linux/capability.h), without the CAP_ prefix. */
const CAP_NAMES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
];

/** CapEff, CapPrm and CapBnd of a /proc/<pid>/status text, decoded to sorted names. */
function parseCaps(status: string): Record<'CapEff' | 'CapPrm' | 'CapBnd', string[]> {
  const decode = (field: string) => {
    const hex = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1];
    if (!hex) throw new Error(`no ${field} in:\n${status}`);
    const mask = BigInt(`0x${hex}`);
    const names: string[] = [];
    for (let bit = 0; bit < 64; bit++) {
      if ((mask >> BigInt(bit)) & 1n) names.push(CAP_NAMES[bit] ?? `CAP_${bit}`);
    }
    return names.sort();
  };
  return { CapEff: decode('CapEff'), CapPrm: decode('CapPrm'), CapBnd: decode('CapBnd') };
}
