/**
 * The one image build path (src/docker/image-build.ts) without an engine: the content hash and its
 * stability, the labels, the cache check, forced rebuilds and replacing the old image, and the tar
 * context. An ImageClient fake answers inspect, build and remove.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildImage,
  bytesEntry,
  type ContextEntry,
  contentHash,
  fileEntry,
  type ImageBuildSpec,
  inspectBaseImage,
  listFiles,
  packContext,
  readRequired,
  TAG_HASH_LENGTH,
  withLabels,
} from '../../src/docker/image-build.js';
import type { BuildImageOptions, ImageClient, ImageDetails } from '../../src/docker/images.js';
import { BerthError, ErrorCode } from '../../src/protocol/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-image-build-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function details(id: string, extra: Partial<ImageDetails> = {}): ImageDetails {
  return {
    id,
    tags: [],
    labels: {},
    created: '',
    sizeBytes: 0,
    architecture: 'amd64',
    os: 'linux',
    env: [],
    entrypoint: [],
    cmd: [],
    user: '',
    workingDir: '',
    ...extra,
  };
}

/** An engine's image store holding `present` (ref -> image ID); builds give out sha256:built-1, -2, ... */
function fakeImages(present: Record<string, string>, options: { removeFails?: boolean } = {}) {
  const builds: { files: Map<string, { mode: number; text: string }>; options: BuildImageOptions }[] = [];
  const removed: { ref: string; force: boolean | undefined }[] = [];
  const images = {
    async inspect(ref: string) {
      const id = present[ref];
      if (!id) throw new BerthError(ErrorCode.NOT_FOUND, `image ${ref} not found locally`);
      return details(id);
    },
    async build(context: Readable, opts: BuildImageOptions) {
      builds.push({ files: await untar(context), options: opts });
      const id = `sha256:built-${builds.length}`;
      present[opts.tag] = id;
      return { id };
    },
    async remove(ref: string, opts?: { force?: boolean }) {
      removed.push({ ref, force: opts?.force });
      // The engine refuses to remove an image a container uses (409), unless forced.
      if (options.removeFails) throw new BerthError(ErrorCode.CONFLICT, `image ${ref} is in use`);
      return true;
    },
  } as Partial<ImageClient> as ImageClient;
  return { images, builds, removed };
}

async function untar(stream: Readable): Promise<Map<string, { mode: number; text: string }>> {
  const files = new Map<string, { mode: number; text: string }>();
  const x = extract();
  // pipe() does not pass errors on: a failed pack must fail the read.
  stream.on('error', (err) => x.destroy(err));
  for await (const entry of stream.pipe(x)) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    files.set(entry.header.name, { mode: entry.header.mode ?? 0, text: Buffer.concat(chunks).toString() });
  }
  return files;
}

function text(name: string, content: string, mode?: number): ContextEntry {
  return bytesEntry(name, Buffer.from(content), mode);
}

function spec(overrides: Partial<ImageBuildSpec> = {}): ImageBuildSpec {
  return {
    repo: 'berth-test',
    kind: 'test-image',
    base: 'base:1',
    baseId: 'sha256:base',
    arch: 'x64',
    dockerfile: Buffer.from('FROM scratch\nLABEL {{LABELS}}\nCOPY a /a\n'),
    entries: [text('a', 'A'), text('dir/b', 'B', 0o755)],
    labels: { 'berth.node.version': '20.0.0' },
    ...overrides,
  };
}

describe('content hash', () => {
  const entries = [
    text('Dockerfile', 'FROM scratch\n'),
    text('berth/entrypoint.sh', '#!/bin/sh\n', 0o755),
    { ...text('berth/bin/node', '', 0o755), digest: 'node-tarball:abc' },
  ];

  it('is what the scheme-1 builders computed, so cached images stay valid', () => {
    // Literal values from before the builders shared this module. A change here makes every user's
    // cached image look stale: if that is meant, bump HASH_SCHEME_VERSION.
    expect(contentHash('berth-runtime', 'sha256:base', 'x64', entries)).toBe(
      '06630f16b158fa07817edc30aada775b5a025a5da58a9d6b8018c58f38aa8f0d',
    );
    expect(contentHash('berth-control-plane', 'sha256:base', 'x64', entries)).toBe(
      'ee3e93049e5511d3900a8f7769f1c5d0415f35a2914cce4977fe5cb1cfa4a14a',
    );
  });

  it('does not depend on the order entries were collected in', () => {
    const hash = contentHash('berth-runtime', 'sha256:base', 'x64', entries);
    expect(contentHash('berth-runtime', 'sha256:base', 'x64', [...entries].reverse())).toBe(hash);
  });

  it('changes with every input: content, mode, name, base, architecture, repository', () => {
    const hash = contentHash('berth-runtime', 'sha256:base', 'x64', entries);
    const [dockerfile, entrypoint, node] = entries as [ContextEntry, ContextEntry, ContextEntry];
    const variants = [
      contentHash('berth-runtime', 'sha256:base', 'x64', [
        dockerfile,
        entrypoint,
        text('berth/bin/node', 'x'),
      ]),
      contentHash('berth-runtime', 'sha256:base', 'x64', [dockerfile, { ...entrypoint, mode: 0o644 }, node]),
      contentHash('berth-runtime', 'sha256:base', 'x64', [
        dockerfile,
        { ...entrypoint, name: 'berth/entrypoint' },
        node,
      ]),
      contentHash('berth-runtime', 'sha256:other', 'x64', entries),
      contentHash('berth-runtime', 'sha256:base', 'arm64', entries),
      contentHash('berth-other', 'sha256:base', 'x64', entries),
    ];
    expect(new Set([hash, ...variants]).size).toBe(variants.length + 1);
  });

  it('of a file is the sha256 of its content, whether read into memory or streamed', async () => {
    const path = join(dir, 'hashed.txt');
    writeFileSync(path, 'same bytes');
    const streamed = await fileEntry('f', path);
    expect(streamed.digest).toBe(text('f', 'same bytes').digest);
    expect(streamed).toMatchObject({ size: 10, mode: 0o644, source: { path } });
    chmodSync(path, 0o700);
    expect((await fileEntry('f', path)).mode).toBe(0o755);
    expect(await fileEntry('f', path, { mode: 0o644, digest: 'origin:x' })).toMatchObject({
      mode: 0o644,
      digest: 'origin:x',
    });
  });
});

