#!/usr/bin/env bash
# Builds Berth's offline Debian 12 (bookworm) base image from Debian packages with mmdebstrap and loads
# it into Docker with `docker import`. No container registry is needed: packages come from the apt
# sources this host already uses (read from /etc/apt), so no mirror address lives in this repository.
#
# Usage: image/bootstrap-base.sh [--tag NAME:TAG] [--force] [--sources FILE]
#   --tag      image to create (default: $SANDBOX_BASE_CONTAINER_IMAGE or berth-base:bookworm)
#   --force    rebuild even when the image already exists
#   --sources  an apt sources file (one-line or deb822) to use instead of the host's bookworm entries
#
# Progress goes to stderr as "[berth-base N +Ss] <mmdebstrap line>" (line number, seconds since start);
# the image ID is printed last on stdout.
set -euo pipefail

SUITE=bookworm
tag="${SANDBOX_BASE_CONTAINER_IMAGE:-berth-base:bookworm}"
force=0
sources_override=""

# What an agent expects to find in a sandbox. Node comes from the Berth layer as well, but the agent's own
# shell gets Debian's nodejs/npm so `node` and `npm` work like on a developer machine.
PACKAGES=(
  bash coreutils util-linux findutils grep sed procps sudo less vim-tiny
  ca-certificates curl git jq ripgrep unzip xz-utils iproute2
  python3 python3-pip python3-venv python3-ipython python-is-python3
  nodejs npm
)

die() {
  echo "berth-base: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
  --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
  --tag=*) tag="${1#--tag=}"; shift ;;
  --force) force=1; shift ;;
  --sources) sources_override="${2:?--sources needs a file}"; shift 2 ;;
  --sources=*) sources_override="${1#--sources=}"; shift ;;
  -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
  *) die "unknown argument: $1 (see --help)" ;;
  esac
done

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "the Docker engine is not reachable (start it with 'sudo systemctl start docker' or 'sudo dockerd &'; DOCKER_HOST is honoured)"

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "berth-base: $tag already exists ($(docker image inspect --format '{{.Id}}' "$tag")); use --force to rebuild" >&2
  docker image inspect --format '{{.Id}}' "$tag"
  exit 0
fi

command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"

workdir="$(mktemp -d "${TMPDIR:-/tmp}/berth-base.XXXXXX")"
trap 'rm -rf "$workdir"' EXIT
sources="$workdir/sources.list"

# Converts apt sources (one-line *.list or deb822 *.sources) to one-line entries, keeping the enabled
# "deb" entries whose suite is bookworm or one of its pockets (bookworm-updates, bookworm-security, ...).
# Third-party repositories are left out: their keys and pins belong to the host, not to the image.
host_sources_to_lines() {
  local f
  for f in "$@"; do
    [ -r "$f" ] || continue
    case "$f" in
    *.sources)
      awk -v suite="$SUITE" '
        function flush(   n, m, i, j, uris, suites, opts) {
          if (types ~ /(^| )deb( |$)/ && enabled != "no" && uri != "" && sts != "") {
            opts = (signed != "" ? " [signed-by=" signed "]" : "")
            n = split(uri, uris, " "); m = split(sts, suites, " ")
            for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
              if (suites[j] == suite || index(suites[j], suite "-") == 1)
                print "deb" opts " " uris[i] " " suites[j] " " (comps == "" ? "main" : comps)
          }
          types = uri = sts = comps = signed = enabled = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        {
          key = $1; sub(/:$/, "", key); $1 = ""; sub(/^[ \t]+/, "")
          k = tolower(key)
          if (k == "types") types = $0
          else if (k == "uris") uri = $0
          else if (k == "suites") sts = $0
          else if (k == "components") comps = $0
          else if (k == "signed-by") signed = $0
          else if (k == "enabled") enabled = tolower($0)
        }
        END { flush() }
      ' "$f"
      ;;
    *)
      awk -v suite="$SUITE" '
        $1 != "deb" { next }
        {
          i = 2
          if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          s = $(i + 1)
          if (s == suite || index(s, suite "-") == 1) print
        }
      ' "$f"
      ;;
    esac
  done
}

if [ -n "$sources_override" ]; then
  [ -r "$sources_override" ] || die "cannot read --sources file $sources_override"
  host_sources_to_lines "$sources_override" >"$sources"
else
  shopt -s nullglob
  host_sources_to_lines /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources >"$sources"
  shopt -u nullglob
fi
[ -s "$sources" ] ||
  die "no enabled Debian $SUITE apt source found in /etc/apt; pass one with --sources FILE"

# Carry over the host's apt acquire settings that decide whether downloads work at all (proxies, and
# release-file date checks for snapshot mirrors).
aptopts=()
while IFS= read -r line; do
  aptopts+=("--aptopt=$line")
done < <(apt-config dump 2>/dev/null | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy)[ :]' || true)

# Keep the image small: no docs, man pages, info pages or translations (copyright files stay).
dpkgopts=(
  '--dpkgopt=path-exclude=/usr/share/doc/*'
  '--dpkgopt=path-include=/usr/share/doc/*/copyright'
  '--dpkgopt=path-exclude=/usr/share/man/*'
  '--dpkgopt=path-exclude=/usr/share/info/*'
  '--dpkgopt=path-exclude=/usr/share/locale/*'
  '--dpkgopt=path-include=/usr/share/locale/locale.alias'
  '--dpkgopt=path-exclude=/usr/share/lintian/*'
)

# Leave no host identity or package caches behind; Docker provides resolv.conf, hostname and hosts.
# shellcheck disable=SC2016 # $1 is expanded by mmdebstrap when it runs the hook
cleanup_hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log \
  "$1"/var/log/alternatives.log "$1"/root/.cache "$1"/tmp/* && : > "$1"/etc/resolv.conf && rm -f "$1"/etc/hostname'

started=$(date +%s)
step=0
progress() {
  local line
  while IFS= read -r line; do
    step=$((step + 1))
    printf '[berth-base %d +%ss] %s\n' "$step" "$(($(date +%s) - started))" "$line" >&2
  done
}

echo "berth-base: building $tag from Debian $SUITE ($(wc -l <"$sources") apt source line(s) from the host)" >&2
imported="$workdir/image-id"
# mmdebstrap writes the root filesystem as a tar stream to stdout; docker import reads it from stdin.
# Its stderr (progress) goes through the numbering filter.
{
  mmdebstrap --variant=minbase --format=tar \
    --include="$(
      IFS=,
      echo "${PACKAGES[*]}"
    )" \
    "${aptopts[@]}" "${dpkgopts[@]}" \
    --customize-hook="$cleanup_hook" \
    "$SUITE" - "$sources" 2> >(progress) |
    docker import \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'LABEL berth.managed=true' \
      --change 'LABEL berth.kind=base-image' \
      --change "LABEL berth.base.suite=$SUITE" \
      --change 'CMD ["/bin/bash"]' \
      --message "berth base image: Debian $SUITE via mmdebstrap" \
      - "$tag" >"$imported"
} || die "bootstrap failed (see the mmdebstrap output above)"

size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "berth-base: built $tag in $(($(date +%s) - started))s, $((size / 1024 / 1024)) MiB" >&2
cat "$imported"
