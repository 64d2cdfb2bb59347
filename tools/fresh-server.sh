# Sourced by tools/newman/run.sh and tools/schemathesis/run.sh: starts a fresh
# tidesync server (the binary on a free port, SQLite in a temporary directory)
# and stops it and removes the directory when the script exits.
#
#   start_fresh_server BIN [NAME=VALUE ...]   # extra environment for the server
#
# Sets `base` (http://127.0.0.1:PORT), `tmp` (the directory, also free for the
# caller's files) and `server_pid`; the server's output is in $tmp/server.log.
# Exits the script when the server does not become healthy within 10 s.

tmp="$(mktemp -d)"
server_pid=""
_fresh_server_cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap _fresh_server_cleanup EXIT

start_fresh_server() {
  local bin="$1"
  shift
  local port
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  base="http://127.0.0.1:$port"
  env JWT_SECRET="fresh-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" "$@" \
    "$bin" serve --host 127.0.0.1 --port "$port" \
    --database-url "sqlite://$tmp/tidesync.db" >"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/health" >/dev/null 2>&1 && return 0
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "tidesync exited before it was ready:" >&2
      cat "$tmp/server.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "tidesync not healthy on $base after 10s:" >&2
  cat "$tmp/server.log" >&2
  exit 1
}
