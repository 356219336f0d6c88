/** The sandbox's resource use, polled from /stats while it runs and the tab is visible. */
import { useEffect, useState } from 'react';
import { api, errorMessage, type SandboxStats } from '../api.js';
import { bytes, duration } from '../format.js';

/** Often enough to watch a build, rare enough to cost the sandbox nothing noticeable. */
export const STATS_POLL_MS = 2000;

function Meter({
  label,
  percent,
  detail,
  testid,
}: {
  label: string;
  percent: number;
  detail: string;
  testid: string;
}) {
  const p = Number.isFinite(percent) ? Math.max(0, Math.min(100, percent)) : 0;
  const level = p >= 90 ? 'hot' : p >= 70 ? 'warm' : 'ok';
  return (
    <div className="meter" data-testid={testid}>
      <div className="meter-head">
        <span className="meter-label">{label}</span>
        <span className="meter-value">{detail}</span>
      </div>
      <div className={`meter-bar ${level}`} aria-hidden="true">
        <span style={{ width: `${p}%` }} />
      </div>
    </div>
  );
}

export function StatsPanel({ sandboxId, running }: { sandboxId: string; running: boolean }) {
  const [stats, setStats] = useState<SandboxStats | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!running) {
      setStats(null);
      return;
    }
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let ctrl: AbortController | undefined;
    const poll = async () => {
      if (document.visibilityState === 'visible') {
        ctrl = new AbortController();
        try {
          const s = await api.stats(sandboxId, ctrl.signal);
          if (stopped) return;
          setStats(s);
          setError(null);
        } catch (err) {
          if (stopped || (err as Error).name === 'AbortError') return;
          setError(errorMessage(err));
        }
      }
      if (!stopped) timer = setTimeout(poll, STATS_POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
      ctrl?.abort();
    };
  }, [sandboxId, running]);

  const r = stats?.resources;
  return (
    <section className="stats card" data-testid="stats" aria-label="Resource use">
      {!running ? (
        <span className="muted">Resource use is shown while the sandbox runs.</span>
      ) : !r ? (
        error ? null : (
          <span className="muted">Reading resource use…</span>
        )
      ) : (
        <>
          <Meter
            label="CPU"
            percent={r.cpu_percent}
            detail={`${r.cpu_percent.toFixed(1)}%`}
            testid="stats-cpu"
          />
          <Meter
            label="Memory"
            percent={r.memory.percent}
            detail={`${bytes(r.memory.rss)} · ${r.memory.percent.toFixed(1)}%`}
            testid="stats-memory"
          />
          <Meter
            label="Disk"
            percent={r.disk.percent}
            detail={`${bytes(r.disk.used)} of ${bytes(r.disk.total)}`}
            testid="stats-disk"
          />
          <div className="stat-plain" data-testid="stats-uptime">
            <span className="meter-label">Up</span>
            <span>{duration(stats.uptime)}</span>
          </div>
          <div className="stat-plain" data-testid="stats-idle">
            <span className="meter-label">Idle</span>
            <span>{duration(stats.idle_time)}</span>
          </div>
        </>
      )}
      {error && (
        <span className="error small" role="alert" data-testid="stats-error">
          Resource use unavailable: {error}
        </span>
      )}
    </section>
  );
}
