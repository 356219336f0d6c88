#!/usr/bin/env bash
# Installs the reference OpenHands V0 action-execution server (the "oracle") into a Python venv,
# so test/oracle/differential.test.ts can compare Berth against it.
#
#   scripts/oracle/setup.sh            # venv at $BERTH_ORACLE_VENV (default /opt/berth-oracle)
#
# Idempotent: re-running with everything installed only checks and exits.
# Needs Python 3.12 or 3.13 (openhands-ai 0.38+ requires >=3.12,<3.14), PyPI and (if tmux is missing) apt.
set -euo pipefail

VENV="${BERTH_ORACLE_VENV:-/opt/berth-oracle}"
SPEC="${BERTH_ORACLE_SPEC:-openhands-ai==0.62.*}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONSTRAINTS="$HERE/constraints.txt"
log() { printf '[oracle-setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# 1. tmux (the reference's bash session runs inside tmux)
if ! command -v tmux >/dev/null 2>&1; then
  log "installing tmux with apt-get"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tmux
fi
log "tmux: $(tmux -V)"

# 2. a Python 3.12/3.13 interpreter
find_python() {
  local c
  for c in "${BERTH_ORACLE_PYTHON:-}" python3.12 python3.13 \
           "$HOME"/.pyenv/versions/3.12*/bin/python3 "$HOME"/.pyenv/versions/3.13*/bin/python3 python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    if "$c" -c 'import sys; sys.exit(0 if (3,12) <= sys.version_info[:2] < (3,14) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import openhands.runtime.action_execution_server' >/dev/null 2>&1 \
   && cmp -s "$CONSTRAINTS" "$VENV/.berth-oracle-ok"; then
  log "already installed: $("$VENV/bin/python" -m pip show openhands-ai 2>/dev/null | grep -i '^version')  ($VENV)"
  exit 0
fi

PY="$(find_python)" || { log "no Python 3.12/3.13 found (set BERTH_ORACLE_PYTHON)"; exit 1; }
log "using $PY ($("$PY" --version))"

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip wheel

log "installing $SPEC (several hundred MB of dependencies; takes a few minutes)"
# --progress-bar off + no --quiet: one line per package, so progress is visible in logs.
pip_install() {
  local rc
  set +e
  "$VENV/bin/python" -m pip install --progress-bar off -c "$CONSTRAINTS" "$@" 2>&1 \
    | { grep -E --line-buffered '^(Collecting|Successfully|ERROR|Installing collected)' || true; } \
    | sed -u 's/^/  /'
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || { log "pip install $* failed ($rc)"; exit 1; }
}
pip_install "$SPEC"

# The jupyter plugin starts `python -m jupyter kernelgateway` from the same interpreter.
if ! "$VENV/bin/python" -c 'import kernel_gateway' >/dev/null 2>&1; then
  log "installing jupyter kernel gateway (for the jupyter plugin)"
  pip_install jupyter_kernel_gateway ipykernel
fi

if ! err="$("$VENV/bin/python" -c 'import openhands.runtime.action_execution_server' 2>&1)"; then
  printf '%s\n' "$err" | tail -20
  log "openhands.runtime.action_execution_server does not import"
  exit 1
fi
cp "$CONSTRAINTS" "$VENV/.berth-oracle-ok"
log "done: $("$VENV/bin/python" -m pip show openhands-ai | grep -i '^version') in $VENV"
