/**
 * `berth image build-control-plane`: builds the image that runs the control plane itself in a container
 * (docs/running-in-a-container.md). Prints the tag on stdout (JSON with --json), progress on stderr.
 */
import type { Command } from 'commander';
import { loadDockerConfig } from '../config/docker.js';
import { buildControlPlaneImage } from '../docker/control-plane-image.js';
import { connectEngine } from '../docker/engine.js';
import { printBuildResult } from './output.js';

/** Adds the command under `berth image` (made here when registerImageCommands has not run). */
export function registerControlPlaneImageCommand(program: Command): void {
  const image =
    program.commands.find((c) => c.name() === 'image') ??
    program.command('image').description('Build and list sandbox images');
  image
    .command('build-control-plane')
    .description(
      'Build the image that runs the control plane in a container, from this checkout (run `npm run build` first); a cache hit when nothing changed',
    )
    .option('--base <image>', 'glibc base image, present locally (default: berth-base:bookworm)')
    .option('--force', 'rebuild even when an image with the same content exists')
    .option('--verbose', 'show the output of every build step')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { base?: string; force?: boolean; verbose?: boolean; json?: boolean }) => {
      const docker = loadDockerConfig();
      const engine = connectEngine({ dockerHost: docker.dockerHost });
      await engine.ping();
      const t0 = performance.now();
      const line = (message: string) =>
        process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${message}\n`);
      const r = await buildControlPlaneImage({
        engine,
        cacheDir: docker.cacheDir,
        ...(opts.base ? { base: opts.base } : {}),
        force: opts.force ?? false,
        onProgress: (e) => {
          if (e.type === 'phase') line(e.message);
          else if (e.type === 'step') line(`step ${e.step}/${e.totalSteps}: ${e.instruction}`);
          else if (opts.verbose) line(e.line);
        },
      });
      if (!r.cached) line(`${r.tag} built in ${(r.durationMs / 1000).toFixed(1)} s`);
      printBuildResult(r, opts.json);
    });
}
