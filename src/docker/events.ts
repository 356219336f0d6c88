/**
 * The Docker engine's event stream, followed for as long as the owner wants it: container events
 * with given labels, parsed one JSON object per line, and a new stream (after a short, growing pause)
 * whenever the engine closes it, restarts, or cannot be reached. Only the changes that tell Berth a
 * sandbox's container changed state are passed on.
 */
import type Dockerode from 'dockerode';

/** Container actions that change what state a sandbox is in. */
export const CONTAINER_STATE_ACTIONS = ['pause', 'unpause', 'die', 'oom', 'destroy', 'start'] as const;
export type ContainerStateAction = (typeof CONTAINER_STATE_ACTIONS)[number];

export interface ContainerEvent {
  action: ContainerStateAction;
  containerId: string;
  /** The container's labels (Docker sends them as the actor's attributes). */
  labels: Record<string, string>;
  /** For `die`: the exit code. */
  exitCode?: number;
  at: Date;
}

/** Pause before following again after the stream broke: doubles up to the maximum. */
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5_000;

export interface EventSubscription {
  close(): void;
}

/**
 * `onFollowing` is called each time a stream is (re)established: events from while there was none
 * are lost (the engine may even have restarted), so the owner re-reads the states it cares about.
 */
export function followContainerEvents(
  docker: Dockerode,
  labels: Record<string, string>,
  onEvent: (e: ContainerEvent) => void,
  onError: (err: unknown) => void = () => undefined,
  onFollowing: (again: boolean) => void = () => undefined,
): EventSubscription {
  let connections = 0;
  let closed = false;
  let stream: NodeJS.ReadableStream | undefined;
  let timer: NodeJS.Timeout | undefined;
  let backoff = RECONNECT_MIN_MS;

  const again = () => {
    stream = undefined;
    if (closed) return;
    timer = setTimeout(connect, backoff);
    timer.unref();
    backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
  };

  const connect = () => {
    if (closed) return;
    const filters = {
      type: ['container' as const],
      event: [...CONTAINER_STATE_ACTIONS],
      label: Object.entries(labels).map(([k, v]) => `${k}=${v}`),
    };
    docker.getEvents({ filters }, (err, s) => {
      if (err || !s) {
        onError(err);
        again();
        return;
      }
      if (closed) {
        (s as unknown as { destroy?: () => void }).destroy?.();
        return;
      }
      stream = s;
      backoff = RECONNECT_MIN_MS;
      onFollowing(connections++ > 0);
      let buffered = '';
      s.setEncoding?.('utf8');
      s.on('data', (chunk: string | Buffer) => {
        buffered += chunk.toString();
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf('\n');
          if (line) deliver(line);
        }
      });
      s.on('error', (e) => onError(e));
      s.on('end', again);
      s.on('close', () => {
        if (stream === s) again();
      });
    });
  };

  const deliver = (line: string) => {
    let raw: {
      Action?: string;
      id?: string;
      time?: number;
      timeNano?: number;
      Actor?: { ID?: string; Attributes?: Record<string, string> };
    };
    try {
      raw = JSON.parse(line);
    } catch {
      return;
    }
    // Docker sends e.g. "exec_start: bash" for some actions; only the verb matters here.
    const action = (raw.Action ?? '').split(':', 1)[0] as ContainerStateAction;
    if (!CONTAINER_STATE_ACTIONS.includes(action)) return;
    const attributes = raw.Actor?.Attributes ?? {};
    const exit = attributes.exitCode;
    onEvent({
      action,
      containerId: raw.Actor?.ID ?? raw.id ?? '',
      labels: attributes,
      ...(exit !== undefined ? { exitCode: Number(exit) } : {}),
      at: new Date(raw.timeNano ? raw.timeNano / 1e6 : (raw.time ?? Date.now() / 1000) * 1000),
    });
  };

  connect();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const s = stream as unknown as { destroy?: () => void } | undefined;
      stream = undefined;
      s?.destroy?.();
    },
  };
}
