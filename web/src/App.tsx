/** The app shell: the API key gate, the header, and hash routes (#/ and #/sandboxes/<id>). */
import { useCallback, useEffect, useState } from 'react';
import { api, errorMessage, getApiKey, onUnauthorized, setApiKey } from './api.js';
import { ErrorBoundary } from './components/ErrorBoundary.js';
import { LoginForm } from './components/LoginForm.js';
import { SandboxListPage } from './components/SandboxList.js';
import { SandboxPage } from './components/SandboxPage.js';
import { useHashRoute } from './hooks.js';
import { LiveSandboxesProvider } from './live.js';

type Auth =
  | { state: 'checking' }
  | { state: 'ok' }
  | { state: 'needed'; notice: string | null }
  | { state: 'unreachable'; message: string };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });
  const [version, setVersion] = useState<string | null>(null);
  const route = useHashRoute();

  const check = useCallback(async () => {
    setAuth({ state: 'checking' });
    const stored = getApiKey();
    try {
      if (await api.checkKey(stored)) {
        setAuth({ state: 'ok' });
      } else {
        if (stored) setApiKey(null);
        setAuth({ state: 'needed', notice: stored ? 'The saved API key is no longer accepted.' : null });
      }
    } catch (err) {
      setAuth({ state: 'unreachable', message: errorMessage(err) });
    }
  }, []);

  useEffect(() => {
    void check();
    api.health().then(
      (h) => setVersion(h.version),
      () => undefined,
    );
  }, [check]);

  useEffect(() => {
    document.title = route.name === 'sandbox' ? `${route.id} · Berth` : 'Berth';
  }, [route]);

  useEffect(
    () =>
      onUnauthorized(() => {
        setApiKey(null);
        setAuth({ state: 'needed', notice: 'The control plane refused the API key. Enter it again.' });
      }),
    [],
  );

  if (auth.state === 'checking') {
    return (
      <div className="center-page muted" data-testid="app-loading">
        Connecting to Berth…
      </div>
    );
  }
  if (auth.state === 'unreachable') {
    return (
      <div className="center-page">
        <div className="card error-card" role="alert" data-testid="app-unreachable">
          <strong>Cannot reach the Berth control plane.</strong>
          <p>{auth.message}</p>
          <button type="button" onClick={() => void check()}>
            Retry
          </button>
        </div>
      </div>
    );
  }
  if (auth.state === 'needed') {
    return (
      <LoginForm
        notice={auth.notice}
        onAccepted={(key) => {
          setApiKey(key);
          setAuth({ state: 'ok' });
        }}
      />
    );
  }

  const signedIn = getApiKey() !== null;
  return (
    <LiveSandboxesProvider>
      <div className="app">
        <header className="topbar">
          <a className="brand" href="#/" data-testid="nav-home">
            <span className="brand-mark" aria-hidden="true" /> Berth
          </a>
          <nav className="topnav">
            <a href="#/" className={route.name === 'list' ? 'active' : ''}>
              Sandboxes
            </a>
          </nav>
          <div className="spacer" />
          {version && <span className="muted small">v{version}</span>}
          {signedIn && (
            <button
              type="button"
              className="ghost small"
              data-testid="sign-out"
              onClick={() => {
                setApiKey(null);
                setAuth({ state: 'needed', notice: null });
              }}
            >
              Sign out
            </button>
          )}
        </header>
        <main className="content">
          {route.name === 'list' && (
            <ErrorBoundary label="The sandbox list">
              <SandboxListPage />
            </ErrorBoundary>
          )}
          {route.name === 'sandbox' && (
            <ErrorBoundary label="The sandbox page" key={route.id}>
              <SandboxPage id={route.id} key={route.id} />
            </ErrorBoundary>
          )}
          {route.name === 'unknown' && (
            <div className="card" data-testid="not-found">
              Nothing at <code>#{route.hash}</code>. <a href="#/">Back to the sandboxes</a>.
            </div>
          )}
        </main>
      </div>
    </LiveSandboxesProvider>
  );
}
