/** File transfer core on real temporary directories: uploads, zip validation, downloads, list_files. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/protocol/errors.js';
import { createDownload, listFiles, uploadFile } from '../../src/runtime-server/core/transfer/index.js';
import {
  buildZip,
  openFdCount,
  type RawEntry,
  readZip,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  snapshot,
} from './transfer-helpers.js';

const isRoot = process.getuid?.() === 0;

let root: string;
let dest: string;
let spool: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'berth-transfer-'));
  dest = path.join(root, 'dest');
  spool = path.join(root, 'spool');
  await mkdir(spool);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function upload(data: Buffer | string, filename: string, recursive = false, destination = dest) {
  return uploadFile(
    Readable.from([Buffer.from(data)]),
    { destination, filename, recursive },
    { tmpDir: spool },
  );
}

function uploadZip(entries: RawEntry[], destination = dest) {
  return upload(buildZip(entries), 'archive.zip', true, destination);
}

/** Awaits a rejection and returns it as a BerthError, failing the test for anything else. */
async function berthError(promise: Promise<unknown>): Promise<BerthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(BerthError);
  return err as BerthError;
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

describe('upload: plain files', () => {
  it('creates the destination directory and writes destination/filename, owned by this process', async () => {
    const nested = path.join(dest, 'a', 'b');
    const result = await upload('hello', 'greeting.txt', false, nested);
    expect(result).toEqual({ kind: 'file', path: path.join(nested, 'greeting.txt'), bytes: 5 });
    expect(await readFile(path.join(nested, 'greeting.txt'), 'utf8')).toBe('hello');
    expect((await stat(path.join(nested, 'greeting.txt'))).uid).toBe(process.getuid?.());
  });

  it('overwrites an existing file', async () => {
    await mkdir(dest);
    await writeFile(path.join(dest, 'f.txt'), 'old contents that are longer');
    await upload('new', 'f.txt');
    expect(await readFile(path.join(dest, 'f.txt'), 'utf8')).toBe('new');
  });

  it('a name ending in .zip is unpacked even without recursive (the reference rule)', async () => {
    const result = await upload(buildZip([{ name: 'inner.txt', data: 'x' }]), 'bundle.zip', false);
    expect(result.kind).toBe('archive');
    expect(await snapshot(dest)).toEqual({ 'inner.txt': 'x' });
  });

  it.each([
    ['a/b.txt', 'PATH_NOT_ALLOWED'],
    ['../escape.txt', 'PATH_NOT_ALLOWED'],
    ['..', 'PATH_NOT_ALLOWED'],
    ['.', 'PATH_NOT_ALLOWED'],
    ['nul\0.txt', 'PATH_NOT_ALLOWED'],
    ['', 'VALIDATION_FAILED'],
    ['x'.repeat(256), 'PATH_NOT_ALLOWED'],
  ])('refuses the file name %j with %s and writes nothing', async (name, code) => {
    const err = await berthError(upload('data', name));
    expect(err.code).toBe(code);
    expect(err.status).toBe(400);
    expect(await exists(dest)).toBe(false);
    expect(await exists(path.join(root, 'escape.txt'))).toBe(false);
  });

  it('refuses a relative destination and one that is a file', async () => {
    const rel = await berthError(upload('x', 'f.txt', false, 'relative/dir'));
    expect(rel.code).toBe('VALIDATION_FAILED');
    expect(rel.message).toContain('absolute');
    await writeFile(dest, 'I am a file');
    const file = await berthError(upload('x', 'f.txt'));
    expect(file.code).toBe('CONFLICT');
  });

  it('refuses to replace a directory with a file', async () => {
    await mkdir(path.join(dest, 'sub'), { recursive: true });
    const err = await berthError(upload('x', 'sub'));
    expect(err.code).toBe('CONFLICT');
  });

  it('a full disk is NO_SPACE (507); the device behind the name is left alone', async () => {
    await mkdir(dest);
    // Writing through a symlink to /dev/full fails with ENOSPC, like a full file system.
    await symlink('/dev/full', path.join(dest, 'full.bin'));
    const err = await berthError(upload(Buffer.alloc(256 * 1024, 1), 'full.bin'));
    expect(err.code).toBe('NO_SPACE');
    expect(err.status).toBe(507);
    expect((await stat('/dev/full')).isCharacterDevice()).toBe(true);
  });

  it('a source that fails mid-way leaves no partial file', async () => {
    async function* broken() {
      yield Buffer.alloc(64 * 1024, 7);
      throw new Error('client went away');
    }
    const err = await uploadFile(Readable.from(broken()), {
      destination: dest,
      filename: 'p.bin',
      recursive: false,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BerthError);
    expect(await exists(path.join(dest, 'p.bin'))).toBe(false);
  });
});

describe('upload: archives that expand too far', () => {
  it('a zip claiming more than the default 4 GiB is refused with 413 before anything is written', async () => {
    const err = await berthError(
      uploadZip([
        { name: 'small.txt', data: 'x' },
        { name: 'bomb.bin', data: 'y', declaredSize: 5n * 1024n ** 3n },
      ]),
    );
    expect(err.code).toBe('PAYLOAD_TOO_LARGE');
    expect(err.message).toContain('BERTH_UPLOAD_MAX_EXPANDED_BYTES');
    expect(await exists(path.join(dest, 'small.txt'))).toBe(false);
  });

  it('a real bomb (8 MiB of zeros in a few KB) over a lower limit, and too many entries, are 413', async () => {
    const bomb = buildZip([{ name: 'zeros.bin', data: Buffer.alloc(8 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(64 * 1024);
    const limits = { maxExpandedBytes: 1024 * 1024, maxEntries: 5 };
    const send = (zip: Buffer) =>
      uploadFile(
        Readable.from([zip]),
        { destination: dest, filename: 'a.zip', recursive: true },
        { tmpDir: spool, archiveLimits: limits },
      );
    expect((await berthError(send(bomb))).code).toBe('PAYLOAD_TOO_LARGE');
    const many = buildZip(Array.from({ length: 6 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' })));
    const err = await berthError(send(many));
    expect(err.code).toBe('PAYLOAD_TOO_LARGE');
    expect(err.message).toContain('BERTH_UPLOAD_MAX_ENTRIES');
    expect(await exists(path.join(dest, 'zeros.bin'))).toBe(false);
    expect(await exists(path.join(dest, 'f0.txt'))).toBe(false);
    // Within the limits the same kind of archive unpacks.
    const fine = buildZip(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}.txt`, data: 'x' })));
    expect((await send(fine)).kind).toBe('archive');
  });
});

describe('upload: zip archives', () => {
  it('unpacks files, directories, symlinks inside the tree and the executable bit; removes the spooled zip', async () => {
    const result = await uploadZip([
      { name: 'top/', mode: S_IFDIR | 0o755 },
      { name: 'top/readme.md', data: '# hi' },
      { name: 'top/bin/run.sh', data: '#!/bin/sh\necho run\n', mode: S_IFREG | 0o755 },
      { name: 'top/empty/', mode: S_IFDIR | 0o755 },
      { name: 'top/link', data: 'readme.md', mode: S_IFLNK | 0o777, method: 0 },
      { name: './top/stored.txt', data: 'stored', method: 0 },
      { name: 'win\\style.txt', data: 'backslash' },
      { name: 'C:notes.txt', data: 'a plain name on Linux' },
    ]);
    expect(result).toMatchObject({ kind: 'archive', files: 5, directories: 2, symlinks: 1 });
    expect(await snapshot(dest)).toEqual({
      'C:notes.txt': 'a plain name on Linux',
      top: 'dir',
      'top/bin': 'dir',
      'top/bin/run.sh': '#!/bin/sh\necho run\n',
      'top/empty': 'dir',
      'top/link': '-> readme.md',
      'top/readme.md': '# hi',
      'top/stored.txt': 'stored',
      win: 'dir',
      'win/style.txt': 'backslash',
    });
    expect((await stat(path.join(dest, 'top/bin/run.sh'))).mode & 0o111).not.toBe(0);
    expect((await stat(path.join(dest, 'top/readme.md'))).uid).toBe(process.getuid?.());
    expect(await readdir(spool)).toEqual([]);
  });

  it('extracts into an existing tree, replacing files and symlinks but never writing through them', async () => {
    const outside = path.join(root, 'outside');
    await mkdir(outside);
    await mkdir(dest);
    await writeFile(path.join(dest, 'keep.txt'), 'kept');
    await writeFile(path.join(dest, 'replace.txt'), 'old');
    // A dangling symlink where a file entry goes: replaced by the file, its target never created.
    await symlink(path.join(outside, 'created-through-link'), path.join(dest, 'dangling'));
    await uploadZip([
      { name: 'replace.txt', data: 'new' },
      { name: 'dangling', data: 'regular file now' },
    ]);
    expect(await snapshot(dest)).toEqual({
      dangling: 'regular file now',
      'keep.txt': 'kept',
      'replace.txt': 'new',
    });
    expect(await readdir(outside)).toEqual([]);
  });

  const hostile: Array<[string, RawEntry, string]> = [
    ['a parent-directory name', { name: '../evil.txt', data: 'x' }, 'PATH_NOT_ALLOWED'],
    ['a nested parent-directory name', { name: 'ok/../../evil.txt', data: 'x' }, 'PATH_NOT_ALLOWED'],
    ['a backslash parent-directory name', { name: '..\\evil.txt', data: 'x' }, 'PATH_NOT_ALLOWED'],
    ['an absolute name', { name: '/tmp/berth-evil.txt', data: 'x' }, 'PATH_NOT_ALLOWED'],
    ['a drive-letter name', { name: 'C:/evil.txt', data: 'x' }, 'PATH_NOT_ALLOWED'],
    ['a name with NUL', { name: 'nul\0.txt', data: 'x' }, 'PATH_NOT_ALLOWED'],
    [
      'a symlink to a parent directory',
      { name: 'up', data: '../..', mode: S_IFLNK | 0o777, method: 0 },
      'PATH_NOT_ALLOWED',
    ],
    [
      'a symlink to an absolute path',
      { name: 'passwd', data: '/etc/passwd', mode: S_IFLNK | 0o777, method: 0 },
      'PATH_NOT_ALLOWED',
    ],
    [
      'a symlink whose target holds NUL',
      { name: 'l', data: 'a\0b', mode: S_IFLNK | 0o777, method: 0 },
      'PATH_NOT_ALLOWED',
    ],
    ['a file entry naming the destination itself', { name: '.', data: 'x' }, 'PATH_NOT_ALLOWED'],
  ];

  it.each(hostile)('refuses %s and writes nothing, even after good entries', async (_label, bad, code) => {
    const err = await berthError(
      uploadZip([
        { name: 'good-first.txt', data: 'fine' },
        { name: 'gooddir/' },
        bad,
        { name: 'good-last.txt' },
      ]),
    );
    expect(err.code).toBe(code);
    expect(err.status).toBe(400);
    expect(await exists(dest)).toBe(false);
    expect(await exists(path.join(root, 'evil.txt'))).toBe(false);
    expect(await exists('/tmp/berth-evil.txt')).toBe(false);
    expect(await readdir(spool)).toEqual([]);
  });

  it('refuses entries beneath a symlink entry, even one pointing inside', async () => {
    const err = await berthError(
      uploadZip([
        { name: 'sub/' },
        { name: 'link', data: 'sub', mode: S_IFLNK | 0o777, method: 0 },
        { name: 'link/x.txt', data: 'x' },
      ]),
    );
    expect(err.code).toBe('PATH_NOT_ALLOWED');
    expect(err.message).toContain('link/x.txt');
    expect(await exists(dest)).toBe(false);
  });

  it('refuses an entry that would go through an existing symlink pointing outside', async () => {
    const outside = path.join(root, 'outside');
    await mkdir(outside);
    await mkdir(dest);
    await symlink(outside, path.join(dest, 'out'));
    const err = await berthError(
      uploadZip([
        { name: 'fine.txt', data: 'x' },
        { name: 'out/pwned.txt', data: 'x' },
      ]),
    );
    expect(err.code).toBe('PATH_NOT_ALLOWED');
    expect(await readdir(outside)).toEqual([]);
    expect(await readdir(dest)).toEqual(['out']);
  });

  it('accepts a symlink entry pointing inside the destination by absolute path', async () => {
    await uploadZip([
      { name: 'data.txt', data: 'd' },
      { name: 'abs', data: path.join(dest, 'data.txt'), mode: S_IFLNK | 0o777, method: 0 },
    ]);
    expect(await readFile(path.join(dest, 'abs'), 'utf8')).toBe('d');
  });

  it.each([
    ['random bytes', Buffer.from('this is not a zip archive at all')],
    ['an empty file', Buffer.alloc(0)],
    ['a truncated zip', buildZip([{ name: 'a.txt', data: 'a'.repeat(1000) }]).subarray(0, 60)],
  ])('refuses %s as BAD_ARCHIVE', async (_label, bytes) => {
    const err = await berthError(upload(bytes, 'x.zip', true));
    expect(err.code).toBe('BAD_ARCHIVE');
    expect(err.status).toBe(400);
    expect(await exists(dest)).toBe(false);
    expect(await readdir(spool)).toEqual([]);
  });

  it('refuses an entry failing its CRC check, before writing the good entries', async () => {
    const err = await berthError(
      uploadZip([
        { name: 'good.txt', data: 'fine' },
        { name: 'bad.txt', data: 'payload', crc: 0x12345678 },
      ]),
    );
    expect(err.code).toBe('BAD_ARCHIVE');
    expect(err.message).toContain('bad.txt');
    expect(await exists(dest)).toBe(false);
  });

  it('refuses undecodable deflate data', async () => {
    const err = await berthError(
      uploadZip([
        { name: 'good.txt', data: 'fine' },
        { name: 'bad.bin', data: 'abc', rawData: Buffer.from([0xff, 0xff, 0xff]) },
      ]),
    );
    expect(err.code).toBe('BAD_ARCHIVE');
    expect(await exists(dest)).toBe(false);
  });

  it('refuses an entry beneath a file entry, and a name used for two kinds', async () => {
    const under = await berthError(
      uploadZip([
        { name: 'a', data: 'file' },
        { name: 'a/b', data: 'x' },
      ]),
    );
    expect(under.code).toBe('BAD_ARCHIVE');
    const twice = await berthError(uploadZip([{ name: 'a/' }, { name: 'a', data: 'x' }]));
    expect(twice.code).toBe('BAD_ARCHIVE');
    expect(await exists(dest)).toBe(false);
  });

  it('refuses an entry beneath an existing file (CONFLICT), writing nothing', async () => {
    await mkdir(dest);
    await writeFile(path.join(dest, 'plain'), 'a file');
    const err = await berthError(
      uploadZip([
        { name: 'first.txt', data: 'x' },
        { name: 'plain/inner.txt', data: 'x' },
      ]),
    );
    expect(err.code).toBe('CONFLICT');
    expect(await readdir(dest)).toEqual(['plain']);
  });

  it('refuses to replace an existing directory with a file entry (CONFLICT)', async () => {
    await mkdir(path.join(dest, 'd'), { recursive: true });
    const err = await berthError(
      uploadZip([
        { name: 'new.txt', data: 'x' },
        { name: 'd', data: 'x' },
      ]),
    );
    expect(err.code).toBe('CONFLICT');
    expect(await readdir(dest)).toEqual(['d']);
  });

  it('an archive larger than the free space is NO_SPACE before anything is written', async () => {
    const err = await berthError(
      uploadZip([
        { name: 'small.txt', data: 'x' },
        { name: 'huge.bin', data: 'x', declaredSize: 2n ** 50n },
      ]),
    );
    expect(err.code).toBe('NO_SPACE');
    expect(err.status).toBe(507);
    expect(await exists(dest)).toBe(false);
  });

  it('an archive written by Info-ZIP is unpacked like by unzip', async () => {
    const src = path.join(root, 'src');
    await mkdir(path.join(src, 'pkg', 'deep'), { recursive: true });
    await writeFile(path.join(src, 'pkg', 'a.txt'), 'A');
    await writeFile(path.join(src, 'pkg', 'deep', 'b.txt'), 'B');
    await symlink('a.txt', path.join(src, 'pkg', 'alias'));
    const zipPath = path.join(root, 'pkg.zip');
    try {
      execFileSync('zip', ['-qry', zipPath, 'pkg'], { cwd: src });
    } catch {
      return; // no `zip` binary here; the hand-made archives above cover the same ground
    }
    await upload(await readFile(zipPath), 'pkg.zip', true);
    expect(await snapshot(dest)).toEqual({
      pkg: 'dir',
      'pkg/a.txt': 'A',
      'pkg/alias': '-> a.txt',
      'pkg/deep': 'dir',
      'pkg/deep/b.txt': 'B',
    });
  });
});

describe('download', () => {
  async function zipOf(p: string) {
    const d = await createDownload(p);
    return { ...d, listing: await readZip(await collect(d.stream)) };
  }

  it('zips a directory: names relative to it, files only, hidden files included', async () => {
    const tree = path.join(root, 'tree');
    await mkdir(path.join(tree, 'sub', 'deeper'), { recursive: true });
    await mkdir(path.join(tree, 'emptydir'));
    await writeFile(path.join(tree, 'a.txt'), 'A');
    await writeFile(path.join(tree, '.hidden'), 'H');
    await writeFile(path.join(tree, 'sub', 'b.txt'), 'B');
    await writeFile(path.join(tree, 'sub', 'deeper', 'c.bin'), Buffer.from([0, 1, 2, 255]));
    await symlink('a.txt', path.join(tree, 'file-link'));
    await symlink('sub', path.join(tree, 'dir-link'));
    await symlink('nowhere', path.join(tree, 'dangling'));
    execFileSync('mkfifo', [path.join(tree, 'pipe')]);

    const { filename, files, listing } = await zipOf(tree);
    expect(filename).toBe('tree.zip');
    expect(files).toBe(5);
    expect(listing.names.sort()).toEqual(['.hidden', 'a.txt', 'file-link', 'sub/b.txt', 'sub/deeper/c.bin']);
    expect(listing.files.get('a.txt')?.toString()).toBe('A');
    expect(listing.files.get('file-link')?.toString()).toBe('A');
    expect([...(listing.files.get('sub/deeper/c.bin') ?? [])]).toEqual([0, 1, 2, 255]);
  });

  it('zips a single file under its basename (the reference sends an empty zip)', async () => {
    const file = path.join(root, 'report.csv');
    await writeFile(file, 'a,b\n1,2\n');
    const { filename, listing } = await zipOf(file);
    expect(filename).toBe('report.csv.zip');
    expect(listing.names).toEqual(['report.csv']);
    expect(listing.files.get('report.csv')?.toString()).toBe('a,b\n1,2\n');
  });

  it('deflates files, but stores large ones that do not compress', async () => {
    const tree = path.join(root, 'mixed');
    await mkdir(tree);
    const noise = randomBytes(2 * 1024 * 1024);
    await writeFile(path.join(tree, 'noise.bin'), noise);
    await writeFile(path.join(tree, 'text.log'), 'line of text\n'.repeat(200_000));
    await writeFile(path.join(tree, 'small-noise.bin'), randomBytes(4096));
    const { listing } = await zipOf(tree);
    expect(listing.methods.get('noise.bin')).toBe(0);
    expect(listing.methods.get('text.log')).toBe(8);
    expect(listing.methods.get('small-noise.bin')).toBe(8);
    expect(listing.files.get('noise.bin')?.equals(noise)).toBe(true);
  });

  it('an empty directory is an empty zip', async () => {
    const empty = path.join(root, 'empty');
    await mkdir(empty);
    expect((await zipOf(empty)).listing.names).toEqual([]);
  });

  it('a relative path is 400, a missing one 404', async () => {
    const rel = await berthError(createDownload('relative/path'));
    expect(rel.code).toBe('VALIDATION_FAILED');
    expect(rel.status).toBe(400);
    const missing = await berthError(createDownload(path.join(root, 'nope')));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.status).toBe(404);
  });

  it.skipIf(isRoot)('an unreadable file or directory is 403 before anything is sent', async () => {
    const tree = path.join(root, 'locked');
    await mkdir(path.join(tree, 'closed'), { recursive: true });
    await writeFile(path.join(tree, 'secret.txt'), 's');
    await chmod(path.join(tree, 'secret.txt'), 0o000);
    expect((await berthError(createDownload(path.join(tree, 'secret.txt')))).code).toBe('PERMISSION_DENIED');
    expect((await berthError(createDownload(tree))).status).toBe(403);
    await chmod(path.join(tree, 'secret.txt'), 0o644);
    await chmod(path.join(tree, 'closed'), 0o000);
    expect((await berthError(createDownload(tree))).status).toBe(403);
    await chmod(path.join(tree, 'closed'), 0o755);
  });

  it('streams: files are opened one at a time, and abandoning the stream closes them', async () => {
    const tree = path.join(root, 'big');
    await mkdir(tree);
    for (let i = 0; i < 5; i++)
      await writeFile(path.join(tree, `f${i}.bin`), Buffer.alloc(4 * 1024 * 1024, i));
    const before = await openFdCount();
    const d = await createDownload(tree);
    let seen = 0;
    let peakFds = 0;
    for await (const chunk of d.stream) {
      seen += (chunk as Buffer).length;
      peakFds = Math.max(peakFds, await openFdCount());
      if (seen > 64 * 1024) break; // destroys the stream
    }
    expect(peakFds - before).toBeLessThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(await openFdCount()).toBe(before);
  });

  it('what a download zips, an upload unpacks to the same tree', async () => {
    const tree = path.join(root, 'round');
    await mkdir(path.join(tree, 'x', 'y'), { recursive: true });
    await writeFile(path.join(tree, 'one.txt'), '1');
    await writeFile(path.join(tree, 'x', 'y', 'two.txt'), '2');
    const d = await createDownload(tree);
    await uploadFile(
      d.stream,
      { destination: dest, filename: 'round.zip', recursive: true },
      { tmpDir: spool },
    );
    expect(await snapshot(dest)).toEqual({ 'one.txt': '1', x: 'dir', 'x/y': 'dir', 'x/y/two.txt': '2' });
  });
});

describe('list_files', () => {
  let cwd: string;
  beforeEach(async () => {
    cwd = path.join(root, 'cwd');
    await mkdir(cwd);
    for (const d of ['src', 'Docs', '.git', 'a', 'a-b', 'node_modules']) await mkdir(path.join(cwd, d));
    for (const f of ['README.md', 'b.txt', '.env', 'A.txt', 'c.TXT', '_x'])
      await writeFile(path.join(cwd, f), f);
    await symlink('src', path.join(cwd, 'src-link'));
    await symlink('README.md', path.join(cwd, 'readme-link'));
    await symlink('missing', path.join(cwd, 'dangling'));
    await mkdir(path.join(cwd, 'src', 'lib'));
    await writeFile(path.join(cwd, 'src', 'index.ts'), '');
  });

  it('directories first with a trailing slash, then files; each sorted case-insensitively; hidden included', async () => {
    expect(await listFiles(cwd, '/elsewhere')).toEqual([
      '.git/',
      // Python sorts 'a-b/' before 'a/' because the key includes the slash ('-' < '/').
      'a-b/',
      'a/',
      'Docs/',
      'node_modules/',
      'src-link/',
      'src/',
      '.env',
      '_x',
      'A.txt',
      'b.txt',
      'c.TXT',
      'readme-link',
      'README.md',
    ]);
  });

  it('no path means the initial cwd; a relative path is joined to it', async () => {
    const all = await listFiles(cwd, '/elsewhere');
    expect(await listFiles(undefined, cwd)).toEqual(all);
    expect(await listFiles(null, cwd)).toEqual(all);
    expect(await listFiles('', cwd)).toEqual(all);
    expect(await listFiles('src', cwd)).toEqual(['lib/', 'index.ts']);
    expect(await listFiles('./src/../src', cwd)).toEqual(['lib/', 'index.ts']);
    expect(await listFiles(path.join(cwd, 'src'), '/elsewhere')).toEqual(['lib/', 'index.ts']);
  });

  it('a missing path, a file, or a dangling link give []', async () => {
    expect(await listFiles('does-not-exist', cwd)).toEqual([]);
    expect(await listFiles('README.md', cwd)).toEqual([]);
    expect(await listFiles('dangling', cwd)).toEqual([]);
    expect(await listFiles('/proc/self/fd/999999', cwd)).toEqual([]);
  });
});
