/** The state badge and the pause / resume / delete buttons, shared by the list and the sandbox page. */
import { useEffect, useRef, useState } from 'react';
import { api, errorMessage, type Sandbox, type SandboxState } from '../api.js';
import { useLiveSandboxes } from '../live.js';

/** How long "Delete" waits for the confirming second click. */
const CONFIRM_WINDOW_MS = 4000;

export function StateBadge({ state }: { state: SandboxState }) {
  return (
    <span className={`badge state-${state}`} data-testid="sandbox-state" data-state={state}>
      {state}
    </span>
  );
}

export function SandboxActions({
  sandbox,
  onDeleted,
  compact,
}: {
  sandbox: Sandbox;
  onDeleted?: () => void;
  compact?: boolean;
}) {
  const live = useLiveSandboxes();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const confirmTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(confirmTimer.current), []);

  async function run(label: string, fn: () => Promise<void>) {
    setBusy(label);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(`${label} failed: ${errorMessage(err)}`);
    } finally {
      setBusy(null);
    }
  }

  const pause = () => run('Pause', async () => live.upsert(await api.pauseSandbox(sandbox.id)));
  const resume = () => run('Resume', async () => live.upsert(await api.resumeSandbox(sandbox.id)));
  const remove = () => {
    if (!confirming) {
      setConfirming(true);
      clearTimeout(confirmTimer.current);
      confirmTimer.current = setTimeout(() => setConfirming(false), CONFIRM_WINDOW_MS);
      return;
    }
    setConfirming(false);
    void run('Delete', async () => {
      await api.deleteSandbox(sandbox.id);
      live.remove(sandbox.id);
      onDeleted?.();
    });
  };

  const s = sandbox.state;
  const canPause = s === 'running';
  const canResume = s === 'paused';
  return (
    <div className={compact ? 'actions compact' : 'actions'}>
      {canResume ? (
        <button type="button" onClick={resume} disabled={busy !== null} data-testid="sandbox-resume">
          {busy === 'Resume' ? 'Resuming…' : 'Resume'}
        </button>
      ) : (
        <button
          type="button"
          onClick={pause}
          disabled={!canPause || busy !== null}
          data-testid="sandbox-pause"
        >
          {busy === 'Pause' ? 'Pausing…' : 'Pause'}
        </button>
      )}
      <button
        type="button"
        className={confirming ? 'danger solid' : 'danger'}
        onClick={remove}
        disabled={busy !== null}
        data-testid="sandbox-delete"
      >
        {busy === 'Delete' ? 'Deleting…' : confirming ? 'Confirm delete' : 'Delete'}
      </button>
      {error && (
        <div className="error inline-error" role="alert" data-testid="action-error">
          {error}
        </div>
      )}
    </div>
  );
}
