#!/usr/bin/env bash
# Prepares this machine for Berth, idempotently: Debian packages (Docker engine, mmdebstrap for the
# offline base image, Chromium for the browser tests, iproute2), a running dockerd, npm dependencies,
# the build, and the bootstrapped base and runtime images. Safe to run again; each step says what it does.
#   scripts/setup.sh            everything
#   SKIP_BROWSER=1 scripts/setup.sh   without Chromium (only the web UI tests need it)
#   BERTH_GVISOR=1 scripts/setup.sh   also installs gVisor (Debian's runsc) and registers it with dockerd as
#                                     the "runsc" runtime, for SANDBOX_OCI_RUNTIME=runsc (CI asks for it)
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
# `python3 -m venv` (the schemathesis test's venv) needs ensurepip, which Debian ships in python3-venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# The disk-limit test formats loop devices as xfs (pquota) and btrfs for a private dockerd.
command -v mkfs.xfs >/dev/null 2>&1 || missing+=(xfsprogs)
command -v mkfs.btrfs >/dev/null 2>&1 || missing+=(btrfs-progs)
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

# Engine settings Berth relies on go into /etc/docker/daemon.json, merged with what is there; dockerd
# re-reads them on SIGHUP (systemd: reload), so running containers are not stopped.
#   daemon_json_set KEY JSON    sets one top-level key (a dotted key sets a nested one)
daemon_json_set() {
  as_root python3 - "$1" "$2" <<'PY'
import json, os, sys
path = "/etc/docker/daemon.json"
conf = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as f:
        conf = json.load(f)
keys, value = sys.argv[1].split("."), json.loads(sys.argv[2])
node = conf
for k in keys[:-1]:
    node = node.setdefault(k, {})
if node.get(keys[-1]) != value:
    node[keys[-1]] = value
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
PY
}
reload_dockerd() {
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active docker >/dev/null 2>&1; then
    as_root systemctl reload docker
  else
    as_root kill -HUP "$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd)"
  fi
}

# live-restore: running containers outlive a restart of dockerd (an upgrade, a crash), so sandboxes keep
# their processes and Berth re-attaches.
if [ "$(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)" != true ]; then
  step "engine configuration: live-restore (sandboxes survive a dockerd restart)"
  daemon_json_set live-restore true && reload_dockerd || true
  for _ in $(seq 1 20); do
    [ "$(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)" = true ] && break
    sleep 0.5
  done
  echo "live-restore: $(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)"
fi

# gVisor: Debian's runsc, registered in /etc/docker/daemon.json (daemon_json_set). The arguments are what
# this runsc needs here:
#   --platform=ptrace  works in a VM; kvm hangs at sandbox start under nested virtualisation
#   --network=host     runsc's own network stack refuses to start on Linux 6.x ("cannot run with network
#                      enabled in root network namespace": it tests a sysctl that became per-namespace);
#                      the sandbox keeps Docker's network namespace, but its sockets are the host kernel's
# Not --oci-seccomp (enforce the container's seccomp profile inside gVisor; runsc ignores it otherwise):
# this runsc returns EPERM for every refused call, whatever errnoRet says, so Berth's clone3 rule (ENOSYS,
# for glibc to fall back to clone) stops every thread from starting. See README, "gVisor".
# A failure here is reported, not fatal: the gVisor tests then fail and say why.
setup_gvisor() {
  if ! command -v runsc >/dev/null 2>&1; then
    step "installing gVisor (Debian package runsc)"
    as_root apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends runsc >/dev/null || return 1
  fi
  step "registering runsc with dockerd ($(runsc --version 2>/dev/null | head -n 1))"
  daemon_json_set runtimes.runsc "{\"path\": \"$(command -v runsc)\", \"runtimeArgs\": [\"--platform=ptrace\", \"--network=host\"]}" || return 1
  reload_dockerd || return 1
  for _ in $(seq 1 20); do
    if docker info --format '{{json .Runtimes}}' | grep -q '"runsc"'; then
      echo "dockerd has the runsc runtime."
      return 0
    fi
    sleep 0.5
  done
  echo "dockerd did not take the runsc runtime (see /etc/docker/daemon.json and the dockerd log)" >&2
  return 1
}
if [ "${BERTH_GVISOR:-0}" = 1 ] && ! setup_gvisor; then
  echo "WARNING: gVisor (runsc) could not be set up; the gVisor tests will fail and say why" >&2
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
