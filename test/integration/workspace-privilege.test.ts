/**
 * An agent with sudo tries to leave privilege behind in the mounted workspace: setuid and setgid bits
 * (chmod, cp -p, install, archives, raw syscalls), file capabilities, device nodes, and files owned by
 * root or anyone else. Every attack runs through the runtime server's `run` action, as an agent's
 * would; then the workspace is walked on the host. Run twice: with the idmapped workspace view a root
 * Berth makes, and with a plain bind mount (Berth not root, or sandbox.workspace_idmap = "off"), where
 * the seccomp profile and the capability set must still keep setuid, setgid, capabilities and devices
 * out. Then the rest of the sandbox must keep working: dpkg and apt with a local package, pip, git,
 * and the runtime server's own file actions.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { containerMountIsIdmapped } from '../../src/docker/idmapped-mounts.js';
import { PortAllocator } from '../../src/docker/ports.js';
import { DockerSandboxRuntime } from '../../src/docker/sandbox-runtime.js';
import type { SandboxRuntime } from '../../src/sandboxes/types.js';
import { RuntimeServerClient } from '../../src/sdk/runtime-client.js';
import { engine, engineAvailable, portLockDir, runtime, specFor, workspaceViews } from './docker-target.js';

const unavailable = await engineAvailable();
const idmapUnavailable = unavailable ?? (await workspaceViews.probe());
const UID = 1234;
const GID = 1234;
const x64 = process.arch === 'x64';

/** The same engine without idmapped views: what a Berth that is not root gives. */
const plainRuntime = new DockerSandboxRuntime({
  engine,
  ports: new PortAllocator({
    lockDir: portLockDir,
    bindHost: '127.0.0.1',
  }),
  logger: pino({ level: 'warn' }),
  owner: `test-${randomBytes(4).toString('hex')}`,
  reach: { kind: 'host-ports' },
});

interface Box {
  id: string;
  ws: string;
  client: RuntimeServerClient;
  rt: SandboxRuntime;
}
const boxes: Box[] = [];

/** A workspace owned by the sandbox user, as the workspace of a real host user is. */
function ownedWorkspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'berth-priv-'));
  chownSync(ws, UID, GID);
  return ws;
}

async function startBox(rt: SandboxRuntime): Promise<Box> {
  const ws = ownedWorkspace();
  const spec = await specFor({ workspaceHostPath: ws, userId: UID, groupId: GID });
  const ep = await rt.start(spec);
  const box = { id: spec.id, ws, client: new RuntimeServerClient(ep.url, spec.sessionApiKey), rt };
  boxes.push(box);
  return box;
}

async function run(box: Box, command: string, timeout = 60): Promise<{ out: string; code: number }> {
  const obs = await box.client.executeAction({
    action: { action: 'run', args: { command, blocking: true }, timeout },
  });
  return { out: obs.content, code: (obs.extras as { metadata: { exit_code: number } }).metadata.exit_code };
}

/** Writes a file into the workspace from the host, owned by the sandbox user. */
function put(box: Box, name: string, data: Buffer | string, mode = 0o644): void {
  const file = join(box.ws, name);
  writeFileSync(file, data, { mode });
  chownSync(file, UID, GID);
}

interface Finding {
  path: string;
  problem: string;
}

/** Everything in the workspace (the workspace itself included) that carries privilege or another owner. */
function walk(ws: string, checkOwner: boolean): Finding[] {
  const found: Finding[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    const rel = p.slice(ws.length) || '.';
    if (st.mode & 0o4000) found.push({ path: rel, problem: 'setuid' });
    if (st.mode & 0o2000) found.push({ path: rel, problem: 'setgid' });
    if (st.isCharacterDevice()) found.push({ path: rel, problem: 'character device' });
    if (st.isBlockDevice()) found.push({ path: rel, problem: 'block device' });
    if (checkOwner && st.uid !== UID) found.push({ path: rel, problem: `owned by uid ${st.uid}` });
    if (st.isDirectory()) for (const name of readdirSync(p)) visit(join(p, name));
  };
  visit(ws);
  // File capabilities live in the security.capability extended attribute; Node cannot read those.
  const caps = execFileSync(
    'python3',
    [
      '-c',
      `import os, sys
root = sys.argv[1]
for d, dirs, files in os.walk(root):
    for n in [d] + [os.path.join(d, f) for f in files + dirs]:
        try:
            os.getxattr(n, 'security.capability', follow_symlinks=False)
            print(n[len(root):] or '.')
        except OSError:
            pass`,
      ws,
    ],
    { encoding: 'utf8' },
  );
  for (const line of caps.split('\n').filter(Boolean))
    found.push({ path: line, problem: 'file capabilities' });
  return [...new Map(found.map((f) => [`${f.path} ${f.problem}`, f])).values()];
}

