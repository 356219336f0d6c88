/** The web UI's pure logic (no browser): hash routes, form parsing, formatting, timeline pairing. */
import { describe, expect, it } from 'vitest';
import type { SandboxEvent } from '../../src/protocol/api.js';
import { bytes, duration, millis, relativeTime, untilTime } from '../../web/src/format.js';
import { parseHash, parsePairs, positive } from '../../web/src/parse.js';
import { buildEntries, exitCode, summary } from '../../web/src/timeline-model.js';

let seq = 0;
function ev(kind: SandboxEvent['kind'], payload: unknown, duration_ms: number | null = null): SandboxEvent {
  return {
    seq: ++seq,
    sandbox_id: 's1',
    kind,
    at: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
    payload,
    duration_ms,
  };
}
const run = (command: string) => ({ action: { action: 'run', args: { command } } });
const ran = (command: string, exit: number) => ({
  observation: 'run',
  content: '',
  extras: { command, metadata: { exit_code: exit } },
  message: '',
});

describe('parseHash', () => {
  it('routes the list, a sandbox, and anything else', () => {
    expect(parseHash('')).toEqual({ name: 'list' });
    expect(parseHash('#/')).toEqual({ name: 'list' });
    expect(parseHash('#/sandboxes/abc%2F1')).toEqual({ name: 'sandbox', id: 'abc/1' });
    expect(parseHash('#/sandboxes/abc/')).toEqual({ name: 'sandbox', id: 'abc' });
    expect(parseHash('#/nope')).toEqual({ name: 'unknown', hash: '/nope' });
  });
});

describe('create form parsing', () => {
  it('reads KEY=VALUE lines, keeps = in values, skips blanks and comments', () => {
    expect(parsePairs('A=1\n\n# note\nB = x=y\n', 'environment')).toEqual({ A: '1', B: ' x=y' });
    expect(parsePairs('team=ui', 'labels')).toEqual({ team: 'ui' });
  });
  it('says which line is wrong', () => {
    expect(() => parsePairs('A=1\nnovalue', 'environment')).toThrow(/line 2/);
    expect(() => parsePairs('1A=x', 'environment')).toThrow(/not a valid variable name/);
    expect(parsePairs('my.label=x', 'labels')).toEqual({ 'my.label': 'x' });
  });
  it('reads positive numbers', () => {
    expect(positive('', 'CPUs', false)).toBeUndefined();
    expect(positive('1.5', 'CPUs', false)).toBe(1.5);
    expect(() => positive('1.5', 'Memory', true)).toThrow(/whole number/);
    expect(() => positive('-2', 'Memory', true)).toThrow(/positive/);
  });
});

describe('formatting', () => {
  it('prints durations, sizes and relative times', () => {
    expect(duration(42)).toBe('42s');
    expect(duration(303)).toBe('5m 3s');
    expect(duration(3 * 3600 + 12 * 60)).toBe('3h 12m');
    expect(duration(2 * 86400 + 4 * 3600)).toBe('2d 4h');
    expect(millis(12.4)).toBe('12 ms');
    expect(millis(1500)).toBe('1.50 s');
    expect(millis(null)).toBe('');
    expect(bytes(512)).toBe('512 B');
    expect(bytes(48_000_000)).toBe('45.8 MiB');
    const now = Date.parse('2026-01-01T00:10:00Z');
    expect(relativeTime('2026-01-01T00:00:00Z', now)).toBe('10m ago');
    expect(untilTime('2026-01-01T01:10:00Z', now)).toBe('in 1h');
    expect(relativeTime(null, now)).toBe('—');
  });
});

describe('buildEntries', () => {
  it('pairs each observation with its action, in order', () => {
    const entries = buildEntries([
      ev('lifecycle', { event: 'created', reason: 'requested' }),
      ev('action', run('ls')),
      ev('observation', ran('ls', 0), 12),
      ev('action', { action: { action: 'read', args: { path: '/workspace/a' } } }),
      ev(
        'observation',
        { observation: 'read', content: 'x', extras: { path: '/workspace/a' }, message: '' },
        3,
      ),
    ]);
    expect(entries.map((e) => [e.kind, e.action?.action, e.observation?.observation, e.durationMs])).toEqual([
      ['lifecycle', undefined, undefined, undefined],
      ['action', 'run', 'run', 12],
      ['action', 'read', 'read', 3],
    ]);
    expect(exitCode(entries[1]!.observation)).toBe(0);
    expect(summary(entries[2]!.action)).toBe('/workspace/a');
  });

  it('matches interleaved concurrent actions by type, and leaves a running one open', () => {
    const entries = buildEntries([
      ev('action', run('sleep 5')),
      ev('action', { action: { action: 'read', args: { path: '/f' } } }),
      ev('observation', { observation: 'read', content: '', extras: {}, message: '' }, 2),
    ]);
    expect(entries[0]!.observation).toBeUndefined();
    expect(entries[1]!.observation?.observation).toBe('read');
  });

  it("shows the control plane's failed proxy call as an error observation", () => {
    const entries = buildEntries([
      ev('action', run('make')),
      ev('observation', { error: { code: 'UNAVAILABLE', message: 'runtime server gone' } }, 30),
    ]);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.observation).toMatchObject({
      observation: 'error',
      content: 'UNAVAILABLE: runtime server gone',
    });
  });

  it('accepts the bare OpenHands action shape too, and keeps an orphan observation', () => {
    const entries = buildEntries([
      ev('action', { action: 'run', args: { command: 'pwd' } }),
      ev('observation', ran('pwd', 0), 1),
      ev('observation', ran('ghost', 1), 1),
    ]);
    expect(entries.map((e) => e.kind)).toEqual(['action', 'observation']);
    expect(summary(entries[0]!.action)).toBe('pwd');
  });
});
