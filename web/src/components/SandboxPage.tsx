/** One sandbox (#/sandboxes/<id>): header and actions, resource use, terminal, files, event timeline. */
import { useEffect, useState } from 'react';
import { api, BerthApiError, errorMessage, type Sandbox } from '../api.js';
import { fullDate, relativeTime, untilTime } from '../format.js';
import { navigate, useNow } from '../hooks.js';
import { useLiveSandboxes } from '../live.js';
import { ErrorBoundary } from './ErrorBoundary.js';
import { FileBrowser } from './FileBrowser.js';
import { SandboxActions, StateBadge } from './SandboxActions.js';
import { StatsPanel } from './StatsPanel.js';
import { TerminalPanel } from './TerminalPanel.js';
import { Timeline } from './Timeline.js';

type Load =
  | { state: 'loading' }
  | { state: 'missing' }
  | { state: 'failed'; message: string }
  | { state: 'ok' };

function stateNotice(s: Sandbox): string | null {
  switch (s.state) {
    case 'running':
      return null;
    case 'starting':
      return 'The sandbox is starting. The terminal and files become available when it is running.';
    case 'paused':
      return 'The sandbox is paused. Resume it to use the terminal and files.';
    case 'stopped':
      return 'The sandbox has stopped. Its terminal and files are no longer available.';
    case 'exited':
      return `The sandbox’s container exited${s.error ? ` (${s.error})` : ''}. Resume it (or send an action) to start it again; its files are kept.`;
    case 'vanished':
      return 'The sandbox’s container is gone (removed outside Berth). Delete the record to clean up.';
    case 'deleted':
      return 'This sandbox was deleted.';
    case 'error':
      return `The sandbox failed${s.error ? `: ${s.error}` : '.'}`;
  }
}

export function SandboxPage({ id }: { id: string }) {
  const live = useLiveSandboxes();
  const now = useNow(5000);
  const [load, setLoad] = useState<Load>({ state: 'loading' });
  const [deleted, setDeleted] = useState(false);
  const sandbox = live.sandboxes.get(id);

  useEffect(() => {
    let alive = true;
    api.getSandbox(id).then(
      (s) => {
        if (!alive) return;
        live.upsert(s);
        setLoad({ state: 'ok' });
      },
      (err) => {
        if (!alive) return;
        if (err instanceof BerthApiError && err.status === 404) setLoad({ state: 'missing' });
        else setLoad({ state: 'failed', message: errorMessage(err) });
      },
    );
    return () => {
      alive = false;
    };
  }, [id, live.upsert]);

  if (!sandbox || deleted) {
    if (load.state === 'loading' && !deleted) return <div className="card muted">Loading sandbox…</div>;
    const why = deleted
      ? 'This sandbox was deleted.'
      : load.state === 'failed'
        ? `Could not load this sandbox: ${load.message}`
        : `There is no sandbox ${id}. It may have been deleted.`;
    return (
      <div className="card error-card" role="alert" data-testid="sandbox-missing">
        <strong>{why}</strong>
        <p>
          <a href="#/">Back to the sandboxes</a>
        </p>
      </div>
    );
  }

  const running = sandbox.state === 'running';
  const notice = stateNotice(sandbox);
  return (
    <div className="page sandbox-page" data-testid="sandbox-page" data-sandbox-id={sandbox.id}>
      <div className="sandbox-head">
        <div className="sandbox-title">
          <a href="#/" className="back" aria-label="Back to the sandboxes">
            ←
          </a>
          <h1 className="mono" title={sandbox.id} data-testid="sandbox-id">
            {sandbox.id}
          </h1>
          <StateBadge state={sandbox.state} />
        </div>
        <dl className="facts">
          <div>
            <dt>Image</dt>
            <dd className="mono">{sandbox.image}</dd>
          </div>
          <div>
            <dt>Workspace</dt>
            <dd className="mono">{sandbox.workspace ?? 'none'}</dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd title={fullDate(sandbox.created_at)}>{relativeTime(sandbox.created_at, now)}</dd>
          </div>
          <div>
            <dt>Last activity</dt>
            <dd title={fullDate(sandbox.last_activity_at)}>{relativeTime(sandbox.last_activity_at, now)}</dd>
          </div>
          {sandbox.expires_at && (
            <div>
              <dt>Expires</dt>
              <dd title={fullDate(sandbox.expires_at)}>{untilTime(sandbox.expires_at, now)}</dd>
            </div>
          )}
        </dl>
        <SandboxActions
          sandbox={sandbox}
          onDeleted={() => {
            setDeleted(true);
            navigate('/');
          }}
        />
      </div>

      {notice && (
        <div
          className={`banner ${sandbox.state === 'error' ? 'error' : 'warn'}`}
          role="status"
          data-testid="state-notice"
        >
          {notice}
        </div>
      )}

      <ErrorBoundary label="Resource use">
        <StatsPanel sandboxId={sandbox.id} running={running} />
      </ErrorBoundary>

      <div className="workbench">
        <section className="panel panel-terminal">
          <ErrorBoundary label="The terminal">
            <TerminalPanel sandboxId={sandbox.id} running={running} />
          </ErrorBoundary>
        </section>
        <section className="panel panel-files">
          <ErrorBoundary label="The file browser">
            <FileBrowser sandboxId={sandbox.id} running={running} />
          </ErrorBoundary>
        </section>
        <section className="panel panel-timeline">
          <ErrorBoundary label="The event timeline">
            <Timeline sandboxId={sandbox.id} />
          </ErrorBoundary>
        </section>
      </div>
    </div>
  );
}
