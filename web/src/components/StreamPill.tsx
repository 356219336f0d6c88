/** A small "live / reconnecting" indicator for a WebSocket stream. */
import type { StreamStatus } from '../hooks.js';

const TEXT: Record<StreamStatus, string> = {
  live: 'live',
  connecting: 'connecting',
  offline: 'reconnecting',
};

export function StreamPill({ status, label }: { status: StreamStatus; label?: string }) {
  return (
    <span className={`pill pill-${status}`} data-testid="stream-status" data-status={status} title={label}>
      <span className="dot" aria-hidden="true" />
      {TEXT[status]}
    </span>
  );
}
