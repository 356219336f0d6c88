/**
 * `berth image bootstrap|build|ls` and `berth gc`: thin wrappers over src/docker. Progress goes to stderr
 * as one line per step with the elapsed time (and a spinner on a terminal); results go to stdout, as JSON
 * with --json.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { instanceOwner } from '../api/start.js';
import { loadControlPlaneConfig } from '../config/control-plane.js';
import { loadDockerConfig } from '../config/docker.js';
import { bootstrapBaseImage } from '../docker/base-image.js';
import type { ImageProgressEvent } from '../docker/build-stream.js';
import { connectEngine, type DockerodeEngine } from '../docker/engine.js';
import { collectGc, GC_IMAGE_MIN_AGE_MS, type GcOwnership, type GcPlan, planGc } from '../docker/gc.js';
import { IdmappedMounts, idmapDir } from '../docker/idmapped-mounts.js';
import { RUNTIME_IMAGE_LABELS, RuntimeImageBuilder } from '../docker/image-builder.js';
import { BerthError, ErrorCode } from '../protocol/errors.js';
import { Store } from '../store/store.js';
import { age, printBuildResult, printJson, printTable, spinner } from './output.js';

/** The control plane's database file inside its data directory. */
const STORE_FILE = 'berth.db';
/** Longest progress line shown next to the spinner, so it stays on one terminal line. */
const SPINNER_TEXT_MAX = 70;

async function engine(): Promise<DockerodeEngine> {
  const e = connectEngine({ dockerHost: loadDockerConfig().dockerHost });
  await e.ping();
  return e;
}

/**
 * Progress on stderr: every step as a line prefixed with the elapsed time; on a terminal a spinner also
 * shows the latest output line. Engine output lines (RUN steps) are printed only when `verbose`.
 */