/** A tar with setuid, setgid, device and foreign-owner entries. */
function evilTar(): Promise<Buffer> {
  const p = pack();
  const bin = Buffer.from('#!/bin/sh\necho hi\n');
  p.entry({ name: 'suid-root', mode: 0o4755, uid: 0, gid: 0 }, bin);
  p.entry({ name: 'sgid-root', mode: 0o2755, uid: 0, gid: 0 }, bin);
  p.entry({ name: 'suid-other', mode: 0o6755, uid: 4321, gid: 4321 }, bin);
  p.entry({ name: 'sgid-dir/', type: 'directory', mode: 0o2775, uid: 0, gid: 0 });
  p.entry({ name: 'sgid-dir/inner', mode: 0o4755, uid: 0, gid: 0 }, bin);
  p.entry({ name: 'null-dev', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 });
  p.entry({ name: 'loop-dev', type: 'block-device', mode: 0o660, devmajor: 7, devminor: 0 });
  p.finalize();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    p.on('data', (c) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
}

/** A zip whose entries carry setuid and setgid in their Unix modes. */
function evilZip(): Promise<Buffer> {
  const z = new yazl.ZipFile();
  const bin = Buffer.from('#!/bin/sh\necho hi\n');
  z.addBuffer(bin, 'zsuid', { mode: 0o104755 });
  z.addBuffer(bin, 'zsgid', { mode: 0o102755 });
  z.addBuffer(bin, 'zdir/zinner', { mode: 0o106755 });
  z.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    z.outputStream.on('error', reject);
  });
}

/** Raw system calls, so no tool's own caution decides: each prints "<name> <result>". */
const RAW_SYSCALLS = `
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, *args):
    r = libc.syscall(*args)
    print(name, errno.errorcode.get(ctypes.get_errno(), '?') if r < 0 else 'ok')
open('raw-target', 'a').close()
call('fchmodat2', 452, -100, b'raw-target', 0o4755, 0)
call('fchmodat', 268, -100, b'raw-target', 0o2755)
call('openat', 257, -100, b'raw-suid-new', os.O_CREAT | os.O_WRONLY, 0o4755)
call('mkdirat', 258, -100, b'raw-sgid-dir', 0o2775)
call('mknodat', 259, -100, b'raw-chr', 0o20644, os.makedev(1, 3))
how = (ctypes.c_uint64 * 3)(os.O_CREAT | os.O_WRONLY, 0o4755, 0)
call('openat2', 437, -100, b'raw-openat2', ctypes.byref(how), 24)
call('io_uring_setup', 425, 8, ctypes.byref(ctypes.create_string_buffer(120)))
call('unshare', 272, 0x10000000)
call('clone3', 435, 0, 0)
`;

afterAll(async () => {
  for (const b of boxes) {
    b.client.close();
    await b.rt.remove(b.id).catch(() => undefined);
    rmSync(b.ws, { recursive: true, force: true });
  }
});

