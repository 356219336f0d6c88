/** Asks for an API key, checks it against /api/auth/check, and keeps it for the browser session. */
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { api, errorMessage } from '../api.js';

export function LoginForm({
  notice,
  onAccepted,
}: {
  notice: string | null;
  onAccepted: (key: string) => void;
}) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(notice);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const k = key.trim();
    if (!k) {
      setError('Enter an API key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      if (await api.checkKey(k)) onAccepted(k);
      else setError('That API key was not accepted. Check it and try again.');
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="login-wrap">
      <form className="login card" onSubmit={submit} data-testid="login-form">
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true" /> Berth
        </div>
        <p className="muted">This control plane needs an API key. It is kept for this browser tab only.</p>
        <label>
          API key
          <input
            type="password"
            ref={input}
            autoComplete="current-password"
            value={key}
            onChange={(e) => setKey(e.target.value)}
            data-testid="login-key"
          />
        </label>
        {error && (
          <div className="error" role="alert" data-testid="login-error">
            {error}
          </div>
        )}
        <button type="submit" className="primary" disabled={busy} data-testid="login-submit">
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </div>
  );
}
