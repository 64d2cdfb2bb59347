#!/usr/bin/env bash
# Install (once) and run pouchdb-server, the CouchDB-protocol peer that the
# tidesync benchmark is compared against. See bench/peers/README.md.
#
#   bench/peers/pouchdb.sh [PORT] [DATA_DIR]
#
#   PORT      TCP port on 127.0.0.1 (default 5984)
#   DATA_DIR  directory for the LevelDB files; created if missing and should be
#             fresh/empty (default: a new `mktemp -d` directory, printed on
#             stderr; the caller removes it)
#
# Runs in the foreground: the script `exec`s node, so the PID of this script is
# the server's PID and killing it (SIGTERM, SIGINT or SIGKILL) stops the server.
# Ready when `curl -fsS http://127.0.0.1:PORT/` answers.
#
# Environment:
#   POUCHDB_LOG_LEVEL  debug|info|warning|error|none (default warning; per-request
#                      lines are logged at "info", so the default drops them).
#   POUCHDB_INSTALL_ONLY=1  install and exit without starting the server.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEER_DIR="$HERE/pouchdb"
PIN_VERSION="4.2.0"   # keep in sync with pouchdb/package.json
PORT="${1:-5984}"
DATA_DIR="${2:-}"
LOG_LEVEL="${POUCHDB_LOG_LEVEL:-warning}"

if ! [[ "$PORT" =~ ^[0-9]+$ ]]; then
    echo "pouchdb.sh: port must be a number, got '$PORT'" >&2
    exit 2
fi

command -v node >/dev/null || { echo "pouchdb.sh: node not found (Node.js >= 20 needed)" >&2; exit 1; }
command -v npm  >/dev/null || { echo "pouchdb.sh: npm not found" >&2; exit 1; }

# --- install (idempotent) ---------------------------------------------------
# The stamp records the lockfile it was installed from, so a changed lockfile
# triggers a reinstall and an unchanged one skips npm entirely.
STAMP="$PEER_DIR/node_modules/.tidesync-installed"
lock_sum() { sha256sum "$PEER_DIR/package-lock.json" | cut -d' ' -f1; }

installed_ok() {
    [ -f "$STAMP" ] || return 1
    [ "$(cat "$STAMP")" = "$(lock_sum)" ] || return 1
    [ -f "$PEER_DIR/node_modules/pouchdb-server/package.json" ] || return 1
    local v
    v="$(node -p "require('$PEER_DIR/node_modules/pouchdb-server/package.json').version")"
    [ "$v" = "$PIN_VERSION" ]
}

if ! installed_ok; then
    echo "pouchdb.sh: installing pouchdb-server@$PIN_VERSION into $PEER_DIR" >&2
    # npm ci: exact versions from the committed lockfile. The directory's
    # .npmrc sets ignore-scripts (leveldown loads its bundled N-API prebuild).
    (cd "$PEER_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
    # Fail now, not at the first request, if the native LevelDB binding is unusable.
    (cd "$PEER_DIR" && node -e "require('leveldown')") \
        || { echo "pouchdb.sh: leveldown native binding failed to load" >&2; exit 1; }
    lock_sum > "$STAMP"
fi

if [ "${POUCHDB_INSTALL_ONLY:-0}" = 1 ]; then
    exit 0
fi

# --- data dir and config ----------------------------------------------------
if [ -z "$DATA_DIR" ]; then
    DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tidesync-pouchdb.XXXXXX")"
    echo "pouchdb.sh: data dir $DATA_DIR (remove it when done)" >&2
fi
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"

# express-pouchdb reads /_config from this file; the log file lives in the data
# dir (not the caller's cwd), and the level drops per-request "info" lines.
CONFIG="$DATA_DIR/config.json"
node -e '
const fs = require("fs");
const [file, log, level] = process.argv.slice(1);
let c = {};
try { c = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) {}
c.log = Object.assign({}, c.log, { file: log, level: level });
fs.writeFileSync(file, JSON.stringify(c, null, 2) + "\n");
' "$CONFIG" "$DATA_DIR/log.txt" "$LOG_LEVEL"

echo "pouchdb.sh: pouchdb-server $PIN_VERSION on http://127.0.0.1:$PORT/ (LevelDB in $DATA_DIR, log level $LOG_LEVEL)" >&2

# cwd = data dir so nothing (pouch__all_dbs__, stray files) lands in the repo.
cd "$DATA_DIR"
# --dir without --in-memory/--sqlite/--level-backend => pouchdb-adapter-leveldb
# (leveldown, on disk). -n: don't tail the log file to stdout.
exec node "$PEER_DIR/node_modules/pouchdb-server/bin/pouchdb-server" \
    --host 127.0.0.1 \
    --port "$PORT" \
    --dir "$DATA_DIR" \
    --config "$CONFIG" \
    --no-stdout-logs
