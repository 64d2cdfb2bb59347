#!/usr/bin/env python3
"""Turns /metrics samples (files s.<unix time> in DIR) into an HTML page of
four SVG charts, the main panels of docs/grafana-dashboard.json. The bench
starts a new server per scenario, so counters restart: a negative delta is
read as a restart and that interval is skipped."""
import glob, html, os, re, sys
from collections import defaultdict

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

def parse(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        m = LINE.match(line.strip())
        if not m or line.startswith("#"):
            continue
        labels = tuple(sorted(LABEL.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out

def series(samples, name, by, where=lambda l: True):
    """Per-second rate of counter `name`, summed by label `by`."""
    res = defaultdict(list)
    for (t0, a), (t1, b) in zip(samples, samples[1:]):
        sums = defaultdict(float)
        restart = False
        for (n, labels), v in b.items():
            d = dict(labels)
            if n != name or not where(d):
                continue
            delta = v - a.get((n, labels), 0.0)
            if delta < 0:
                restart = True
            sums[d.get(by, name)] += delta / (t1 - t0)
        if not restart:
            for k, v in sums.items():
                res[k].append((t1, v))
    return res

def p99(samples, name, where):
    res = []
    for (t0, a), (t1, b) in zip(samples, samples[1:]):
        buckets = defaultdict(float)
        for (n, labels), v in b.items():
            d = dict(labels)
            if n == name + "_bucket" and where(d):
                buckets[float(d["le"])] += v - a.get((n, labels), 0.0)
        if not buckets or min(buckets.values()) < 0:
            continue
        les = sorted(buckets)
        total = buckets[les[-1]]
        if total <= 0:
            continue
        want = 0.99 * total
        prev_le, prev = 0.0, 0.0
        for le in les:
            if buckets[le] >= want:
                hi = le if le != float("inf") else prev_le
                frac = (want - prev) / max(buckets[le] - prev, 1e-9)
                res.append((t1, (prev_le + (hi - prev_le) * frac) * 1000))
                break
            prev_le, prev = le, buckets[le]
    return {"p99 ms": res}

def gauge(samples, name):
    res = defaultdict(list)
    for t, s in samples:
        total = sum(v for (n, _), v in s.items() if n == name)
        res[name.replace("tidesync_", "")].append((t, total))
    return res

COLORS = ["#3274d9", "#56a64b", "#e0b400", "#c4162a", "#8f3bb8", "#fa6400", "#37872d", "#1f60c4"]

def chart(title, data, t0, unit):
    w, h, pad = 660, 300, 48
    pts = [p for s in data.values() for p in s]
    ymax = max([v for _, v in pts] + [1e-9]) * 1.1
    tmax = max([t for t, _ in pts] + [t0 + 1])
    x = lambda t: pad + (t - t0) / (tmax - t0) * (w - pad - 10)
    y = lambda v: h - 30 - v / ymax * (h - 60)
    svg = [f'<svg width="{w}" height="{h}" style="background:#181b1f">',
           f'<text x="10" y="20" fill="#ccc" font-size="14">{html.escape(title)}</text>']
    for i in range(5):
        v = ymax * i / 4
        svg.append(f'<line x1="{pad}" x2="{w-10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#333"/>')
        svg.append(f'<text x="4" y="{y(v)+4:.1f}" fill="#999" font-size="10">{v:,.0f}</text>')
    svg.append(f'<text x="{w-60}" y="{h-8}" fill="#999" font-size="10">{tmax-t0:.0f} s</text>')
    for i, (name, s) in enumerate(sorted(data.items())):
        if not s:
            continue
        c = COLORS[i % len(COLORS)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s)
        svg.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{path}"/>')
        svg.append(f'<text x="{pad + 140*i}" y="{h-8}" fill="{c}" font-size="11">{html.escape(name)} {unit}</text>')
    svg.append("</svg>")
    return "".join(svg)

def main():
    d = sys.argv[1]
    files = sorted(glob.glob(os.path.join(d, "s.*")), key=lambda f: float(f.split("s.", 1)[1]))
    samples = [(float(f.split("s.", 1)[1]), parse(f)) for f in files]
    if len(samples) < 2:
        sys.exit("fewer than two samples: was the server's METRICS_ADDR scraped?")
    t0 = samples[0][0]
    charts = [
        chart("Requests/s by route", series(samples, "tidesync_http_requests_total", "route"), t0, "req/s"),
        chart("Sync latency p99", p99(samples, "tidesync_http_request_duration_seconds",
                                      lambda l: l.get("route") == "/api/sync"), t0, ""),
        chart("Push operations/s by outcome", series(samples, "tidesync_push_operations_total", "outcome"), t0, "ops/s"),
        chart("SQLite writer queue depth", gauge(samples, "tidesync_writer_queue_depth"), t0, ""),
    ]
    print('<html><body style="margin:0;background:#111;font-family:sans-serif">'
          '<div style="color:#ddd;padding:8px 12px;font-size:16px">tidesync — push, update and steady '
          'state (8 and 32 devices) bench on SQLite, /metrics scraped every second</div>'
          '<div style="display:grid;grid-template-columns:680px 680px;gap:10px;padding:10px">'
          + "".join(f"<div>{c}</div>" for c in charts) + "</div></body></html>")

main()
