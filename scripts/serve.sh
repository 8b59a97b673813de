#!/usr/bin/env bash
# Installs everything, creates the node in ./data on first run (SQLite + filesystem blobs), and serves it.
# Extra arguments go to `dmp serve` (e.g. --port 9000). DMP_DATA overrides the data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh server
data="${DMP_DATA:-./data}"
.venv/bin/dmp init --data "$data"
exec .venv/bin/dmp serve --data "$data" "$@"