function progress(options: { verbose: boolean; logLinesAreSteps?: boolean }) {
  const t0 = performance.now();
  const tty = process.stderr.isTTY === true;
  const spin = tty ? spinner('starting', true) : undefined;
  let stopped = false;
  const line = (message: string) => {
    const stamp = `[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s]`;
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}${stamp} ${message}\n`);
    if (!stopped) spin?.update(clip(message));
  };
  return {
    line,
    onProgress: (e: ImageProgressEvent) => {
      if (e.type === 'phase') line(e.message);
      else if (e.type === 'step') line(`step ${e.step}/${e.totalSteps}: ${e.instruction}`);
      else if (options.verbose || options.logLinesAreSteps) line(e.line);
      else spin?.update(clip(e.line));
    },
    stop: () => {
      if (!stopped) spin?.stop();
      stopped = true;
    },
  };
}

function clip(text: string): string {
  return text.length > SPINNER_TEXT_MAX ? `${text.slice(0, SPINNER_TEXT_MAX - 1)}…` : text;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('Build and list sandbox images');

  image
    .command('bootstrap')
    .description(
      'Create the offline Debian base image from the host apt sources (mmdebstrap + docker import)',
    )
    .option('--force', 'rebuild even when the image exists')
    .option(
      '--tag <tag>',
      'tag of the base image (default: $SANDBOX_BASE_CONTAINER_IMAGE or berth-base:bookworm)',
    )
    .option('--json', 'print the result as JSON')
    .action(async (opts: { force?: boolean; tag?: string; json?: boolean }) => {
      const docker = loadDockerConfig();
      const e = await engine();
      const p = progress({ verbose: true, logLinesAreSteps: true });
      try {
        const r = await bootstrapBaseImage({
          engine: e,
          tag: opts.tag ?? docker.baseImage,
          force: opts.force ?? false,
          onProgress: p.onProgress,
        });
        if (!r.cached) p.line(`${r.tag} built in ${seconds(r.durationMs)}`);
        p.stop();
        if (opts.json) {
          printJson({
            tag: r.tag,
            image_id: r.imageId,
            cached: r.cached,
            duration_ms: Math.round(r.durationMs),
          });
        } else process.stdout.write(`${r.tag}\n`);
      } finally {
        p.stop();
      }
    });

  image
    .command('build')
    .description('Build the runtime image (the base plus the Berth layer); a cache hit when nothing changed')
    .option(
      '--base <image>',
      'base image, present locally (default: $SANDBOX_BASE_CONTAINER_IMAGE or berth-base:bookworm)',
    )
    .option('--force', 'rebuild even when an image with the same content exists')
    .option(
      '--extra-deps <snippet>',
      'shell snippet run as root on the base first, e.g. "apt-get install -y jq"',
    )
    .option('--verbose', 'show the output of every build step')
    .option('--json', 'print the result as JSON')
    .action(
      async (opts: {
        base?: string;
        force?: boolean;
        extraDeps?: string;
        verbose?: boolean;
        json?: boolean;
      }) => {
        const docker = loadDockerConfig();
        const e = await engine();
        const p = progress({ verbose: opts.verbose ?? false });
        try {
          const builder = new RuntimeImageBuilder({
            engine: e,
            cacheDir: docker.cacheDir,
            defaultBase: docker.baseImage,
          });
          const r = await builder.build({
            ...(opts.base ? { base: opts.base } : {}),
            force: opts.force ?? false,
            ...(opts.extraDeps ? { extraDeps: opts.extraDeps } : {}),
            onProgress: p.onProgress,
          });
          if (!r.cached) p.line(`${r.tag} built in ${seconds(r.durationMs)}`);
          p.stop();
          printBuildResult(r, opts.json);
        } finally {
          p.stop();
        }
      },
    );

  image
    .command('ls')
    .description('List the base and runtime images Berth made')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const e = await engine();
      const list = await e.images.list({ labels: { [RUNTIME_IMAGE_LABELS.managed]: 'true' } });
      const kinds: Record<string, 'base' | 'runtime'> = { 'base-image': 'base', 'runtime-image': 'runtime' };
      const rows = list
        .filter((i) => kinds[i.labels[RUNTIME_IMAGE_LABELS.kind] ?? ''])
        .sort((a, b) => b.createdMs - a.createdMs)
        .map((i) => ({
          tag: i.tags[0] ?? null,
          tags: i.tags,
          id: i.id,
          kind: kinds[i.labels[RUNTIME_IMAGE_LABELS.kind] ?? '']!,
          base: i.labels[RUNTIME_IMAGE_LABELS.base] ?? null,
          size_bytes: i.sizeBytes,
          created_at: new Date(i.createdMs).toISOString(),
        }));
      if (opts.json) {
        printJson(rows);
        return;
      }
      if (rows.length === 0) {
        process.stderr.write('No Berth images yet: run `berth image bootstrap`, then `berth image build`.\n');
        return;
      }
      printTable(
        rows.map((r) => [
          r.tag ?? shortId(r.id),
          r.kind,
          r.base ?? '-',
          formatBytes(r.size_bytes),
          age(r.created_at),
          shortId(r.id),
        ]),
        ['IMAGE', 'KIND', 'BASE', 'SIZE', 'AGE', 'ID'],
      );
    });
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** What the control plane's records own, read from its database (nothing when there is none yet). */
function readOwnership(dataDir: string, keepImage: string | null): GcOwnership {
  const file = join(dataDir, STORE_FILE);
  const sandboxIds = new Set<string>();
  const containerIds = new Set<string>();
  if (existsSync(file)) {
    const store = Store.open(file);
    try {
      // The reaper's rule: an exited sandbox (resumable) and one deleted with keep_alive keep theirs.
      for (const s of store.sandboxes.owningContainers()) {
        sandboxIds.add(s.id);
        if (s.container_id) containerIds.add(s.container_id);
      }
    } finally {
      store.close();
    }
  }
  return {
    sandboxIds,
    containerIds,
    instance: instanceOwner(dataDir),
    keepImages: new Set(keepImage ? [keepImage] : []),
  };
}

function gcJson(plan: GcPlan & { failures?: unknown[] }, dryRun: boolean) {
  return {
    dry_run: dryRun,
    containers: plan.containers.map((c) => ({
      id: c.id,
      name: c.name,
      sandbox_id: c.sandboxId,
      state: c.state,
      image: c.image,
    })),
    images: plan.images.map((i) => ({
      id: i.id,
      tags: i.tags,
      base: i.base,
      size_bytes: i.sizeBytes,
      created_at: new Date(i.createdMs).toISOString(),
    })),
    other_instances: plan.otherInstances,
    failures: plan.failures ?? [],
  };
}

export function registerGcCommand(program: Command): void {
  program
    .command('gc')
    .description(
      'Remove sandbox containers no live record owns, and runtime images other than the newest per base that no container uses',
    )
    .option('--dry-run', 'only list what would be removed')
    .option('--data-dir <dir>', 'the control plane data directory whose records own sandboxes')
    .option(
      '--min-age <seconds>',
      `only remove runtime images at least this old (default ${GC_IMAGE_MIN_AGE_MS / 1000}: one may be about to be used)`,
    )
    .option('--json', 'print JSON')
    .action(async (opts: { dryRun?: boolean; dataDir?: string; minAge?: string; json?: boolean }) => {
      const minAge = opts.minAge === undefined ? undefined : Number(opts.minAge);
      if (minAge !== undefined && !(Number.isFinite(minAge) && minAge >= 0)) {
        throw new BerthError(
          ErrorCode.VALIDATION_FAILED,
          `--min-age ${opts.minAge}: expected a number of seconds`,
        );
      }
      const config = loadControlPlaneConfig({ flags: { data_dir: opts.dataDir } });
      const ownership = readOwnership(config.data_dir, config.sandbox.runtime_container_image);
      if (minAge !== undefined) ownership.imageMinAgeMs = minAge * 1000;
      const e = await engine();
      const plan = await planGc(e, ownership);
      const dryRun = opts.dryRun ?? false;
      const result = dryRun ? { ...plan, failures: [] } : await collectGc(e, plan);
      // Idmapped workspace views of sandboxes no live record owns (their containers are gone now).
      const views = dryRun
        ? []
        : await new IdmappedMounts({ dir: idmapDir(config.data_dir) })
            .sweep(ownership.sandboxIds)
            .catch((err: Error) => {
              process.stderr.write(`berth: could not remove idmapped workspace views: ${err.message}\n`);
              process.exitCode = 1;
              return [] as string[];
            });
      if (opts.json) printJson({ ...gcJson(result, dryRun), workspace_views: views });
      else {
        const rows = [
          ...result.containers.map((c) => [
            'container',
            c.name || shortId(c.id),
            c.sandboxId ?? '-',
            c.state,
          ]),
          ...result.images.map((i) => [
            'image',
            i.tags[0] ?? shortId(i.id),
            i.base,
            formatBytes(i.sizeBytes),
          ]),
        ];
        if (rows.length) {
          process.stdout.write(`${dryRun ? 'Would remove' : 'Removed'}:\n`);
          printTable(rows, ['KIND', 'NAME', 'SANDBOX / BASE', 'STATE / SIZE']);
        } else if (views.length === 0) process.stdout.write('Nothing to remove.\n');
        if (views.length) {
          process.stdout.write(`Removed the idmapped workspace views of ${views.length} gone sandbox(es).\n`);
        }
        if (result.otherInstances) {
          process.stdout.write(
            `Left ${result.otherInstances} sandbox container(s) of other Berth instances (other data directories).\n`,
          );
        }
      }
      for (const f of result.failures)
        process.stderr.write(`berth: could not remove ${f.kind} ${shortId(f.id)}: ${f.message}\n`);
      if (result.failures.length) process.exitCode = 1;
    });
}