for (const mode of ['idmapped', 'plain'] as const) {
  const skip = mode === 'idmapped' ? idmapUnavailable : unavailable;
  describe.skipIf(skip !== undefined)(
    `${mode} workspace: an agent with sudo leaves no privilege behind`,
    {
      timeout: 120_000,
    },
    () => {
      let box: Box;
      const owners = mode === 'idmapped';

      beforeAll(async () => {
        box = await startBox(mode === 'idmapped' ? runtime : plainRuntime);
        const info = await engine.containers.inspect(`berth-sandbox-${box.id}`);
        expect(containerMountIsIdmapped(info.pid, '/workspace')).toBe(mode === 'idmapped');
        expect((await run(box, 'id -u; id -g; sudo -n id -u')).out).toBe(`${UID}\n${GID}\n0`);
      }, 120_000);

      it('chmod u+s and g+s, with and without sudo, by every route', async () => {
        const r = await run(
          box,
          [
            'cp /bin/true mybin && printf "#!/bin/sh\\n" > mine.sh && chmod 755 mine.sh && mkdir mydir',
            'chmod u+s mybin; chmod g+s mybin; chmod 4755 mine.sh; chmod 2775 mydir',
            'sudo chmod u+s mybin; sudo chmod g+s mybin; sudo chmod 6755 mine.sh; sudo chmod g+s mydir',
            `sudo python3 -c "import os; os.chmod('mybin', 0o4755); os.chmod('mydir', 0o2775)"`,
            'sudo find . -maxdepth 1 -exec chmod u+s,g+s {} +',
            'stat -c "%a %n" mybin mine.sh mydir',
          ].join('; '),
        );
        expect(r.out).toContain('755 mybin');
        expect(walk(box.ws, owners)).toEqual([]);
      });

      it.skipIf(!x64)(
        'raw syscalls: fchmodat2, openat/mkdirat/mknodat modes, openat2, io_uring, namespaces',
        async () => {
          put(box, 'raw.py', RAW_SYSCALLS);
          for (const prefix of ['', 'sudo ']) {
            const r = await run(box, `${prefix}python3 raw.py`);
            const results = Object.fromEntries(
              r.out.split('\n').map((l) => l.split(' ') as [string, string]),
            );
            // chmod asking for setuid/setgid: nothing happens, success is reported.
            expect(results.fchmodat2).toBe('ok');
            expect(results.fchmodat).toBe('ok');
            expect(results.openat).toBe('EPERM');
            expect(results.mkdirat).toBe('EPERM');
            expect(results.mknodat).toBe('EPERM');
            expect(results.openat2).toBe('ENOSYS');
            expect(results.io_uring_setup).toBe('EPERM');
            expect(results.unshare).toBe('EPERM');
            expect(results.clone3).toBe('ENOSYS');
          }
          expect(walk(box.ws, owners)).toEqual([]);
        },
      );

      it('cp -p and install of setuid binaries (passwd, su), with and without sudo', async () => {
        const r = await run(
          box,
          [
            'sudo cp -p /usr/bin/passwd passwd-root',
            'sudo cp -p /bin/su su-root',
            'cp -p /usr/bin/passwd passwd-mine',
            'cp /usr/bin/passwd passwd-plain && sudo chmod --reference=/usr/bin/passwd passwd-plain',
            'sudo install -m 4755 /bin/true installed-root',
            'install -m 6755 /bin/true installed-mine',
            'ls -ln',
          ].join('; '),
        );
        expect(r.out).toContain('passwd-plain');
        expect(walk(box.ws, owners)).toEqual([]);
      });

      it('tar and zip archives with setuid, setgid and device entries, with and without sudo', async () => {
        put(box, 'evil.tar', await evilTar());
        put(box, 'evil.zip', await evilZip());
        put(
          box,
          'naive_unzip.py',
          'import os, sys, zipfile\n' +
            'z = zipfile.ZipFile(sys.argv[1])\n' +
            'for i in z.infolist():\n' +
            '    p = z.extract(i, sys.argv[2])\n' +
            '    os.chmod(p, i.external_attr >> 16 & 0o7777)\n',
        );
        const r = await run(
          box,
          [
            'mkdir t-user t-sudo t-owner z-user z-sudo z-keep p-user p-sudo',
            'tar -xpf evil.tar -C t-user',
            'sudo tar -xpf evil.tar -C t-sudo',
            'sudo tar --same-owner --same-permissions -xf evil.tar -C t-owner',
            'unzip -o -q evil.zip -d z-user',
            'sudo unzip -o -q evil.zip -d z-sudo',
            'sudo unzip -K -o -q evil.zip -d z-keep',
            'python3 naive_unzip.py evil.zip p-user',
            'sudo python3 naive_unzip.py evil.zip p-sudo',
            'echo done',
          ].join('; '),
          120,
        );
        expect(r.out).toContain('done');
        // The user's own extraction still made the files (without the bits).
        expect(lstatSync(join(box.ws, 't-user/suid-root')).isFile()).toBe(true);
        expect(lstatSync(join(box.ws, 'p-user/zsuid')).isFile()).toBe(true);
        expect(walk(box.ws, owners)).toEqual([]);
      });

      it('setcap and the security.capability attribute, through sudo', async () => {
        const r = await run(
          box,
          [
            'cp /bin/true capme',
            'sudo setcap cap_net_raw+ep capme; echo "setcap=$?"',
            'sudo setcap cap_sys_admin+ep capme',
            // VFS_CAP_REVISION_2 with the effective flag and CAP_NET_RAW permitted, written directly.
            `sudo python3 -c "import os; os.setxattr('capme', 'security.capability', bytes.fromhex('0100000200200000000000000000000000000000'))"; echo "xattr=$?"`,
            'getcap capme',
          ].join('; '),
        );
        expect(r.out).toMatch(/setcap=1/);
        expect(r.out).toMatch(/xattr=1/);
        expect(walk(box.ws, owners)).toEqual([]);
      });

      it('mknod of character and block devices, through sudo', async () => {
        const r = await run(
          box,
          [
            'sudo mknod cdev c 1 3; echo "c=$?"',
            'sudo mknod bdev b 7 0; echo "b=$?"',
            `sudo python3 -c "import os, stat; os.mknod('pdev', stat.S_IFCHR | 0o666, os.makedev(1, 3))"; echo "py=$?"`,
            'mkfifo fifo; echo "fifo=$?"',
          ].join('; '),
        );
        expect(r.out).toMatch(/c=1/);
        expect(r.out).toMatch(/b=1/);
        expect(r.out).toMatch(/py=1/);
        expect(r.out).toMatch(/fifo=0/); // FIFOs are no privilege, and stay allowed
        expect(walk(box.ws, owners)).toEqual([]);
      });

      it('chown to root and to other users, and files root creates, through sudo', async () => {
        const r = await run(
          box,
          [
            'echo mine > owned && ln -s owned link && mkdir sub && echo x > sub/inner',
            'sudo chown root owned; sudo chown 0:0 owned; sudo chown 4321 owned; sudo chown -h root link',
            'sudo chown -R root sub; sudo chown root .',
            'sudo touch rootfile; sudo cp /etc/hostname copied; sudo mkdir rootdir',
            "sudo sh -c 'echo x > redirected'; sudo ln -s /etc/shadow shadowlink; sudo ln /usr/bin/passwd hardlink",
            `sudo python3 -c "open('pyroot', 'w').write('x')"`,
            'sudo git init -q rootrepo',
            'echo done',
          ].join('; '),
        );
        expect(r.out).toContain('done');
        if (owners) {
          // Root is unmapped on the idmapped view: what it tried to create or give away, it could not.
          expect(r.out).toContain('Value too large for defined data type');
          for (const name of [
            'rootfile',
            'copied',
            'rootdir',
            'redirected',
            'shadowlink',
            'pyroot',
            'hardlink',
          ]) {
            expect(() => lstatSync(join(box.ws, name)), name).toThrow();
          }
        }
        expect(walk(box.ws, owners)).toEqual([]);
      });

      it.skipIf(!owners)('no file in the workspace belongs to anyone but the sandbox user', () => {
        expect(walk(box.ws, true)).toEqual([]);
        expect(lstatSync(box.ws).uid).toBe(UID);
      });
    },
  );
}

