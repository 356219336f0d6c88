#!/usr/bin/env bash
# Starts the reference OpenHands V0 action-execution server (installed by setup.sh) in the
# foreground, bound to 127.0.0.1, the way the reference's LocalRuntime starts it on a host.
#
#   scripts/oracle/start.sh [PORT] [WORKING_DIR]      (defaults: 39000, a new temp dir)
#
# Env: BERTH_ORACLE_VENV (default /opt/berth-oracle), SESSION_API_KEY (default: none = no auth),
#      NO_CHANGE_TIMEOUT_SECONDS, BERTH_ORACLE_PLUGINS (default "agent_skills jupyter").
# Prints "listening on http://127.0.0.1:PORT" once GET /alive answers {"status":"ok"}; Ctrl-C stops
# the server, its Jupyter kernel gateway and its private tmux server.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${BERTH_ORACLE_VENV:-/opt/berth-oracle}"
PORT="${1:-39000}"
CREATED_WORKDIR=""
if [ -n "${2:-}" ]; then WORKDIR="$2"; else WORKDIR="$(mktemp -d /tmp/berth-oracle-ws-XXXXXX)"; CREATED_WORKDIR="$WORKDIR"; fi
PLUGINS="${BERTH_ORACLE_PLUGINS-agent_skills jupyter}"
[ -x "$VENV/bin/python" ] || { echo "no $VENV/bin/python: run scripts/oracle/setup.sh" >&2; exit 1; }
mkdir -p "$WORKDIR"
WORKDIR="$(cd "$WORKDIR" && pwd -P)"

SITE="$("$VENV/bin/python" -c 'import os, openhands; print(os.path.dirname(os.path.dirname(openhands.__file__)))' 2>/dev/null)"
TMUX_TMPDIR="$(mktemp -d /tmp/berth-oracle-tmux-XXXXXX)"
export TMUX_TMPDIR
unset TMUX
export USER="$(id -un)"
export PYTHONPATH="$SITE" OPENHANDS_REPO_PATH="$SITE" LOCAL_RUNTIME_MODE=1
export PATH="$VENV/bin:$PATH"
export LOG_LEVEL="${LOG_LEVEL:-warning}"

plugin_args=()
[ -n "$PLUGINS" ] && plugin_args=(--plugins $PLUGINS)

cd "$SITE"
setsid "$VENV/bin/python" -u "$HERE/launch.py" "$PORT" --working-dir "$WORKDIR" "${plugin_args[@]}" \
  --username "$USER" --user-id "$(id -u)" --no-enable-browser &
PID=$!
cleanup() {
  kill -TERM -- "-$PID" 2>/dev/null || true
  sleep 1
  kill -KILL -- "-$PID" 2>/dev/null || true
  tmux kill-server 2>/dev/null || true
  rm -rf "$TMUX_TMPDIR"
  [ -z "$CREATED_WORKDIR" ] || rm -rf "$CREATED_WORKDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 240); do
  if ! kill -0 "$PID" 2>/dev/null; then echo "reference server exited during startup" >&2; exit 1; fi
  if curl -fsS -m 2 "http://127.0.0.1:$PORT/alive" 2>/dev/null | grep -q '"ok"'; then
    echo "working dir $WORKDIR"
    echo "listening on http://127.0.0.1:$PORT"
    wait "$PID"
    exit $?
  fi
  sleep 0.5
done
echo "reference server did not answer /alive in 120 s" >&2
exit 1
