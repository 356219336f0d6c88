/** The sandbox list (#/): state, image, age, last activity, workspace; create, pause, resume, delete. */
import { useMemo, useState } from 'react';
import type { SandboxState } from '../api.js';
import { fullDate, relativeTime, shortId } from '../format.js';
import { navigate, sandboxHref, useNow } from '../hooks.js';
import { useLiveSandboxes } from '../live.js';
import { CreateSandboxForm } from './CreateSandboxForm.js';
import { SandboxActions, StateBadge } from './SandboxActions.js';
import { StreamPill } from './StreamPill.js';

/** How to make a first sandbox without this page, shown where the list is empty. */
const FIRST_SANDBOX_SNIPPETS = [
  '# CLI',
  'berth sandbox create',
  '',
  '// TypeScript (@berth/sdk)',
  'const sb = await new BerthClient({ url, apiKey }).sandboxes.create({});',
  '',
  '# Python (pip install ./python)',
  'with Berth() as berth, berth.sandboxes.create() as sb: ...',
].join('\n');

const FILTERS: Array<SandboxState | 'all'> = [
  'all',
  'running',
  'starting',
  'paused',
  'stopped',
  'exited',
  'error',
  'vanished',
];

export function SandboxListPage() {
  const live = useLiveSandboxes();
  const now = useNow(5000);
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState<SandboxState | 'all'>('all');

  const rows = useMemo(() => {
    const all = [...live.sandboxes.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    return filter === 'all' ? all : all.filter((s) => s.state === filter);
  }, [live.sandboxes, filter]);

  return (
    <div className="page" data-testid="sandbox-list-page">
      <div className="page-head">
        <h1>Sandboxes</h1>
        <span className="muted" data-testid="sandbox-count">
          {live.sandboxes.size}
        </span>
        <StreamPill status={live.stream} />
        <div className="spacer" />
        <select
          value={filter}
          onChange={(e) => setFilter(e.target.value as SandboxState | 'all')}
          aria-label="Filter by state"
          data-testid="state-filter"
        >
          {FILTERS.map((f) => (
            <option key={f} value={f}>
              {f === 'all' ? 'All states' : f}
            </option>
          ))}
        </select>
        {!creating && (
          <button
            type="button"
            className="primary"
            onClick={() => setCreating(true)}
            data-testid="new-sandbox"
          >
            New sandbox
          </button>
        )}
      </div>

      {creating && (
        <CreateSandboxForm
          onCancel={() => setCreating(false)}
          onCreated={(s) => {
            live.upsert(s);
            setCreating(false);
            navigate(`/sandboxes/${encodeURIComponent(s.id)}`);
          }}
        />
      )}

      {live.error && (
        <div className="error banner" role="alert" data-testid="list-error">
          Could not load the sandboxes: {live.error}{' '}
          <button type="button" className="small" onClick={() => void live.reload()}>
            Retry
          </button>
        </div>
      )}

      {!live.loaded ? (
        <div className="card muted">Loading…</div>
      ) : rows.length === 0 ? (
        <div className="card empty" data-testid="sandbox-empty">
          {live.sandboxes.size === 0 ? (
            <>
              No sandboxes yet.{' '}
              {!creating && (
                <button type="button" className="link" onClick={() => setCreating(true)}>
                  Create one
                </button>
              )}
              <div className="empty-ways" data-testid="sandbox-empty-ways">
                Or from a terminal or a program:
                <pre>{FIRST_SANDBOX_SNIPPETS}</pre>
              </div>
            </>
          ) : (
            `No ${filter} sandboxes.`
          )}
        </div>
      ) : (
        <div className="table-wrap">
          <table className="sandbox-table" data-testid="sandbox-table">
            <thead>
              <tr>
                <th>Sandbox</th>
                <th>State</th>
                <th>Image</th>
                <th>Workspace</th>
                <th>Age</th>
                <th>Last activity</th>
                <th aria-label="Actions" />
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id} data-testid="sandbox-row" data-sandbox-id={s.id}>
                  <td data-label="Sandbox">
                    <div className="id-cell">
                      <a href={sandboxHref(s.id)} className="mono" data-testid="sandbox-link" title={s.id}>
                        {shortId(s.id)}
                      </a>
                      {Object.keys(s.labels).length > 0 && (
                        <div className="labels">
                          {Object.entries(s.labels).map(([k, v]) => (
                            <span key={k} className="label">
                              {k}={v}
                            </span>
                          ))}
                        </div>
                      )}
                    </div>
                  </td>
                  <td data-label="State">
                    <div className="state-cell">
                      <StateBadge state={s.state} />
                      {s.error && (
                        <div className="error small clamp" title={s.error} data-testid="sandbox-error">
                          {s.error}
                        </div>
                      )}
                    </div>
                  </td>
                  <td data-label="Image" className="mono clamp" title={s.image}>
                    {s.image}
                  </td>
                  <td data-label="Workspace" className="mono clamp" title={s.workspace ?? ''}>
                    {s.workspace ?? <span className="muted">none</span>}
                  </td>
                  <td data-label="Age" title={fullDate(s.created_at)}>
                    {relativeTime(s.created_at, now)}
                  </td>
                  <td
                    data-label="Last activity"
                    title={fullDate(s.last_activity_at)}
                    data-testid="sandbox-activity"
                  >
                    {relativeTime(s.last_activity_at, now)}
                  </td>
                  <td className="row-actions">
                    <SandboxActions sandbox={s} compact />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
