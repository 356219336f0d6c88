import { describe, expect, it } from 'vitest';
import { loadDockerConfig } from '../../src/config/docker.js';
import {
  BuildStreamParser,
  describeBuildFailure,
  type ImageProgressEvent,
} from '../../src/docker/build-stream.js';
import { connectEngine, engineMessage, parseDockerHost, takenHostPorts } from '../../src/docker/engine.js';
import { splitTag } from '../../src/docker/images.js';
import { BerthError } from '../../src/protocol/errors.js';

describe('parseDockerHost', () => {
  it('defaults to the system socket', () => {
    expect(parseDockerHost(undefined)).toMatchObject({
      display: 'unix:///var/run/docker.sock',
      options: { socketPath: '/var/run/docker.sock', host: undefined },
    });
  });

  it('reads unix sockets and tcp addresses', () => {
    expect(parseDockerHost('unix:///run/user/1000/docker.sock').options.socketPath).toBe(
      '/run/user/1000/docker.sock',
    );
    expect(parseDockerHost('tcp://127.0.0.1:2375')).toMatchObject({
      display: 'tcp://127.0.0.1:2375',
      options: { host: '127.0.0.1', port: '2375', protocol: 'http', socketPath: undefined },
    });
    expect(parseDockerHost('localhost:2376').options).toMatchObject({ host: 'localhost', port: '2376' });
  });

  it('rejects addresses it cannot use', () => {
    expect(() => parseDockerHost('ssh://user@host')).toThrow(/not supported/);
  });
});

describe('loadDockerConfig', () => {
  it('takes DOCKER_HOST and the cache directory from the environment', () => {
    const config = loadDockerConfig({ DOCKER_HOST: 'tcp://h:1', XDG_CACHE_HOME: '/c' });
    expect(config).toEqual({
      dockerHost: 'tcp://h:1',
      cacheDir: '/c/berth',
      baseImage: 'berth-base:bookworm',
    });
    expect(loadDockerConfig({ BERTH_CACHE_DIR: '/x' }).cacheDir).toBe('/x');
  });
});

describe('an unreachable engine', () => {
  it('fails ping with one UNAVAILABLE error that says how to start Docker', async () => {
    const engine = connectEngine({ dockerHost: 'unix:///nonexistent/berth-test.sock' });
    const err = await engine.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    const e = err as BerthError;
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain('unix:///nonexistent/berth-test.sock');
    expect(e.message).toContain('sudo systemctl start docker');
    expect(e.message).toContain('sudo dockerd &');
    expect(e.message).toContain('DOCKER_HOST');
    // Every other call reports the same thing, not a raw ENOENT.
    const viaImages = await engine.images.exists('x').catch((e2: unknown) => e2);
    expect((viaImages as BerthError).code).toBe('UNAVAILABLE');
  });
});

describe('BuildStreamParser', () => {
  const lines = (...msgs: object[]) => msgs.map((m) => `${JSON.stringify(m)}\r\n`).join('');

  it('reports steps and output, and finds the image ID, across chunk boundaries', () => {
    const events: ImageProgressEvent[] = [];
    const parser = new BuildStreamParser((e) => events.push(e));
    const text = lines(
      { stream: 'Step 1/2 : FROM base\n' },
      { stream: ' ---> abc\n' },
      { stream: 'Step 2/2 : RUN echo hi\n' },
      { stream: 'hi\n' },
      { aux: { ID: 'sha256:1234' } },
      { stream: 'Successfully built 1234\n' },
    );
    for (let i = 0; i < text.length; i += 7) parser.push(Buffer.from(text.slice(i, i + 7)));
    parser.end();
    expect(parser.imageId).toBe('sha256:1234');
    expect(parser.failure).toBeUndefined();
    expect(events.filter((e) => e.type === 'step')).toEqual([
      { type: 'step', step: 1, totalSteps: 2, instruction: 'FROM base' },
      { type: 'step', step: 2, totalSteps: 2, instruction: 'RUN echo hi' },
    ]);
    expect(events).toContainEqual({ type: 'log', line: 'hi' });
  });

  it('explains a failed step with its own output', () => {
    const parser = new BuildStreamParser();
    parser.push(
      lines(
        { stream: 'Step 1/3 : FROM base\n' },
        { stream: 'Step 2/3 : RUN apt-get install nope\n' },
        { stream: ' ---> Running in 0123\n' },
        { stream: 'E: Unable to locate package nope\n' },
        {
          errorDetail: {
            code: 100,
            message: "The command '/bin/sh -c apt-get install nope' returned a non-zero code: 100",
          },
          error: 'x',
        },
      ),
    );
    parser.end();
    expect(parser.failure).toMatchObject({ step: 2, totalSteps: 3, instruction: 'RUN apt-get install nope' });
    const message = describeBuildFailure(parser.failure!);
    expect(message).toContain('step 2/3 (RUN apt-get install nope)');
    expect(message).toContain('returned a non-zero code: 100');
    expect(message).toContain('E: Unable to locate package nope');
    expect(message).not.toContain('Running in');
  });

  it('reads the image ID of an import', () => {
    const parser = new BuildStreamParser();
    parser.push(lines({ status: `sha256:${'a'.repeat(64)}` }));
    parser.end();
    expect(parser.imageId).toBe(`sha256:${'a'.repeat(64)}`);
  });
});

describe('helpers', () => {
  it('splits tags, leaving registry ports alone', () => {
    expect(splitTag('berth-base:bookworm')).toEqual(['berth-base', 'bookworm']);
    expect(splitTag('localhost:5000/img')).toEqual(['localhost:5000/img', 'latest']);
    expect(splitTag('localhost:5000/img:1')).toEqual(['localhost:5000/img', '1']);
  });

  it("keeps the engine's words from a dockerode error", () => {
    expect(
      engineMessage({ json: { message: 'No such image: x' }, message: '(HTTP code 404) no such image - ' }),
    ).toBe('No such image: x');
    expect(engineMessage(new Error('(HTTP code 500) server error - boom'))).toBe('boom');
  });
});

describe('a host port taken by someone else', () => {
  const engine = connectEngine({ dockerHost: 'unix:///nonexistent/berth-test.sock' });
  const allocated =
    'driver failed programming external connectivity on endpoint berth-sandbox-ab12 (4f0e): Bind for 127.0.0.1:31007 failed: port is already allocated';
  const inUse =
    'driver failed programming external connectivity on endpoint berth-sandbox-ab12 (4f0e): failed to bind port 127.0.0.1:31008/tcp: Error starting userland proxy: listen tcp4 127.0.0.1:31008: bind: address already in use';

  it('reads the ports out of both ways the engine says it', () => {
    expect(takenHostPorts(allocated)).toEqual([31007]);
    expect(takenHostPorts(inUse)).toEqual([31008]);
    expect(takenHostPorts('port is already allocated')).toEqual([]);
    expect(takenHostPorts('No such container: berth-sandbox-ab12')).toBeUndefined();
  });

  it('is a retryable 503 naming the port, not an internal error', () => {
    const err = engine.toError(
      { statusCode: 500, json: { message: inUse }, message: inUse },
      'start berth-sandbox-ab12',
    );
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain('host port 31008 is in use by another process or container');
    expect(err.details).toEqual({ ports: [31008] });
    const other = engine.toError({ statusCode: 500, json: { message: 'boom' }, message: 'boom' }, 'start x');
    expect(other.code).toBe('INTERNAL');
  });
});
