#!/usr/bin/env bash
# Installs everything, creates the node in ./data on first run (SQLite + filesystem blobs), and serves it from one
# worker process per core (`dmp serve --workers N`, N = the cores this process may use) unless --workers is given.
# Extra arguments go to `dmp serve` (e.g. --port 9000, --workers 1). DMP_DATA overrides the data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh server
data="${DMP_DATA:-./data}"
.venv/bin/dmp init --data "$data"
cores=$(nproc)
workers=(--workers "$(( cores > 64 ? 64 : cores ))")   # dmp serve takes 1 to 64
for arg in "$@"; do
    case "$arg" in --workers|--workers=*) workers=() ;; esac
done
exec .venv/bin/dmp serve --data "$data" "${workers[@]}" "$@"