describe('buildImage', () => {
  it('builds under <repo>:<hash>, with the labels filled in after hashing', async () => {
    const { images, builds } = fakeImages({});
    const phases: string[] = [];
    const result = await buildImage(images, spec({ buildArgs: { X: '1' } }), {
      onProgress: (e) => {
        if (e.type === 'phase') phases.push(e.message);
      },
    });
    const hash = contentHash('berth-test', 'sha256:base', 'x64', [
      bytesEntry('Dockerfile', spec().dockerfile),
      ...spec().entries,
    ]);
    expect(result).toEqual({
      tag: `berth-test:${hash.slice(0, TAG_HASH_LENGTH)}`,
      cached: false,
      imageId: 'sha256:built-1',
    });
    expect(phases).toEqual([`building ${result.tag} on base:1 (3 files)`]);
    expect(builds).toHaveLength(1);
    const build = builds[0]!;
    expect(build.options).toMatchObject({ tag: result.tag, noCache: false, buildArgs: { X: '1' } });
    expect(build.files.get('Dockerfile')?.text).toBe(
      'FROM scratch\n' +
        `LABEL "berth.managed"="true" "berth.kind"="test-image" "berth.base"="base:1" "berth.base.id"="sha256:base" "berth.content-hash"="${hash}" "berth.node.version"="20.0.0"\n` +
        'COPY a /a\n',
    );
    expect(build.files.get('dir/b')).toEqual({ mode: 0o755, text: 'B' });
  });

  it('answers an unchanged build from the image already tagged, building nothing', async () => {
    const first = fakeImages({});
    const { tag } = await buildImage(first.images, spec());
    let checked = false;
    const { images, builds, removed } = fakeImages({ [tag]: 'sha256:old' });
    const phases: string[] = [];
    const result = await buildImage(
      images,
      spec({
        beforeBuild: async () => {
          checked = true;
        },
      }),
      { onProgress: (e) => e.type === 'phase' && phases.push(e.message) },
    );
    expect(result).toEqual({ tag, cached: true, imageId: 'sha256:old' });
    expect(phases).toEqual([`${tag} is up to date`]);
    expect(builds).toEqual([]);
    expect(removed).toEqual([]);
    // The checks worth making only before a build are not made.
    expect(checked).toBe(false);
  });

  it('runs beforeBuild before building, and a failing check stops the build', async () => {
    const { images, builds } = fakeImages({});
    const err = await buildImage(
      images,
      spec({
        beforeBuild: async () => {
          throw new BerthError(ErrorCode.VALIDATION_FAILED, 'no glibc');
        },
      }),
    ).catch((e: unknown) => e);
    expect((err as BerthError).message).toBe('no glibc');
    expect(builds).toEqual([]);
  });

  it('on force, rebuilds without the layer cache and drops the image the tag pointed at', async () => {
    const { tag } = await buildImage(fakeImages({}).images, spec());
    const { images, builds, removed } = fakeImages({ [tag]: 'sha256:old' });
    const result = await buildImage(images, spec(), { force: true });
    expect(result).toEqual({ tag, cached: false, imageId: 'sha256:built-1' });
    expect(builds[0]?.options.noCache).toBe(true);
    // Not forced: the engine keeps an image a container still uses.
    expect(removed).toEqual([{ ref: 'sha256:old', force: undefined }]);
  });

  it('keeps the old image when a container still uses it, and the build still succeeds', async () => {
    const { tag } = await buildImage(fakeImages({}).images, spec());
    const { images, removed } = fakeImages({ [tag]: 'sha256:old' }, { removeFails: true });
    const result = await buildImage(images, spec(), { force: true });
    expect(result).toMatchObject({ tag, cached: false, imageId: 'sha256:built-1' });
    expect(removed).toHaveLength(1);
  });

  it('removes nothing when the forced build produced the same image', async () => {
    const { tag } = await buildImage(fakeImages({}).images, spec());
    const { images, removed } = fakeImages({ [tag]: 'sha256:built-1' });
    await buildImage(images, spec(), { force: true });
    expect(removed).toEqual([]);
  });

  it('passes an engine failure of the cache check on', async () => {
    const images = {
      inspect: async () => {
        throw new BerthError(ErrorCode.UNAVAILABLE, 'engine down');
      },
    } as Partial<ImageClient> as ImageClient;
    await expect(buildImage(images, spec())).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
  });
});

