#!/bin/sh
# Entrypoint of the Berth control plane image (/opt/berth/image/control-plane-entrypoint.sh).
#
#   docker run ... IMAGE [--log-level debug ...]   `berth up` with these flags (the default)
#   docker run ... IMAGE gc --dry-run              any other berth command
#
# Fills in what only the container knows, then runs the CLI; every value set here can be overridden
# with -e:
#   BERTH_CONTROL_PLANE_CONTAINER  this container's id, so the control plane can join each sandbox's link
#                                  network and reach it there rather than through host ports
#   BERTH_HOST, BERTH_PORT         0.0.0.0:3000: the container's own interface. A non-loopback address
#                                  needs BERTH_API_KEY; publish with -p 127.0.0.1:3000:3000 as well.
#   WORKSPACE_BASE                 /opt/workspace_base when WORKSPACE_MOUNT_PATH is set: the workspace as
#                                  this container sees it (-v $WORKSPACE_BASE:/opt/workspace_base), while
#                                  WORKSPACE_MOUNT_PATH is its path on the Docker host, which is what
#                                  sandboxes get bind-mounted.
set -eu

log() { echo "berth-container: $*" >&2; }

if [ -z "${BERTH_CONTROL_PLANE_CONTAINER:-}" ]; then
  # Docker bind-mounts /etc/hostname from .../containers/<64-hex id>/hostname: that is the full id. The
  # hostname (the short id, unless --hostname was given) is the fallback for other engines.
  self="$(sed -n 's|.* [^ ]*/containers/\([0-9a-f]\{64\}\)/hostname /etc/hostname .*|\1|p' /proc/self/mountinfo 2>/dev/null | head -n 1)"
  BERTH_CONTROL_PLANE_CONTAINER="${self:-${HOSTNAME:-$(cat /etc/hostname)}}"
fi
export BERTH_CONTROL_PLANE_CONTAINER
export BERTH_HOST="${BERTH_HOST:-0.0.0.0}" BERTH_PORT="${BERTH_PORT:-3000}"

if [ -n "${WORKSPACE_MOUNT_PATH:-}" ]; then
  export WORKSPACE_BASE="${WORKSPACE_BASE:-/opt/workspace_base}"
elif grep -q ' /opt/workspace_base ' /proc/self/mountinfo 2>/dev/null; then
  log "/opt/workspace_base is mounted but WORKSPACE_MOUNT_PATH is not set, so sandboxes get no workspace;" \
    "set -e WORKSPACE_MOUNT_PATH=<the same directory's path on the Docker host>"
fi

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- up "$@"
  if [ -z "${SANDBOX_USER_ID:-}" ]; then
    log "SANDBOX_USER_ID is not set, so each sandbox runs as the owner of its workspace directory (a root-owned" \
      "one is refused; 1000 without a workspace): add -e SANDBOX_USER_ID=\$(id -u) to choose"
  fi
  case "$BERTH_HOST" in
  127.* | localhost | ::1) ;;
  *)
    if [ -z "${BERTH_API_KEY:-}" ] && [ -z "${BERTH_CONFIG:-}" ]; then
      log "the control plane listens on $BERTH_HOST:$BERTH_PORT in this container, so it needs an API key:" \
        "add -e BERTH_API_KEY=<a long random string> (and publish it on loopback only: -p 127.0.0.1:3000:3000)"
      exit 64
    fi
    ;;
  esac
fi
exec node /opt/berth/bin/berth.js "$@"