describe.skipIf(idmapUnavailable !== undefined)(
  'the rest of the sandbox keeps working (idmapped workspace)',
  {
    timeout: 180_000,
  },
  () => {
    let box: Box;
    beforeAll(async () => {
      box = await startBox(runtime);
    }, 120_000);

    it('sudo dpkg -i and sudo apt-get install of a local package with a setuid file install it, without the bit', async () => {
      // Built on the host, where setting the bit is allowed: what a package from a mirror looks like.
      const root = mkdtempSync(join(tmpdir(), 'berth-deb-'));
      try {
        for (const [pkg, version] of [
          ['berth-probe', '1.0'],
          ['berth-probe2', '1.0'],
        ] as const) {
          const dir = join(root, pkg);
          execFileSync('mkdir', [
            '-p',
            `${dir}/DEBIAN`,
            `${dir}/usr/local/bin`,
            `${dir}/usr/local/lib/${pkg}`,
          ]);
          writeFileSync(
            `${dir}/DEBIAN/control`,
            `Package: ${pkg}\nVersion: ${version}\nArchitecture: all\nMaintainer: Berth tests <t@example.invalid>\nDescription: probe\n`,
          );
          writeFileSync(`${dir}/usr/local/bin/${pkg}`, `#!/bin/sh\necho ${pkg}-ran\n`, { mode: 0o755 });
          writeFileSync(`${dir}/usr/local/lib/${pkg}/helper`, '#!/bin/sh\n', { mode: 0o755 });
          execFileSync('chmod', ['4755', `${dir}/usr/local/lib/${pkg}/helper`]);
          execFileSync('dpkg-deb', ['--root-owner-group', '--build', dir, join(root, `${pkg}.deb`)], {
            stdio: 'ignore',
          });
          put(box, `${pkg}.deb`, execFileSync('cat', [join(root, `${pkg}.deb`)]));
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
      const r = await run(
        box,
        [
          'sudo dpkg -i berth-probe.deb >/dev/null; echo "dpkg=$?"',
          'berth-probe',
          'sudo apt-get install -y ./berth-probe2.deb >/dev/null 2>&1; echo "apt=$?"',
          'berth-probe2',
          'stat -c "%a" /usr/local/lib/berth-probe/helper',
          'sudo dpkg -r berth-probe berth-probe2 >/dev/null 2>&1; echo "removed=$?"',
        ].join('; '),
        150,
      );
      expect(r.out.split('\n')).toEqual([
        'dpkg=0',
        'berth-probe-ran',
        'apt=0',
        'berth-probe2-ran',
        // dpkg created it with mode 0 and its chmod to 4755 was skipped: no bit, no use, no failure.
        '0',
        'removed=0',
      ]);
    });

    it('sudo apt-get install from the mirror, when the sandbox can reach it', async (ctx) => {
      const update = await run(box, 'timeout 60 sudo apt-get update >/dev/null 2>&1; echo $?', 90);
      if (update.out !== '0') ctx.skip('no Debian mirror reachable from the sandbox');
      // openssh-client ships a setuid helper (ssh-keysign): installing it works, the helper has no bit.
      const r = await run(
        box,
        'sudo apt-get install -y --no-install-recommends openssh-client >/dev/null 2>&1; echo "apt=$?"; ssh -V 2>&1 | cut -c1-7; stat -c %a /usr/lib/openssh/ssh-keysign',
        170,
      );
      expect(r.out.split('\n')).toEqual(['apt=0', 'OpenSSH', '0']);
    });

    it('pip install of a local wheel, as the user and with sudo', async () => {
      const z = new yazl.ZipFile();
      z.addBuffer(Buffer.from('VALUE = 42\n'), 'berth_probe/__init__.py');
      z.addBuffer(
        Buffer.from('Metadata-Version: 2.1\nName: berth-probe\nVersion: 1.0\n'),
        'berth_probe-1.0.dist-info/METADATA',
      );
      z.addBuffer(
        Buffer.from('Wheel-Version: 1.0\nGenerator: berth-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'),
        'berth_probe-1.0.dist-info/WHEEL',
      );
      z.addBuffer(Buffer.from(''), 'berth_probe-1.0.dist-info/RECORD');
      z.end();
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        z.outputStream.on('data', (c: Buffer) => chunks.push(c));
        z.outputStream.on('end', () => resolve());
        z.outputStream.on('error', reject);
      });
      put(box, 'berth_probe-1.0-py3-none-any.whl', Buffer.concat(chunks));
      const r = await run(
        box,
        [
          'pip install -q --no-index --user ./berth_probe-1.0-py3-none-any.whl >/dev/null 2>&1; echo "user=$?"',
          'python3 -c "import berth_probe; print(berth_probe.VALUE)"',
          'pip uninstall -q -y berth-probe',
          // sudo resets the environment, so PEP 668's guard needs its flag again.
          'sudo pip install -q --no-index --break-system-packages ./berth_probe-1.0-py3-none-any.whl >/dev/null 2>&1; echo "sudo=$?"',
          'python3 -c "import berth_probe; print(berth_probe.__file__)"',
        ].join('; '),
        120,
      );
      expect(r.out.split('\n')).toEqual([
        'user=0',
        '42',
        'sudo=0',
        '/usr/local/lib/python3.11/dist-packages/berth_probe/__init__.py',
      ]);
    });

    it('git in the workspace; files it makes belong to the sandbox user', async () => {
      const r = await run(
        box,
        [
          'git init -q repo && cd repo',
          'echo hi > f && git add f',
          'git -c user.email=a@example.invalid -c user.name=a commit -qm first',
          'git log --oneline | wc -l',
          'cd ..',
        ].join(' && '),
      );
      expect(r.out).toBe('1');
      expect(walk(join(box.ws, 'repo'), true).filter((f) => f.path !== '.')).toEqual([]);
    });

    it("the runtime server's own actions: write, read, edit, upload, download", async () => {
      const act = (action: string, args: Record<string, unknown>) =>
        box.client.executeAction({ action: { action, args } });
      await act('write', { path: '/workspace/w.txt', content: 'one\n' });
      await act('edit', { command: 'str_replace', path: '/workspace/w.txt', old_str: 'one', new_str: 'two' });
      await act('edit', { command: 'create', path: '/workspace/e.txt', file_text: 'e\n' });
      expect((await act('read', { path: '/workspace/w.txt' })).content).toContain('two');
      const base = (box.client as unknown as { base: URL }).base.origin;
      const key = (box.client as unknown as { sessionApiKey: string }).sessionApiKey;
      const form = new FormData();
      form.append('file', new Blob(['u']), 'up.txt');
      const up = await fetch(`${base}/upload_file?destination=/workspace/uploads`, {
        method: 'POST',
        headers: { 'X-Session-API-Key': key },
        body: form,
      });
      expect(up.status).toBe(200);
      const down = await fetch(`${base}/download_files?path=/workspace/uploads`, {
        headers: { 'X-Session-API-Key': key },
      });
      expect(down.status).toBe(200);
      expect((await down.arrayBuffer()).byteLength).toBeGreaterThan(0);
      for (const f of ['w.txt', 'e.txt', 'uploads', 'uploads/up.txt']) {
        expect({ f, uid: lstatSync(join(box.ws, f)).uid }).toEqual({ f, uid: UID });
      }
    });
  },
);

