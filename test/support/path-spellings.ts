/** Attack corpus for key checks: spellings of one request path. */
const pct = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;

/** Ways of spelling a path that a naive prefix check on the raw URL would not recognise. */
export function spellings(path: string): string[] {
  const segs = path.split('/').slice(1); // ['api', 'sandboxes', ...]
  const head = segs[0] ?? '';
  const rest = segs.slice(1).join('/');
  const tail = rest ? `/${rest}` : '';
  const out = [
    path,
    `/${pct(head[0] ?? '')}${head.slice(1)}${tail}`, // the issue's /%61pi/...
    `/${[...head].map(pct).join('')}${tail}`,
    `/${[...head].map(pct).join('').toLowerCase()}${tail}`,
    `/${pct((head[0] ?? '').toUpperCase())}${head.slice(1).toUpperCase()}${tail}`,
    `/${head.toUpperCase()}${tail}`,
    `/${head.charAt(0).toUpperCase()}${head.slice(1)}${tail.toUpperCase()}`,
    `/${head.replace(/[a-z](?=[^a-z]*$)/, (c) => pct(c))}${tail}`,
    `/${pct('%')}${(head.charCodeAt(0) || 0).toString(16)}${head.slice(1)}${tail}`, // double encoding
    `/${head}${pct('/')}${rest}`,
    `/${head}${pct('/').toLowerCase()}${rest}`,
    `//${head}${tail}`,
    `/${head}//${rest}`,
    `///${head}${tail}`,
    `${path}/`,
    `${path}//`,
    `/./${head}${tail}`,
    `/${head}/.${tail}`,
    `/x/../${head}${tail}`,
    `/${head}/x/..${tail}`,
    `/${pct('.')}/${head}${tail}`,
    `/${head}/${pct('.')}${pct('.')}/${head}${tail}`,
    `/.${pct('.')}/${head}${tail}`,
    `/${head};x=1${tail}`,
    `${path};x=1`,
    `${path};`,
    `/${head}${tail};jsessionid=0`,
    `${path}?x=1`,
    `${path}?token=`,
    `${path}?token=wrong`,
    `${path}?%74oken=wrong`,
    `${path}#fragment`,
    `${path}${pct(' ')}`,
    `${path}${pct('\0')}`,
    `${path}${pct('/')}`,
    `${path}.json`,
    `http://localhost${path}`,
    `/${head}\\${rest}`,
  ];
  return [...new Set(out)];
}
