/**
 * The body of POST /update_mcp_server: the reference's list of stdio MCP servers
 * (openhands.core.config.mcp_config.MCPStdioServerConfig, dumped as JSON by the app):
 *   [{ "name": "fetch", "command": "uvx", "args": ["mcp-server-fetch"], "env": {} }, ...]
 * Checked as the reference's validators do (a name of letters, digits, `-` and `_`; a command that is
 * one executable, no spaces), and bounded, so a bad list is a 400 with VALIDATION_FAILED and never
 * reaches spawn(). Unknown fields are ignored, as pydantic does. As there, `args` may also be one
 * string split like a shell line (shlex) and `env` a string "KEY=VALUE,KEY2=VALUE2".
 */
import * as z from 'zod';
import { BerthError, ErrorCode } from '../../protocol/errors.js';

export const MAX_MCP_SERVERS = 32;
const MAX_ARGS = 256;
const MAX_ENV = 256;
const MAX_STRING = 8192;

/** spawn() refuses a NUL in a command, an argument or the environment; say so before it does. */
const text = z
  .string()
  .max(MAX_STRING)
  .refine((s) => !s.includes('\0'), 'must not contain a NUL character');

export const StdioServerSchema = z.object({
  name: text
    .transform((s) => s.trim())
    .refine((s) => s.length > 0, 'Server name cannot be empty')
    .refine(
      (s) => /^[A-Za-z0-9_-]+$/.test(s),
      'Server name can only contain letters, numbers, hyphens, and underscores',
    ),
  command: text
    .transform((s) => s.trim())
    .refine((s) => s.length > 0, 'Command cannot be empty')
    .refine(
      (s) => !/\s/.test(s),
      'Command should be a single executable without spaces (use the args field for parameters)',
    ),
  args: z
    .preprocess(
      (v, ctx) => (typeof v === 'string' ? orIssue(shellSplit(v), ctx) : v),
      z.array(text).max(MAX_ARGS).nullish(),
    )
    .transform((a) => a ?? []),
  env: z
    .preprocess(
      (v, ctx) => (typeof v === 'string' ? orIssue(parseEnvString(v), ctx) : v),
      z
        .record(
          text.refine(
            (k) => k.length > 0 && !k.includes('='),
            'an environment variable name must be non-empty and have no "="',
          ),
          text,
        )
        .nullish(),
    )
    .transform((e) => e ?? {})
    .refine((e) => Object.keys(e).length <= MAX_ENV, `at most ${MAX_ENV} environment variables`),
});

export type StdioServerConfig = z.infer<typeof StdioServerSchema>;

/**
 * The servers of a request body, or a VALIDATION_FAILED error naming what is wrong. As in the
 * reference, a later entry with the same name replaces an earlier one.
 */
export function parseServerList(body: unknown): StdioServerConfig[] {
  if (!Array.isArray(body)) {
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      'Request must be a list of MCP tools to sync (a JSON array of {name, command, args, env})',
    );
  }
  const parsed = z.array(StdioServerSchema).max(MAX_MCP_SERVERS).safeParse(body);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    const first = issues[0];
    throw new BerthError(
      ErrorCode.VALIDATION_FAILED,
      `Invalid MCP server list: ${first ? `${first.path || '(body)'}: ${first.message}` : 'invalid'}`,
      { issues },
    );
  }
  const byName = new Map<string, StdioServerConfig>();
  for (const server of parsed.data) {
    byName.delete(server.name);
    byName.set(server.name, server);
  }
  return [...byName.values()];
}

/** Whether two configurations start the same process (so a running child can be kept). */
export function sameServer(a: StdioServerConfig, b: StdioServerConfig): boolean {
  return (
    JSON.stringify([a.name, a.command, a.args, sortedEntries(a.env)]) ===
    JSON.stringify([b.name, b.command, b.args, sortedEntries(b.env)])
  );
}

function sortedEntries(env: Record<string, string>): [string, string][] {
  return Object.entries(env).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

/**
 * Python's shlex.split (POSIX mode, no comments): words split on whitespace; quotes group, a
 * backslash escapes the next character outside quotes and `"` or `\\` inside double quotes. Returns
 * an error message for an unclosed quote or a trailing backslash, which the schema then refuses.
 */
export function shellSplit(line: string): string[] | string {
  const words: string[] = [];
  let word = '';
  /** Whether a word has begun (an empty '' is a word). */
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line.charAt(i);
    const next = line.charAt(i + 1);
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && (next === '"' || next === '\\')) {
        word += next;
        i++;
      } else word += ch;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      inWord = true;
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === '\\') {
        if (i + 1 >= line.length) return 'Invalid argument format: No escaped character';
        word += next;
        i++;
      } else word += ch;
    }
  }
  if (quote) return 'Invalid argument format: No closing quotation';
  if (inWord) words.push(word);
  return words;
}

/** A parsed value, or (for an error message) an issue on the field and zod's NEVER. */
function orIssue<T>(
  parsed: T | string,
  ctx: { addIssue(issue: { code: 'custom'; message: string }): void },
): T {
  if (typeof parsed !== 'string') return parsed;
  ctx.addIssue({ code: 'custom', message: parsed });
  return z.NEVER;
}

/** The reference's env string form, "KEY=VALUE,KEY2=VALUE2"; an error message when malformed. */
function parseEnvString(v: string): Record<string, string> | string {
  const env: Record<string, string> = {};
  for (const raw of v.split(',')) {
    const pair = raw.trim();
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq < 0) return `Environment variable '${pair}' must be in KEY=VALUE format`;
    const key = pair.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `Invalid environment variable name '${key}'`;
    env[key] = pair.slice(eq + 1);
  }
  return env;
}
