/** Pure parsing for the UI (no React, no DOM): hash routes and the create form's fields. */

export type Route = { name: 'list' } | { name: 'sandbox'; id: string } | { name: 'unknown'; hash: string };

export function parseHash(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/' || path === '/sandboxes' || path === '/sandboxes/') return { name: 'list' };
  const m = /^\/sandboxes\/([^/?]+)\/?$/.exec(path);
  if (m?.[1]) return { name: 'sandbox', id: decodeURIComponent(m[1]) };
  return { name: 'unknown', hash: path };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses KEY=VALUE lines; blank lines and # comments are skipped. */
export function parsePairs(text: string, what: 'environment' | 'labels'): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${what}, line ${i + 1}: expected KEY=VALUE, got "${line}"`);
    const key = line.slice(0, eq).trim();
    if (what === 'environment' && !ENV_NAME.test(key)) {
      throw new Error(`environment, line ${i + 1}: "${key}" is not a valid variable name`);
    }
    out[key] = line.slice(eq + 1);
  });
  return out;
}

export function positive(text: string, what: string, integer: boolean): number | undefined {
  const t = text.trim();
  if (!t) return undefined;
  const n = Number(t);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${what} must be a positive ${integer ? 'whole number' : 'number'}`);
  }
  return n;
}