describe('labels', () => {
  it('replace the LABEL {{LABELS}} line, quoted', () => {
    const out = withLabels(Buffer.from('FROM x\nLABEL {{LABELS}}\nRUN true\n'), { 'a.b': 'say "$HOME" \\' });
    expect(out.toString()).toBe('FROM x\nLABEL "a.b"="say \\"\\$HOME\\" \\\\"\nRUN true\n');
  });

  it('are appended as the last step to a Dockerfile without the placeholder', () => {
    const out = withLabels(Buffer.from('FROM x\nRUN true'), { k: 'v' });
    expect(out.toString()).toBe('FROM x\nRUN true\nLABEL "k"="v"\n');
  });
});

describe('build context', () => {
  it('packs directories explicitly, modes as given, files from memory and streamed from disk', async () => {
    const path = join(dir, 'big.bin');
    writeFileSync(path, 'streamed content');
    const files = await untar(
      packContext([
        text('Dockerfile', 'FROM scratch\n'),
        text('a/b/c.sh', 'echo\n', 0o755),
        await fileEntry('a/d.bin', path, { mode: 0o644 }),
      ]),
    );
    expect([...files.keys()]).toEqual(['Dockerfile', 'a/', 'a/b/', 'a/b/c.sh', 'a/d.bin']);
    expect(files.get('a/')?.mode).toBe(0o755);
    expect(files.get('a/b/c.sh')).toEqual({ mode: 0o755, text: 'echo\n' });
    expect(files.get('a/d.bin')).toEqual({ mode: 0o644, text: 'streamed content' });
  });

  it('fails the stream when a file to stream is gone', async () => {
    const path = join(dir, 'vanishing.bin');
    writeFileSync(path, 'x');
    const entry = await fileEntry('v', path);
    rmSync(path);
    await expect(untar(packContext([entry]))).rejects.toThrow(/ENOENT/);
  });

  it('lists regular files, sorted, without links and nested node_modules', async () => {
    const root = join(dir, 'pkg');
    mkdirSync(join(root, 'lib', 'node_modules', 'x'), { recursive: true });
    mkdirSync(join(root, 'node_modules'), { recursive: true });
    for (const f of [
      'b.js',
      'a.js',
      'lib/c.d.ts',
      'lib/c.js',
      'lib/node_modules/x/i.js',
      'node_modules/n.js',
    ])
      writeFileSync(join(root, f), f);
    symlinkSync('a.js', join(root, 'link.js'));
    expect(await listFiles(root, () => true)).toEqual(['a.js', 'b.js', 'lib/c.d.ts', 'lib/c.js']);
    expect(await listFiles(root, (f) => !f.endsWith('.d.ts'))).toEqual(['a.js', 'b.js', 'lib/c.js']);
  });

  it('names a missing required file and what makes it', async () => {
    const err = await readRequired(join(dir, 'nope.mjs'), 'the bundle (run `npm run build`)').catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).code).toBe(ErrorCode.NOT_FOUND);
    expect((err as BerthError).message).toBe(
      `the bundle (run \`npm run build\`) is missing: ${join(dir, 'nope.mjs')}`,
    );
  });
});

describe('inspectBaseImage', () => {
  const store = (image: ImageDetails | undefined) =>
    ({
      inspect: async (ref: string) => {
        if (!image) throw new BerthError(ErrorCode.NOT_FOUND, `image ${ref} not found locally`);
        return image;
      },
    }) as Partial<ImageClient> as ImageClient;

  it('gives the details and the Node architecture', async () => {
    const { info, arch } = await inspectBaseImage(
      store(details('sha256:b', { architecture: 'arm64' })),
      'b:1',
    );
    expect(info.id).toBe('sha256:b');
    expect(arch).toBe('arm64');
  });

  it('never pulls a missing base, and rejects a non-Linux one', async () => {
    await expect(inspectBaseImage(store(undefined), 'mine:1')).rejects.toThrow(
      'base image mine:1 not found locally; Berth never pulls images: pull, load or build it first',
    );
    await expect(
      inspectBaseImage(store(details('sha256:w', { os: 'windows' })), 'win:1'),
    ).rejects.toMatchObject({
      code: ErrorCode.VALIDATION_FAILED,
      message: 'base image win:1 is for windows; Berth needs Linux',
    });
  });
});
