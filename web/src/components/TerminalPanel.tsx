/**
 * An interactive shell in the sandbox: xterm.js on the terminal WebSocket. Keys go out as input
 * frames, the window's size as resize frames; a dropped connection reconnects to the same session
 * name, and the server's first output frame (the scrollback replay) repaints the screen.
 */
import { FitAddon } from '@xterm/addon-fit';
import { type ITheme, Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'react';
import { type TerminalServerMessage, wsUrl } from '../api.js';
import { RECONNECT_MAX_MS, RECONNECT_MIN_MS } from '../hooks.js';

/** The session the UI attaches to; every tab of the UI shares it, like one tmux session. */
export const TERMINAL_SESSION = 'web';

/** Lines xterm keeps above the screen; the server's replay is the durable copy. */
const SCROLLBACK_LINES = 5000;

const THEME: ITheme = {
  background: '#0b0f17',
  foreground: '#d8dee9',
  cursor: '#7dd3fc',
  cursorAccent: '#0b0f17',
  selectionBackground: '#334155',
  black: '#1e2430',
  red: '#f47067',
  green: '#8ddb8c',
  yellow: '#e0c068',
  blue: '#6cb6ff',
  magenta: '#dcbdfb',
  cyan: '#76e3ea',
  white: '#cdd9e5',
  brightBlack: '#636e7b',
  brightRed: '#ff938a',
  brightGreen: '#b4f1b4',
  brightYellow: '#f0d98c',
  brightBlue: '#96d0ff',
  brightMagenta: '#eedcff',
  brightCyan: '#b3f0ff',
  brightWhite: '#f0f6fc',
};

type Status =
  | { kind: 'idle' }
  | { kind: 'connecting' }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; inMs: number; attempt: number }
  | { kind: 'exited'; code: number };

function statusText(s: Status): string {
  switch (s.kind) {
    case 'idle':
      return 'not connected';
    case 'connecting':
      return 'connecting…';
    case 'connected':
      return 'connected';
    case 'reconnecting':
      return `disconnected, retrying in ${Math.ceil(s.inMs / 1000)}s`;
    case 'exited':
      return `shell exited (code ${s.code})`;
  }
}

export function TerminalPanel({ sandboxId, running }: { sandboxId: string; running: boolean }) {
  const hostRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<{ term: Terminal; fit: FitAddon } | null>(null);
  const sendRef = useRef<(msg: object) => void>(() => undefined);
  const [status, setStatus] = useState<Status>({ kind: 'idle' });
  const [serverError, setServerError] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);

  // The terminal itself lives as long as the panel; connections come and go beneath it.
  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const term = new Terminal({
      cursorBlink: true,
      fontFamily: '"DejaVu Sans Mono", "Liberation Mono", ui-monospace, Menlo, Consolas, monospace',
      fontSize: 13,
      lineHeight: 1.15,
      scrollback: SCROLLBACK_LINES,
      theme: THEME,
      allowProposedApi: false,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host);
    termRef.current = { term, fit };

    const refit = () => {
      if (host.clientWidth > 0 && host.clientHeight > 0) {
        try {
          fit.fit();
        } catch {
          // not laid out yet
        }
      }
    };
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(refit);
    });
    observer.observe(host);
    refit();

    const input = term.onData((data) => sendRef.current({ type: 'input', data }));
    const binary = term.onBinary((data) => sendRef.current({ type: 'input', data }));
    const resize = term.onResize(({ cols, rows }) => sendRef.current({ type: 'resize', cols, rows }));
    return () => {
      cancelAnimationFrame(frame);
      observer.disconnect();
      input.dispose();
      binary.dispose();
      resize.dispose();
      term.dispose();
      termRef.current = null;
    };
  }, []);

  // One connection at a time while the sandbox runs; `generation` forces a fresh one.
  // biome-ignore lint/correctness/useExhaustiveDependencies: generation is a deliberate trigger
  useEffect(() => {
    const t = termRef.current;
    if (!running || !t) {
      setStatus({ kind: 'idle' });
      return;
    }
    const { term } = t;
    let ws: WebSocket | null = null;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = RECONNECT_MIN_MS;
    let attempt = 0;
    let exited = false;

    const connect = () => {
      setStatus({ kind: 'connecting' });
      exited = false;
      const socket = new WebSocket(
        wsUrl(`/api/sandboxes/${encodeURIComponent(sandboxId)}/terminal`, {
          session: TERMINAL_SESSION,
          cols: term.cols,
          rows: term.rows,
        }),
      );
      ws = socket;
      let replayed = false;
      socket.onopen = () => {
        delay = RECONNECT_MIN_MS;
        attempt = 0;
        setStatus({ kind: 'connected' });
        setServerError(null);
        socket.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
      };
      socket.onmessage = (e) => {
        let msg: TerminalServerMessage;
        try {
          msg = JSON.parse(String(e.data)) as TerminalServerMessage;
        } catch {
          return;
        }
        if (msg.type === 'output') {
          if (!replayed) {
            // The first frame replays the session's scrollback: it replaces what is on screen.
            replayed = true;
            term.reset();
          }
          term.write(msg.data);
        } else if (msg.type === 'exit') {
          exited = true;
          term.write(`\r\n\x1b[2m[shell exited with code ${msg.code}]\x1b[0m\r\n`);
          setStatus({ kind: 'exited', code: msg.code });
        } else if (msg.type === 'error') {
          setServerError(`${msg.message} (${msg.code})`);
        }
      };
      socket.onclose = () => {
        if (stopped || ws !== socket) return;
        ws = null;
        if (exited) return;
        attempt++;
        setStatus({ kind: 'reconnecting', inMs: delay, attempt });
        timer = setTimeout(connect, delay);
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
      };
    };

    sendRef.current = (msg) => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      sendRef.current = () => undefined;
      ws?.close();
    };
  }, [sandboxId, running, generation]);

  const canReconnect = running && (status.kind === 'reconnecting' || status.kind === 'exited');
  return (
    <div className="terminal-panel" data-testid="terminal">
      <div className="panel-head">
        <span className="panel-title">Terminal</span>
        <span
          className={`term-status term-${status.kind}`}
          data-testid="terminal-status"
          data-status={status.kind}
        >
          <span className="dot" aria-hidden="true" />
          {statusText(status)}
        </span>
        <div className="spacer" />
        {canReconnect && (
          <button
            type="button"
            className="small"
            onClick={() => setGeneration((g) => g + 1)}
            data-testid="terminal-reconnect"
          >
            {status.kind === 'exited' ? 'New shell' : 'Reconnect now'}
          </button>
        )}
      </div>
      {serverError && (
        <div className="error inline-error" role="alert" data-testid="terminal-error">
          {serverError}
        </div>
      )}
      <div className="terminal-body">
        <div className="terminal-host" ref={hostRef} data-testid="terminal-screen" />
        {!running && (
          <div className="terminal-overlay">The terminal is available while the sandbox runs.</div>
        )}
      </div>
    </div>
  );
}
