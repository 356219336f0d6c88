#!/usr/bin/env bash
# Prepares this machine for Berth, idempotently: Debian packages (Docker engine, mmdebstrap for the
# offline base image, Chromium for the browser tests, iproute2), a running dockerd, npm dependencies,
# the build, and the bootstrapped base and runtime images. Safe to run again; each step says what it does.
#   scripts/setup.sh            everything
#   SKIP_BROWSER=1 scripts/setup.sh   without Chromium (only the web UI tests need it)
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$SECONDS
step() { printf '\n[setup %3ss] %s\n' "$((SECONDS - t0))" "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Berth needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ "${SKIP_BROWSER:-0}" != 1 ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  step "starting dockerd (log: /tmp/berth-dockerd.log)"
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    as_root systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    as_root sh -c 'nohup dockerd >/tmp/berth-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
if docker info >/dev/null 2>&1; then
  echo "Docker engine $(docker version --format '{{.Server.Version}}') is running."
else
  echo "Docker engine could not be started; see /tmp/berth-dockerd.log" >&2
  tail -n 20 /tmp/berth-dockerd.log >&2 || true
  exit 3
fi

step "installing npm dependencies (npm ci)"
npm ci --no-audit --no-fund --loglevel=error

step "building (TypeScript, runtime server bundle, web UI)"
npm run build --silent

step "bootstrapping the base image from Debian packages (first time: about a minute and a half)"
node bin/berth.js image bootstrap

step "building the runtime image"
node bin/berth.js image build

step "ready"
