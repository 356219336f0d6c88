/**
 * The sandbox's environment: what every process the table starts gets, the server's own environment
 * plus the variables set on the sandbox (the reference's add_env_vars). Set variables are recorded in
 * the user's ~/.bashrc, as the reference does, so shells started after a stop and start have them, and
 * in a file of their own beside it, so processes that read no .bashrc (one-off shells, execs) have
 * them too.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, ErrorCode } from '../../../protocol/errors.js';
import { ENV_NAME } from '../../../protocol/limits.js';

/** The variables set on the sandbox, as JSON, in the user's home (read again at start). */
const SAVED_ENV_FILE = '.berth-env.json';

/** The value quoted for bash: single quotes, with each ' written as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * The value quoted for bash on one line (ANSI-C quoting, $'...'): a newline in a value cannot split its
 * .bashrc line, so replacing the line later replaces all of it.
 */
export function oneLineQuote(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '\\' || ch === "'") out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `$'${out}'`;
}

export function validateVariables(vars: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) {
    if (!ENV_NAME.test(k))
      throw new BerthError(ErrorCode.VALIDATION_FAILED, `Invalid environment variable name "${k}"`);
    if (typeof v !== 'string')
      throw new BerthError(ErrorCode.VALIDATION_FAILED, `Environment variable ${k} must be a string`);
    out[k] = v;
  }
  return out;
}

export interface SandboxEnvironmentOptions {
  /** The server's own environment. @default process.env */
  base?: NodeJS.ProcessEnv;
  /** Where set variables are recorded (.bashrc and the saved file); none: kept in memory only. */
  home?: string;
}

export class SandboxEnvironment {
  private readonly base: Record<string, string> = {};
  private readonly set_: Record<string, string> = {};
  private readonly home: string | undefined;

  constructor(options: SandboxEnvironmentOptions = {}) {
    for (const [k, v] of Object.entries(options.base ?? process.env)) {
      // Exported bash functions ("BASH_FUNC_x%%" = "() { ...") are the shell's, not a child's business.
      if (v !== undefined && !k.startsWith('BASH_FUNC_')) this.base[k] = v;
    }
    this.home = options.home;
    if (this.home) {
      try {
        Object.assign(
          this.set_,
          validateVariables(JSON.parse(readFileSync(join(this.home, SAVED_ENV_FILE), 'utf8'))),
        );
      } catch {
        // none saved yet (or unreadable: the .bashrc lines still hold them for shells)
      }
    }
  }

  /** The variables set on the sandbox so far. */
  get variables(): Readonly<Record<string, string>> {
    return this.set_;
  }

  /** The environment for one process: the sandbox's, with the process's own over it. */
  forProcess(
    overrides: Record<string, string | null> = {},
    inherit?: readonly string[],
  ): Record<string, string> {
    const all = { ...this.base, ...this.set_ };
    const env: Record<string, string> = {};
    if (inherit) {
      // Exported bash functions' values start with "()"; a process given only a few variables gets none.
      for (const k of inherit) if (all[k] !== undefined && !all[k].startsWith('()')) env[k] = all[k];
    } else Object.assign(env, all);
    for (const [k, v] of Object.entries(overrides)) {
      if (v === null) delete env[k];
      else env[k] = v;
    }
    return env;
  }

  /**
   * Sets variables for every process started from now on and records them (see the file comment).
   * The caller exports them into shells already running. A changed value replaces the old .bashrc
   * line (the reference appends a second one).
   */
  set(vars: Record<string, string>): void {
    Object.assign(this.set_, vars);
    if (!this.home) return;
    writeFileSync(join(this.home, SAVED_ENV_FILE), `${JSON.stringify(this.set_)}\n`, { mode: 0o600 });
    const rc = join(this.home, '.bashrc');
    let lines: string[];
    try {
      lines = readFileSync(rc, 'utf8').split('\n');
    } catch {
      lines = [];
    }
    if (lines.at(-1) === '') lines.pop();
    const names = new Set(Object.keys(vars));
    const kept = lines.filter((l) => !names.has(/^export ([A-Za-z_][A-Za-z0-9_]*)=/.exec(l)?.[1] ?? ''));
    for (const [k, v] of Object.entries(vars)) kept.push(`export ${k}=${oneLineQuote(v)}`);
    // Whole or not at all: a crash mid-write must not leave the user's .bashrc cut short.
    const temp = `${rc}.berth-${process.pid}`;
    writeFileSync(temp, `${kept.join('\n')}\n`);
    renameSync(temp, rc);
  }

  /** The bash commands that export `vars` into a running shell. */
  static exportCommand(vars: Record<string, string>): string {
    return Object.entries(vars)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
      .join('; ');
  }
}
