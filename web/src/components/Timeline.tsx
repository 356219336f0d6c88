/**
 * The sandbox's event timeline, live from its event stream: each action with its observation (exit
 * code, duration, output on demand) and lifecycle events. Reconnects resume after the last seen seq.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { type SandboxEvent, wsUrl } from '../api.js';
import { clockTime, millis } from '../format.js';
import { useLiveSocket } from '../hooks.js';
import { buildEntries, exitCode, summary, type TimelineEntry } from '../timeline-model.js';
import { StreamPill } from './StreamPill.js';

/** Events kept in memory; older ones scroll off (the full log stays on the server). */
export const MAX_TIMELINE_EVENTS = 2000;

function Outcome({ entry }: { entry: TimelineEntry }) {
  const o = entry.observation;
  if (!o) {
    return (
      <span className="outcome running" data-testid="timeline-running">
        running…
      </span>
    );
  }
  const code = exitCode(o);
  const failed = o.observation === 'error' || (code !== null && code !== 0) || o.success === false;
  return (
    <span className="outcome">
      {code !== null ? (
        <span
          className={`badge ${code === 0 ? 'ok' : 'bad'}`}
          data-testid="timeline-exit"
          data-exit-code={code}
        >
          exit {code}
        </span>
      ) : (
        <span className={`badge ${failed ? 'bad' : 'ok'}`} data-testid="timeline-result">
          {o.observation === 'error' ? 'error' : 'ok'}
        </span>
      )}
      {entry.durationMs !== null && entry.durationMs !== undefined && (
        <span className="muted small" data-testid="timeline-duration">
          {millis(entry.durationMs)}
        </span>
      )}
    </span>
  );
}

function Item({ entry }: { entry: TimelineEntry }) {
  const [open, setOpen] = useState(false);
  if (entry.kind === 'lifecycle') {
    const l = entry.lifecycle ?? {};
    return (
      <li className="tl-item lifecycle" data-testid="timeline-item" data-kind="lifecycle">
        <span className="tl-time mono">{clockTime(entry.at)}</span>
        <span className="tl-life">
          <strong>{l.event ?? 'lifecycle'}</strong>
          {l.reason ? <span className="muted"> · {l.reason}</span> : null}
        </span>
      </li>
    );
  }
  const type = entry.action?.action ?? entry.observation?.observation ?? '?';
  const text = entry.kind === 'action' ? summary(entry.action) : (entry.observation?.message ?? '');
  const body = entry.observation?.content ?? '';
  const hasBody = body.length > 0 || (entry.observation?.message ?? '').length > 0;
  return (
    <li
      className={`tl-item${open ? ' open' : ''}`}
      data-testid="timeline-item"
      data-kind={entry.kind}
      data-action={type}
    >
      <button
        type="button"
        className="tl-main"
        onClick={() => setOpen(!open)}
        aria-expanded={open}
        disabled={!hasBody}
      >
        <span className="tl-time mono">{clockTime(entry.at)}</span>
        <span className={`tl-type type-${type}`}>{type}</span>
        <span className="tl-summary mono" title={text} data-testid="timeline-summary">
          {text || <span className="muted">(no arguments)</span>}
        </span>
        <Outcome entry={entry} />
      </button>
      {open && (
        <pre className="tl-body" data-testid="timeline-body">
          {body || entry.observation?.message}
        </pre>
      )}
    </li>
  );
}

export function Timeline({ sandboxId }: { sandboxId: string }) {
  const [events, setEvents] = useState<SandboxEvent[]>([]);
  const lastSeq = useRef(0);
  const listRef = useRef<HTMLOListElement>(null);
  const stick = useRef(true);

  const [streamError, setStreamError] = useState<string | null>(null);
  const onMessage = useCallback((data: unknown) => {
    const frame = data as { type?: string; code?: string; message?: string };
    if (frame?.type === 'error') {
      setStreamError(`${frame.message ?? 'event stream error'} (${frame.code ?? 'ERROR'})`);
      return;
    }
    const e = data as SandboxEvent;
    if (!e || typeof e.seq !== 'number' || e.seq <= lastSeq.current) return;
    lastSeq.current = e.seq;
    setStreamError(null);
    setEvents((prev) => {
      const next = [...prev, e];
      return next.length > MAX_TIMELINE_EVENTS ? next.slice(next.length - MAX_TIMELINE_EVENTS) : next;
    });
  }, []);

  const stream = useLiveSocket({
    url: () =>
      wsUrl(`/api/sandboxes/${encodeURIComponent(sandboxId)}/events/stream`, { after: lastSeq.current }),
    onMessage,
    enabled: true,
  });

  const entries = useMemo(() => buildEntries(events), [events]);

  // Follow new entries while the list is scrolled to its end.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs after each new entry
  useEffect(() => {
    const el = listRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [entries.length]);

  return (
    <div className="timeline" data-testid="timeline">
      <div className="panel-head">
        <span className="panel-title">Events</span>
        <span className="muted small" data-testid="timeline-count">
          {entries.length}
        </span>
        <div className="spacer" />
        <StreamPill status={stream} label="event stream" />
      </div>
      {streamError && (
        <div className="error inline-error" role="alert" data-testid="timeline-error">
          {streamError}
        </div>
      )}
      {entries.length === 0 ? (
        <div className="tree-note muted">
          No events yet. Actions this sandbox runs appear here as they happen.
        </div>
      ) : (
        <ol
          className="tl-list"
          ref={listRef}
          onScroll={(e) => {
            const el = e.currentTarget;
            stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
          }}
        >
          {entries.map((entry) => (
            <Item key={entry.key} entry={entry} />
          ))}
        </ol>
      )}
    </div>
  );
}
