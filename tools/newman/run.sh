#!/usr/bin/env bash
# Runs the Postman collection (Offline-First-Sync.postman_collection.json, the
# original design's test flow) with newman against a fresh tidesync server:
# a release binary on a free port, SQLite in a temporary directory
# (tools/fresh-server.sh).
#
#   cargo build --release -p tidesync && tools/newman/run.sh
#
# TIDESYNC_BIN overrides the binary (default target/release/tidesync, from the
# repository root). Extra arguments go to newman (e.g. --verbose).
# Exits with newman's status.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${TIDESYNC_BIN:-$root/target/release/tidesync}"
collection="$root/Offline-First-Sync.postman_collection.json"

if [[ ! -x "$bin" ]]; then
  echo "run.sh: no tidesync binary at $bin (cargo build --release -p tidesync, or set TIDESYNC_BIN)" >&2
  exit 2
fi

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

source "$root/tools/fresh-server.sh"
start_fresh_server "$bin"

status=0
"$here/node_modules/.bin/newman" run "$collection" --env-var "baseUrl=$base" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run.sh: newman failed ($status); server log:" >&2
  tail -n 50 "$tmp/server.log" >&2
fi
exit "$status"
