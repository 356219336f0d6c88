/**
 * Test helpers for file transfers: a raw zip writer (so entries can carry names and attributes no
 * well-behaved zip library would write), a zip reader, and small file-system utilities.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import yauzl from 'yauzl';

export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export interface RawEntry {
  /** Stored byte-for-byte (a string is written as UTF-8). */
  name: string | Buffer;
  data?: Buffer | string;
  /** Full Unix mode, type bits included; written in the high 16 bits of the external attributes. */
  mode?: number;
  /** 0 = stored, 8 = deflated. @default 8 */
  method?: 0 | 8;
  /** Overrides the recorded CRC-32 (to make a corrupt entry). */
  crc?: number;
  /** Overrides the recorded uncompressed size with a ZIP64 value (to claim a huge entry). */
  declaredSize?: bigint;
  /** Replaces the compressed bytes (to make undecodable data). */
  rawData?: Buffer;
}

/** Writes a zip archive from raw entries: local headers, central directory, end record. */
export function buildZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = typeof e.name === 'string' ? Buffer.from(e.name, 'utf8') : e.name;
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const method = e.method ?? 8;
    const compressed = e.rawData ?? (method === 8 ? zlib.deflateRawSync(data) : data);
    const crc = e.crc ?? zlib.crc32(data);
    const extra =
      e.declaredSize === undefined ? Buffer.alloc(0) : zip64Extra(e.declaredSize, compressed.length);
    const usize = e.declaredSize === undefined ? data.length : 0xffffffff;
    const csize = e.declaredSize === undefined ? compressed.length : 0xffffffff;
    const flags = 0x800; // UTF-8 names

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(e.declaredSize === undefined ? 20 : 45, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(csize, 18);
    local.writeUInt32LE(usize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    locals.push(local, name, extra, compressed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 45, 4);
    central.writeUInt16LE(e.declaredSize === undefined ? 20 : 45, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(csize, 20);
    central.writeUInt32LE(usize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(extra.length, 30);
    central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36);
    const mode = e.mode ?? (name.at(-1) === 0x2f ? S_IFDIR | 0o755 : S_IFREG | 0o644);
    central.writeUInt32LE(((mode << 16) | ((mode & 0o170000) === S_IFDIR ? 0x10 : 0)) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name, extra);

    offset += local.length + name.length + extra.length + compressed.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

function zip64Extra(uncompressed: bigint, compressed: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(16, 2);
  b.writeBigUInt64LE(uncompressed, 4);
  b.writeBigUInt64LE(BigInt(compressed), 12);
  return b;
}

export interface ZipListing {
  /** Entry name -> content (files) */
  files: Map<string, Buffer>;
  /** Every entry name, in archive order (directory entries included, if any). */
  names: string[];
  /** Entry name -> compression method (0 stored, 8 deflated). */
  methods: Map<string, number>;
}

/** Reads a whole (small) zip held in memory. */
export async function readZip(buffer: Buffer): Promise<ZipListing> {
  const zip = await yauzl.fromBufferPromise(buffer, { validateEntrySizes: true });
  const files = new Map<string, Buffer>();
  const names: string[] = [];
  const methods = new Map<string, number>();
  for await (const entry of zip.eachEntry()) {
    names.push(entry.fileName);
    methods.set(entry.fileName, entry.compressionMethod);
    if (entry.fileName.endsWith('/')) continue;
    const chunks: Buffer[] = [];
    for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
    files.set(entry.fileName, Buffer.concat(chunks));
  }
  return { files, names, methods };
}

/** A tree snapshot: relative path -> 'dir' | file content | '-> target' for symlinks. */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const abs = path.join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const st = await lstat(abs);
      if (st.isSymbolicLink()) out[rel] = `-> ${await readlink(abs)}`;
      else if (st.isDirectory()) {
        out[rel] = 'dir';
        await walk(abs, rel);
      } else out[rel] = (await readFile(abs)).toString('utf8');
    }
  };
  await walk(root, '');
  return out;
}

/** Number of file descriptors this process has open (Linux). */
export async function openFdCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}
