#!/usr/bin/env bash
# Draws the dashboard's main panels over a bench run, for docs/images/metrics-bench.png:
# the bench's server inherits METRICS_ADDR, /metrics is scraped every second,
# docs/tools/metrics-chart.py turns the samples into an SVG page and Chromium
# screenshots it. Needs release builds of tidesync and tidesync-bench, python3
# and /usr/bin/chromium. Usage: docs/tools/metrics-snapshot.sh [OUT.png]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$repo/docs/images/metrics-bench.png}"
addr="127.0.0.1:${METRICS_PORT:-19464}"
tmp="$(mktemp -d)"
trap 'kill "$scraper" 2>/dev/null || true; rm -rf "$tmp"' EXIT

(
  i=0
  while true; do
    curl -fs "http://$addr/metrics" -o "$tmp/s.$(date +%s.%N)" || true
    sleep 1
  done
) &
scraper=$!

METRICS_ADDR="$addr" "$repo/target/release/tidesync-bench" \
  --only push,update,steady --devices 8,32 --steady-secs 15 >"$tmp/bench.txt"
kill "$scraper"
cat "$tmp/bench.txt"
python3 "$repo/docs/tools/metrics-chart.py" "$tmp" >"$tmp/page.html"
/usr/bin/chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1400,900 --screenshot="$out" "file://$tmp/page.html" 2>/dev/null
echo "wrote $out"
