// Smoke check (not a benchmark) for a running pouchdb-server:
//   node bench/peers/pouchdb-smoke.mjs [BASE_URL] [BATCHES] [DOCS_PER_BATCH]
// Creates a fresh database, pushes BATCHES x DOCS_PER_BATCH new docs through
// _bulk_docs (one request at a time), updates them all once using the _revs it
// got back, pulls everything back through _changes?since= following last_seq,
// deletes the database, and prints wall-clock times. Exits non-zero on any error.
const base = (process.argv[2] || 'http://127.0.0.1:5984').replace(/\/$/, '');
const batches = Number(process.argv[3] || 10);
const perBatch = Number(process.argv[4] || 100);
const db = `${base}/smoke_${Date.now()}`;

async function req(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} -> ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

function checkBulk(results, n) {
  if (!Array.isArray(results) || results.length !== n) throw new Error('bad _bulk_docs reply');
  for (const r of results) if (!r.ok) throw new Error(`doc ${r.id}: ${r.error} ${r.reason}`);
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

await req('PUT', db);
const revs = new Map();

let t0 = process.hrtime.bigint();
for (let b = 0; b < batches; b++) {
  const docs = [];
  for (let i = 0; i < perBatch; i++) {
    docs.push({ _id: `doc-${b}-${i}`, batch: b, i, body: 'x'.repeat(100) });
  }
  const out = await req('POST', `${db}/_bulk_docs`, { docs });
  checkBulk(out, docs.length);
  for (const r of out) revs.set(r.id, r.rev);
}
const insertMs = ms(t0);

t0 = process.hrtime.bigint();
const ids = [...revs.keys()];
for (let b = 0; b < batches; b++) {
  const docs = ids.slice(b * perBatch, (b + 1) * perBatch)
    .map((id) => ({ _id: id, _rev: revs.get(id), updated: true, body: 'y'.repeat(100) }));
  const out = await req('POST', `${db}/_bulk_docs`, { docs });
  checkBulk(out, docs.length);
  for (const r of out) revs.set(r.id, r.rev);
}
const updateMs = ms(t0);

t0 = process.hrtime.bigint();
let since = 0;
let pulled = 0;
for (;;) {
  const out = await req('GET', `${db}/_changes?since=${encodeURIComponent(JSON.stringify(since))}&limit=${perBatch}&include_docs=true`);
  if (out.results.length === 0) break;
  for (const r of out.results) {
    if (!r.doc || r.doc._rev !== revs.get(r.id)) throw new Error(`stale change for ${r.id}`);
  }
  pulled += out.results.length;
  since = out.last_seq;
}
const pullMs = ms(t0);
if (pulled !== ids.length) throw new Error(`pulled ${pulled} changes, expected ${ids.length}`);

await req('DELETE', db);
const n = batches * perBatch;
console.log(`insert: ${batches} x _bulk_docs(${perBatch} new docs)   ${insertMs.toFixed(1)} ms  (${(n / insertMs * 1000).toFixed(0)} docs/s)`);
console.log(`update: ${batches} x _bulk_docs(${perBatch} docs w/ _rev) ${updateMs.toFixed(1)} ms  (${(n / updateMs * 1000).toFixed(0)} docs/s)`);
console.log(`pull:   _changes limit=${perBatch} include_docs, ${pulled} changes    ${pullMs.toFixed(1)} ms  (last_seq ${since})`);
