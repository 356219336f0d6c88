/**
 * `berth cp`, like `docker cp`: files and directories between this machine and a sandbox, one side
 * written `ID:PATH`. Into the sandbox through the upload route (a directory goes as a zip, unpacked
 * there); out of it through the download route (always a zip), unpacked here by the same hardened
 * extraction the runtime server uses, into a temporary directory first, then moved into place.
 */
import { createWriteStream } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import { createDownload, extractZip } from '../runtime-server/core/transfer/index.js';
import type { BerthClient, SandboxApi } from '../sdk/client.js';

interface Remote {
  id: string;
  path: string;
}

/** `ID:PATH` (an absolute path in the sandbox), or undefined for a local path. */
function parseRemote(spec: string): Remote | undefined {
  const m = /^([0-9a-f]{12}):(.*)$/.exec(spec);
  if (!m) return undefined;
  const path = m[2] ?? '';
  if (!path.startsWith('/')) throw new Error(`${spec}: the path in the sandbox must be absolute (ID:/path)`);
  return { id: m[1] as string, path };
}

/** Whether `path` is a directory in the sandbox (a fresh process there, not the agent's shell). */
async function remoteIsDir(sb: SandboxApi, path: string): Promise<boolean> {
  return (await sb.exec(['test', '-d', path]).done).exitCode === 0;
}

async function localStat(path: string) {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

async function copyIn(sb: SandboxApi, local: string, remote: string): Promise<string> {
  const st = await localStat(local);
  if (!st) throw new Error(`${local}: no such file or directory`);
  // docker cp: into an existing directory (or a path ending in /) under the source's own name.
  const into = remote.endsWith('/') || (await remoteIsDir(sb, remote));
  const target = into ? posix.join(remote, basename(resolve(local))) : remote;
  if (st.isDirectory()) {
    const zip = await createDownload(resolve(local));
    const bytes = await new Response(Readable.toWeb(zip.stream) as ReadableStream).arrayBuffer();
    await sb.upload(target, 'berth-cp.zip', new Uint8Array(bytes), true);
    return target;
  }
  const name = posix.basename(target);
  const data = new Uint8Array(await readFile(local));
  if (name.toLowerCase().endsWith('.zip')) {
    // The upload route unpacks a .zip name (as OpenHands' does): send it under another name, then rename.
    const temp = `${name}.berth-cp-${process.pid}`;
    await sb.upload(posix.dirname(target), temp, data);
    const mv = await sb.exec(['mv', '-f', '--', posix.join(posix.dirname(target), temp), target]).done;
    if (mv.exitCode !== 0) throw new Error(`could not put ${target} in place: ${mv.stderr.trim()}`);
  } else await sb.upload(posix.dirname(target), name, data);
  return target;
}

async function copyOut(sb: SandboxApi, remote: string, local: string): Promise<string> {
  const isDir = await remoteIsDir(sb, remote);
  const existing = await localStat(local);
  const target = existing?.isDirectory() || local.endsWith('/') ? join(local, posix.basename(remote)) : local;
  const work = await mkdtemp(join(dirname(resolve(target)), '.berth-cp-'));
  try {
    const zipPath = join(work, 'download.zip');
    const body = Readable.fromWeb((await sb.downloadStream(remote)) as WebReadableStream<Uint8Array>);
    await pipeline(body, createWriteStream(zipPath));
    const out = join(work, 'out');
    await extractZip(zipPath, out);
    // A file's zip holds it under its basename; a directory's holds its contents.
    const source = isDir ? out : join(out, (await readdir(out))[0] ?? posix.basename(remote));
    await cp(source, target, { recursive: true, force: true });
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function registerCpCommand(program: Command, client: (cmd: Command) => BerthClient): void {
  program
    .command('cp <src> <dst>')
    .description(
      'Copy files or directories between this machine and a sandbox, like docker cp (one side is ID:/path)',
    )
    .action(async (src: string, dst: string, _opts, cmd: Command) => {
      const from = parseRemote(src);
      const to = parseRemote(dst);
      if ((from === undefined) === (to === undefined))
        throw new Error('berth cp: exactly one of SRC and DST must be ID:/path in a sandbox');
      const c = client(cmd);
      if (to) {
        await c.sandboxes.get(to.id);
        const target = await copyIn(c.sandbox(to.id), src, to.path);
        process.stderr.write(`copied ${src} to ${to.id}:${target}\n`);
      } else if (from) {
        await c.sandboxes.get(from.id);
        const target = await copyOut(c.sandbox(from.id), from.path, dst);
        process.stderr.write(`copied ${from.id}:${from.path} to ${target}\n`);
      }
    });
}
