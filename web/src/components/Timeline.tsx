/**
 * The sandbox's event timeline, live from its event stream: each action with its observation (exit
 * code, duration, output on demand) and lifecycle events. Reconnects resume after the last seen seq.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { type SandboxEvent, wsUrl } from '../api.js';
import { clockTime, millis } from '../format.js';
import { useLiveSocket } from '../hooks.js';
import { StreamPill } from './StreamPill.js';

/** Events kept in memory; older ones scroll off (the full log stays on the server). */
export const MAX_TIMELINE_EVENTS = 2000;

interface ActionPayload {
  action?: string;
  args?: Record<string, unknown>;
  timeout?: number | null;
  id?: number | string;
}
interface ObservationPayload {
  observation?: string;
  content?: string;
  message?: string;
  success?: boolean;
  cause?: number | string;
  extras?: { metadata?: { exit_code?: number }; path?: string; command?: string; [k: string]: unknown };
}

export interface TimelineEntry {
  key: string;
  seq: number;
  at: string;
  kind: 'action' | 'lifecycle' | 'observation';
  action?: ActionPayload;
  observation?: ObservationPayload;
  observedAt?: string;
  durationMs?: number | null;
  lifecycle?: { event?: string; reason?: string };
}

/** Some servers wrap the OpenHands JSON as {action: {...}}; unwrap either shape. */
function asAction(payload: unknown): ActionPayload {
  const p = (payload ?? {}) as Record<string, unknown>;
  if (p.action && typeof p.action === 'object') return p.action as ActionPayload;
  return p as ActionPayload;
}
function asObservation(payload: unknown): ObservationPayload {
  const p = (payload ?? {}) as Record<string, unknown>;
  // The control plane records a failed proxy call as {error: {code, message}}.
  const err = p.error as { code?: string; message?: string } | undefined;
  if (err && typeof err === 'object' && !('observation' in p)) {
    const text = `${err.code ?? 'ERROR'}: ${err.message ?? ''}`;
    return { observation: 'error', content: text, message: text, success: false };
  }
  if (p.observation && typeof p.observation === 'object') return p.observation as ObservationPayload;
  return p as ObservationPayload;
}

/**
 * Pairs each observation with its action: by `cause` when the payload names one, else with the latest
 * action still waiting whose type matches (an `error` observation matches any type).
 */
export function buildEntries(events: SandboxEvent[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  const pending: TimelineEntry[] = [];
  for (const e of events) {
    if (e.kind === 'action') {
      const entry: TimelineEntry = {
        key: `a${e.seq}`,
        seq: e.seq,
        at: e.at,
        kind: 'action',
        action: asAction(e.payload),
      };
      entries.push(entry);
      pending.push(entry);
    } else if (e.kind === 'observation') {
      const obs = asObservation(e.payload);
      let idx = -1;
      if (obs.cause !== undefined) {
        idx = pending.findIndex(
          (p) => p.seq === Number(obs.cause) || (p.action?.id !== undefined && p.action.id === obs.cause),
        );
      }
      if (idx < 0) {
        for (let i = pending.length - 1; i >= 0; i--) {
          const type = pending[i]!.action?.action;
          if (obs.observation === 'error' || !obs.observation || type === obs.observation) {
            idx = i;
            break;
          }
        }
      }
      if (idx >= 0) {
        const entry = pending[idx]!;
        pending.splice(idx, 1);
        entry.observation = obs;
        entry.observedAt = e.at;
        entry.durationMs = e.duration_ms;
      } else {
        entries.push({
          key: `o${e.seq}`,
          seq: e.seq,
          at: e.at,
          kind: 'observation',
          observation: obs,
          durationMs: e.duration_ms,
        });
      }
    } else {
      entries.push({
        key: `l${e.seq}`,
        seq: e.seq,
        at: e.at,
        kind: 'lifecycle',
        lifecycle: (e.payload ?? {}) as TimelineEntry['lifecycle'],
      });
    }
  }
  return entries;
}

function summary(a: ActionPayload | undefined): string {
  const args = a?.args ?? {};
  const s = (k: string) => (typeof args[k] === 'string' ? (args[k] as string) : '');
  switch (a?.action) {
    case 'run':
      return s('command');
    case 'run_ipython':
      return s('code');
    case 'read':
    case 'write':
      return s('path');
    case 'edit':
      return [s('command'), s('path')].filter(Boolean).join(' ');
    default:
      return s('command') || s('path') || s('code') || JSON.stringify(args).slice(0, 200);
  }
}

function exitCode(o: ObservationPayload | undefined): number | null {
  const c = o?.extras?.metadata?.exit_code;
  return typeof c === 'number' ? c : null;
}

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