describe.skipIf(idmapUnavailable !== undefined)(
  'idmapped workspace views come and go with their sandbox',
  () => {
    it("are made only for a workspace the sandbox user owns (through one, another uid's directory is read-only)", async () => {
      const ws = mkdtempSync(join(tmpdir(), 'berth-priv-'));
      chownSync(ws, 4321, 4321);
      try {
        const strict = new DockerSandboxRuntime({
          engine,
          ports: new PortAllocator({
            lockDir: portLockDir,
            bindHost: '127.0.0.1',
          }),
          logger: pino({ level: 'silent' }),
          owner: `test-${randomBytes(4).toString('hex')}`,
          reach: { kind: 'host-ports' },
          workspaceIdmap: { mounts: workspaceViews, mode: 'require' },
        });
        const spec = await specFor({ workspaceHostPath: ws, userId: UID, groupId: GID });
        const err = await strict.start(spec).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'CONFLICT' });
        expect((err as Error).message).toContain('belongs to uid 4321');
        expect(await engine.containers.find(`berth-sandbox-${spec.id}`)).toBeUndefined();
      } finally {
        rmSync(ws, { recursive: true, force: true });
      }
    });

    it('removed with the sandbox, by the reaper when orphaned, and remade before a stopped sandbox starts again', async () => {
      const box = await startBox(runtime);
      const view = workspaceViews.path(box.id);
      const mounted = () =>
        execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' }).includes(` ${view} `);
      expect(mounted()).toBe(true);

      // Stopped, its view gone (as after a reboot): starting it again remakes the view first.
      await runtime.stop(box.id);
      await workspaceViews.unmount(box.id);
      expect(mounted()).toBe(false);
      const ep = await runtime.restart(box.id, 60_000);
      expect(mounted()).toBe(true);
      const again = new RuntimeServerClient(ep.url, ep.sessionApiKey);
      const obs = await again.executeAction({
        action: {
          action: 'run',
          args: { command: 'touch /workspace/after-restart; sudo touch /workspace/r' },
        },
      });
      again.close();
      expect(obs.content).toContain('Value too large');
      expect(lstatSync(join(box.ws, 'after-restart')).uid).toBe(UID);

      await runtime.remove(box.id);
      expect(mounted()).toBe(false);

      // An orphaned view (its container removed behind Berth's back): the reaper removes it.
      const orphan = await startBox(runtime);
      await engine.containers.remove(`berth-sandbox-${orphan.id}`);
      expect(execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })).toContain(
        workspaceViews.path(orphan.id),
      );
      await runtime.reap(
        new Set(boxes.filter((b) => b.id !== orphan.id && b.rt === runtime).map((b) => b.id)),
      );
      expect(execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })).not.toContain(
        workspaceViews.path(orphan.id),
      );
    }, 120_000);
  },
);
