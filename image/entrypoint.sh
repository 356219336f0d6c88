#!/bin/sh
# Berth sandbox entrypoint (/berth/entrypoint.sh). Runs as root just long enough to make the sandbox user
# with uid/gid = SANDBOX_USER_ID (default 1000) and passwordless sudo, then runs the runtime server as that
# user. Works on any glibc base image: it needs only /bin/sh (it writes /etc/passwd and /etc/group itself),
# and uses setpriv when the base has it (else the pinned Node drops privileges itself).
#
#   entrypoint.sh [--port P] [--working-dir DIR] ...   run the runtime server with these flags
#   entrypoint.sh COMMAND [ARG...]                     run COMMAND as the sandbox user (debugging)
#
# Environment: SANDBOX_USER_ID (uid, 0 = stay root), SANDBOX_GROUP_ID (default: the uid),
# SANDBOX_USER_NAME (the account's name, default openhands as in the reference; when the image already
# has an account or group with the uid or gid, that one is kept and the name is added as an alias for the
# same id, so `chown openhands` works either way), SESSION_API_KEY (read by the server).
# Never chowns anything recursively: only directories it creates itself are given to the user.
set -eu

NODE=/berth/bin/node
SERVER=/berth/runtime-server.mjs
LAUNCHER=/berth/drop-privileges.mjs

log() { echo "berth-entrypoint: $*" >&2; }
die() {
  log "$*"
  exit 1
}

uid="${SANDBOX_USER_ID:-1000}"
gid="${SANDBOX_GROUP_ID:-$uid}"
wanted_name="${SANDBOX_USER_NAME:-openhands}"
case "$uid$gid" in *[!0-9]*) die "SANDBOX_USER_ID/SANDBOX_GROUP_ID must be numbers (got '$uid'/'$gid')" ;; esac

# Without arguments, or with flags only, run the runtime server.
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- "$NODE" "$SERVER" "$@"
  server=1
else
  server=0
fi

# The working directory named by --working-dir (or WORKSPACE_MOUNT_PATH_IN_SANDBOX).
working_dir="${WORKSPACE_MOUNT_PATH_IN_SANDBOX:-}"
prev=""
for arg in "$@"; do
  case "$arg" in
  --working-dir=*) working_dir="${arg#--working-dir=}" ;;
  *) if [ "$prev" = "--working-dir" ]; then working_dir="$arg"; fi ;;
  esac
  prev="$arg"
done

# Already unprivileged (docker run --user): nothing to set up.
if [ "$(id -u)" != 0 ]; then
  if [ -n "$working_dir" ]; then mkdir -p "$working_dir" 2>/dev/null || true; fi
  exec "$@"
fi

# Field $2 of the /etc/passwd (or /etc/group) line whose id (field 3) is $1, without needing awk or getent.
name_by_id() {
  while IFS=: read -r n _ id _; do
    [ "$id" = "$1" ] && {
      echo "$n"
      return 0
    }
  done <"$2"
  return 0
}
# Field $2 (5 = gecos, 6 = home, 7 = shell) of user $1's /etc/passwd line.
passwd_field() {
  while IFS=: read -r n _ _ _ f5 f6 f7; do
    if [ "$n" = "$1" ]; then
      case "$2" in 5) echo "$f5" ;; 6) echo "$f6" ;; 7) echo "$f7" ;; esac
      return 0
    fi
  done </etc/passwd
  return 0
}
name_taken() { [ -n "$(while IFS=: read -r n _; do [ "$n" = "$1" ] && echo y; done <"$2")" ]; }

if [ -x /bin/bash ]; then login_shell=/bin/bash; else login_shell=/bin/sh; fi

if [ "$uid" = 0 ]; then
  user=root
  home=/root
else
  touch /etc/group /etc/passwd
  # The group: reuse one that already has the gid, else create it.
  group="$(name_by_id "$gid" /etc/group)"
  if [ -z "$group" ]; then
    group="$wanted_name"
    name_taken "$group" /etc/group && group="berth$gid"
    # Written directly rather than with groupadd/useradd: those take 25-100 ms, on every cold start.
    echo "$group:x:$gid:" >>/etc/group
    if [ -w /etc/gshadow ]; then echo "$group:!::" >>/etc/gshadow; fi
  elif [ "$group" != "$wanted_name" ] && ! name_taken "$wanted_name" /etc/group; then
    # An alias for the same gid (after the existing line, which lookups by gid keep finding).
    echo "$wanted_name:x:$gid:" >>/etc/group
  fi
  # The user: reuse the account that already has the uid (its name and home), else create one.
  user="$(name_by_id "$uid" /etc/passwd)"
  if [ -z "$user" ]; then
    user="$wanted_name"
    name_taken "$user" /etc/passwd && user="berth$uid"
    home="/home/$user"
    echo "$user:x:$uid:$gid::$home:$login_shell" >>/etc/passwd
    if [ -w /etc/shadow ]; then echo "$user:*:19000:0:99999:7:::" >>/etc/shadow; fi
  else
    home="$(passwd_field "$user" 6)"
    case "$home" in "" | / | /nonexistent | /var/empty | /dev/null) home="/home/$user" ;; esac
    if [ "$user" != "$wanted_name" ]; then
      log "using the account $user that already has uid $uid"
      if ! name_taken "$wanted_name" /etc/passwd; then
        echo "$wanted_name:x:$uid:$gid::$home:$login_shell" >>/etc/passwd
        if [ -w /etc/shadow ]; then echo "$wanted_name:*:19000:0:99999:7:::" >>/etc/shadow; fi
      fi
    fi
  fi
  if [ ! -d "$home" ]; then
    mkdir -p "$home"
    if [ -d /etc/skel ]; then cp -a /etc/skel/. "$home"/ 2>/dev/null || true; fi
    # A directory we just made (and the skeleton files in it), so this touches nothing that existed before.
    chown -R "$uid:$gid" "$home"
    chmod 0750 "$home"
  fi
  # Passwordless sudo when the base has sudo.
  if command -v sudo >/dev/null 2>&1; then
    mkdir -p /etc/sudoers.d
    echo "$user ALL=(ALL:ALL) NOPASSWD:ALL" >/etc/sudoers.d/berth-sandbox-user
    chmod 0440 /etc/sudoers.d/berth-sandbox-user
    if [ -f /etc/sudoers ] && ! grep -Eq '^[@#]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers; then
      echo '@includedir /etc/sudoers.d' >>/etc/sudoers
    fi
  fi
fi

if [ -n "$working_dir" ] && [ ! -e "$working_dir" ]; then
  mkdir -p "$working_dir"
  [ "$uid" = 0 ] || chown "$uid:$gid" "$working_dir"
fi

export HOME="$home" USER="$user" LOGNAME="$user" SHELL="$login_shell"
if [ -n "$working_dir" ] && [ -d "$working_dir" ] && cd "$working_dir" 2>/dev/null; then :; else cd "$home" 2>/dev/null || cd /; fi

if [ "$uid" = 0 ]; then
  exec "$@"
fi
if command -v setpriv >/dev/null 2>&1; then
  exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
fi
if [ "$server" = 1 ]; then
  # No setpriv in this base: the pinned Node drops to the user itself, then loads the server.
  shift # the node binary; "$@" is now the server script and its flags
  export BERTH_DROP_UID="$uid" BERTH_DROP_GID="$gid" BERTH_DROP_USER="$user"
  exec "$NODE" "$LAUNCHER" "$@"
fi
if command -v runuser >/dev/null 2>&1; then
  exec runuser -u "$user" -m -- "$@"
fi
die "cannot switch to $user: this image has neither setpriv nor runuser (util-linux)"
