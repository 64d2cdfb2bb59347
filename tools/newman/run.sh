#!/usr/bin/env bash
# Runs the Postman collection (Offline-First-Sync.postman_collection.json, the
# original design's test flow) with newman against a fresh tidesync server:
# a release binary on a free port, SQLite in a temporary directory.
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

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A free port: bind port 0 and let the kernel choose (a tiny race with
# other processes is acceptable for a test run).
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"

JWT_SECRET="newman-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" \
  "$bin" serve --host 127.0.0.1 --port "$port" \
  --database-url "sqlite://$tmp/tidesync.db" >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  if curl -fsS "$base/health" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: tidesync exited before it was ready:" >&2
    cat "$tmp/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! curl -fsS "$base/health" >/dev/null 2>&1; then
  echo "run.sh: tidesync not healthy on $base after 10s:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi

status=0
"$here/node_modules/.bin/newman" run "$collection" --env-var "baseUrl=$base" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "run.sh: newman failed ($status); server log:" >&2
  tail -n 50 "$tmp/server.log" >&2
fi
exit "$status"
