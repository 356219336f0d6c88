/**
 * A Python venv with pinned packages from PyPI, for suites that drive Berth with a Python program.
 * Made once per directory and reused while its marker says the same packages went in; when PyPI
 * cannot be reached the answer is why, so the suite can say SKIPPED instead of failing.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pypiUnreachable } from './pypi.js';
import { runCommand } from './run-command.js';

export type Venv = { python: string } | { skipped: string };

const PIP = [
  '-m',
  'pip',
  'install',
  '--disable-pip-version-check',
  '--no-input',
  '--quiet',
  '--timeout',
  '30',
  '--retries',
  '2',
];

/**
 * `pip install <args>` into the venv of `python`: undefined when it worked, the reason when PyPI was
 * unreachable; any other failure (a bad pin, an unsupported Python) throws, so the suite fails.
 */
export async function pipInstall(
  python: string,
  args: string[],
  timeoutMs: number,
  what = args.join(' '),
): Promise<string | undefined> {
  const pip = await runCommand(python, [...PIP, ...args], { timeoutMs });
  if (pip.code === 0 && !pip.timedOut) return undefined;
  const reason = pypiUnreachable(pip, 'pip install');
  if (reason) return reason;
  throw new Error(`pip install ${what} failed:\n${pip.out}`);
}

export async function ensureVenv(o: {
  /** The venv's directory; under .cache/ (gitignored). */
  dir: string;
  /** Pinned requirement specifiers, so a run is repeatable. */
  packages: string[];
  /** @default python3 */
  pythonPath?: string;
  /** The bound on the pip install. */
  timeoutMs: number;
}): Promise<Venv> {
  const python = join(o.dir, 'bin', 'python');
  const marker = join(o.dir, '.installed');
  const wanted = `${o.packages.join('\n')}\n`;
  if (existsSync(python) && existsSync(marker) && readFileSync(marker, 'utf8') === wanted) return { python };
  // A venv left by an install cut short, or for other packages: start again from nothing.
  rmSync(o.dir, { recursive: true, force: true });
  mkdirSync(dirname(o.dir), { recursive: true });
  // No venv module is a broken machine, not a network problem: scripts/setup.sh installs python3-venv.
  const venv = await runCommand(o.pythonPath ?? 'python3', ['-m', 'venv', o.dir], { timeoutMs: 120_000 });
  if (venv.code !== 0) {
    throw new Error(
      `python3 -m venv failed (is python3-venv installed? scripts/setup.sh installs it):\n${venv.out}`,
    );
  }
  try {
    const skipped = await pipInstall(python, o.packages, o.timeoutMs);
    if (skipped) {
      rmSync(o.dir, { recursive: true, force: true });
      return { skipped };
    }
  } catch (err) {
    rmSync(o.dir, { recursive: true, force: true });
    throw err;
  }
  // Written last: its presence means every package is in.
  writeFileSync(marker, wanted);
  return { python };
}
