#!/usr/bin/env bash
# Quick start, step 1: set up everything this machine lacks, then run the control plane on
# http://127.0.0.1:3000 (web UI, API) in the foreground. Ctrl-C stops it; sandboxes keep running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/berth.js up "$@"
