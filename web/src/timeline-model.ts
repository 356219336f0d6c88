/**
 * The timeline's model, free of React and the DOM: events from the log become entries, each action
 * paired with its observation, with a one-line summary and an exit code.
 */
import type { SandboxEvent } from '../../src/protocol/api.js';

export interface ActionPayload {
  action?: string;
  args?: Record<string, unknown>;
  timeout?: number | null;
  id?: number | string;
}
export interface ObservationPayload {
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

export function summary(a: ActionPayload | undefined): string {
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

export function exitCode(o: ObservationPayload | undefined): number | null {
  const c = o?.extras?.metadata?.exit_code;
  return typeof c === 'number' ? c : null;
}
