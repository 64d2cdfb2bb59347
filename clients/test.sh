#!/usr/bin/env bash
# Everything for the client SDK and the demo, from the repo root or anywhere:
# npm ci, strict type check, the generated schema types compared with a fresh
# generation, SDK unit tests (among them: the SDK's built-in schema equals
# crates/protocol/schema/bucket-list.json), library build, npm pack, core
# bundle size, a reproducible demo rebuild compared with the committed
# clients/demo/dist, the React example's build, then the Chromium end-to-end
# tests against the tidesync binary (TIDESYNC_BIN, default
# target/release/tidesync).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cd "$here"
export TIDESYNC_BIN="${TIDESYNC_BIN:-$repo/target/release/tidesync}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMIUM

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp" "$here/.build"' EXIT

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== type check (tsc --strict --noEmit)"
npm run --silent typecheck

echo "== generated schema types (test/schema-types/*.ts) are what schema-types gives"
for name in bucket-list notes; do
  node js/scripts/schema-types.mjs "$repo/crates/protocol/schema/$name.json" --out "$tmp/$name.ts"
  if ! diff -u "js/test/schema-types/$name.ts" "$tmp/$name.ts" >&2; then
    echo "FAIL: clients/js/test/schema-types/$name.ts differs from the generator's output." >&2
    echo "      Run 'npm run --silent schema-types -w @tidesync/client -- ../../crates/protocol/schema/$name.json > js/test/schema-types/$name.ts' in clients/." >&2
    exit 1
  fi
done
echo "generated types match crates/protocol/schema/{bucket-list,notes}.json"

echo "== SDK unit tests"
node scripts/run-tests.mjs unit

echo "== library build and npm pack"
npm run --silent build -w @tidesync/client
(cd js && npm pack --silent --pack-destination "$tmp" >/dev/null)
tarball="$(ls "$tmp"/tidesync-client-*.tgz)"
# (listed once into a variable: `tar | grep -q` would fail under pipefail when grep exits early)
listing="$(tar -tzf "$tarball")"
for f in package/dist/index.js package/dist/index.d.ts package/dist/react.js package/dist/react.d.ts package/scripts/schema-types.mjs package/README.md; do
  grep -qx "$f" <<<"$listing" || { echo "FAIL: $f missing from $tarball" >&2; exit 1; }
done
echo "packed $(basename "$tarball") ($(wc -l <<<"$listing") files)"

echo "== core bundle size"
node js/scripts/size.mjs

echo "== demo: rebuild and compare with the committed clients/demo/dist"
node demo/build.mjs "$tmp/demo-dist" >/dev/null
if ! diff -r "$tmp/demo-dist" demo/dist >/dev/null; then
  echo "FAIL: clients/demo/dist differs from a fresh build of clients/demo/src." >&2
  echo "      Run 'node clients/demo/build.mjs' and commit clients/demo/dist." >&2
  diff -rq "$tmp/demo-dist" demo/dist >&2 || true
  exit 1
fi
echo "clients/demo/dist matches a fresh build"

echo "== React example: build (examples/react/build.mjs; its browser test builds it again)"
node examples/react/build.mjs "$tmp/react-example"

if [ ! -x "$CHROMIUM" ]; then
  echo "NOTE: browser tests skipped: no Chromium at $CHROMIUM (apt-get install -y chromium)"
  exit 0
fi
if [ ! -x "$TIDESYNC_BIN" ]; then
  echo "FAIL: no tidesync binary at $TIDESYNC_BIN (cargo build --release, or set TIDESYNC_BIN)" >&2
  exit 1
fi
echo "== browser tests (Chromium at $CHROMIUM, server $TIDESYNC_BIN)"
node scripts/run-tests.mjs e2e
