import { describe, expect, it } from 'vitest';
import { BerthError } from '../../src/protocol/errors.js';
import { isVolumeSpec, parseVolume } from '../../src/protocol/volumes.js';

describe('parseVolume (the one mount syntax of the configuration and the manager)', () => {
  it('reads binds, named volumes and the volume: prefix', () => {
    expect(parseVolume('/data:/data:ro')).toEqual({
      source: '/data',
      target: '/data',
      readOnly: true,
      kind: 'bind',
    });
    expect(parseVolume('./rel:/w')).toEqual({ source: './rel', target: '/w', readOnly: false, kind: 'bind' });
    expect(parseVolume('cache:/cache')).toEqual({
      source: 'cache',
      target: '/cache',
      readOnly: false,
      kind: 'volume',
    });
    expect(parseVolume('volume:pip:/root/.cache/pip:rw')).toEqual({
      source: 'pip',
      target: '/root/.cache/pip',
      readOnly: false,
      kind: 'volume',
    });
    // Two parts: a volume that happens to be called "volume".
    expect(parseVolume('volume:/data')).toEqual({
      source: 'volume',
      target: '/data',
      readOnly: false,
      kind: 'volume',
    });
  });

  it('refuses what is not host:container[:ro|rw]', () => {
    for (const bad of ['nonsense', '/a:/b:rx', '/a:relative', ':/b', '/a:', '/a:/b:ro:x']) {
      expect(isVolumeSpec(bad), bad).toBe(false);
      expect(() => parseVolume(bad)).toThrow(BerthError);
    }
  });
});
