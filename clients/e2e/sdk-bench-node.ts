// SDK benchmark IN NODE with fake-indexeddb (not a browser: fake-indexeddb is a pure-JS IndexedDB
// in memory, so absolute figures differ from Chromium's; the Chromium version is sdk-bench-chromium.ts).
// Not a test; run by hand:  node clients/e2e/sdk-bench.mjs node [records=100000]
//
//  1. N records (1 space + N-1 items, pages of 1000) pulled into an empty client: total time, and the
//     longest the event loop was blocked meanwhile (perf_hooks.monitorEventLoopDelay: the "long task").
//  2. With 10,000 items stored in one space and a subscription on that space (as an app shows it):
//     p50/p99 of a local create and of a local update (the promise resolving = committed), server offline.
// The "server" is a stub answering prebuilt pages (a real server's work is not measured here).
import { IDBFactory } from 'fake-indexeddb';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createClient, indexedDbStorage, type Client } from '../js/src/index.js';

const SPACE = '00000000-0000-4000-8000-000000000001';
const PAGE = 1000;

function item(i: number) {
  const t = new Date(Date.parse('2026-01-01T00:00:00Z') + i).toISOString();
  return {
    id: `00000000-0000-4000-a000-${String(i).padStart(12, '0')}`,
    userId: 'u1', createdAt: t, updatedAt: t, deletedAt: null, deviceId: 'seeder',
    spaceId: SPACE, categoryId: null, title: `Item number ${i}`, description: null, notes: 'seeded for the bench',
    type: 'movie', movieId: String(1000 + i), bookId: null, placeId: null, isCompleted: i % 3 === 0, completedAt: null,
    priority: null, order: i, tags: null,
  };
}

/** A stub of POST /api/sync serving `n` records in pages of 1000, prebuilt as JSON text; offline when told. */
function stub(n: number) {
  const space = { id: SPACE, userId: 'u1', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', deletedAt: null, deviceId: 'seeder', name: 'Bench', description: null, color: null, icon: null, order: null };
  const pages = new Map<string | null, string>();
  let cursor: string | null = null;
  for (let at = 0; at < n; at += PAGE) {
    const items = [];
    for (let i = Math.max(at, 1); i < Math.min(n, at + PAGE); i++) items.push(item(i));
    const next = `c${at + PAGE}`;
    pages.set(cursor, JSON.stringify({ success: true, data: { acknowledged: [], serverUpdates: { spaces: at === 0 ? [space] : [], categories: [], items }, syncTimestamp: next, hasMore: at + PAGE < n } }));
    cursor = next;
  }
  const head = JSON.stringify({ success: true, data: { acknowledged: [], serverUpdates: { spaces: [], categories: [], items: [] }, syncTimestamp: cursor, hasMore: false } });
  const s = {
    offline: false,
    fetch: async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (s.offline) throw new TypeError('Failed to fetch (offline)');
      const body = JSON.parse(String(init?.body ?? '{}')) as { lastSyncTimestamp: string | null; changes: unknown[] };
      if (body.changes?.length) throw new TypeError('the bench stub takes no changes');
      return new Response(pages.get(body.lastSyncTimestamp) ?? head, { status: 200, headers: { 'Content-Type': 'application/json' } });
    },
  };
  return s;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

async function open(n: number, db: string): Promise<{ c: Client; server: ReturnType<typeof stub> }> {
  const server = stub(n);
  const c = await createClient({ url: 'http://bench.test', token: 't', fetch: server.fetch as typeof fetch, storage: indexedDbStorage({ name: db, indexedDB: idb }), live: false });
  return { c, server };
}

const idb = new IDBFactory();

async function pull(n: number): Promise<void> {
  const { c } = await open(n, `pull-${n}`);
  let progressEvents = 0;
  c.onStatus((s) => s.progress && progressEvents++);
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  await c.sync();
  const took = performance.now() - t0;
  h.disable();
  const count = (await c.list('item')).length + (await c.list('space')).length;
  console.log(`${n.toLocaleString('en')} records pulled into an empty client: ${(took / 1000).toFixed(2)} s (${count.toLocaleString('en')} stored and listed; ${progressEvents} progress updates)`);
  console.log(`  event loop blocked at most ${ms(h.max / 1e6)} (p99 ${ms(h.percentile(99) / 1e6)}, mean ${ms(h.mean / 1e6)}) during the pull`);
  await c.close();
}

async function writes(): Promise<void> {
  const { c, server } = await open(10_001, 'writes');
  await c.sync();
  const items = await c.list('item', { spaceId: SPACE });
  let calls = 0;
  const off = c.subscribe('item', { spaceId: SPACE }, () => calls++);
  server.offline = true;
  await c.sync().catch(() => undefined); // the first failure schedules the retry timer; writes then only write
  const create: number[] = [];
  const update: number[] = [];
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    await c.create('item', { spaceId: SPACE, title: `bench create ${i}`, type: 'book', bookId: `OL${i}W` });
    create.push(performance.now() - t0);
  }
  for (let i = 0; i < 500; i++) {
    const t0 = performance.now();
    await c.update('item', items[i * 7]!.id, { notes: `bench update ${i}`, isCompleted: i % 2 === 0 });
    update.push(performance.now() - t0);
  }
  await new Promise((r) => setTimeout(r, 10));
  off();
  const both = [...create, ...update];
  console.log(`local writes with ${items.length.toLocaleString('en')} items stored in one space, one subscription on it (${calls} deliveries), server offline:`);
  console.log(`  create: p50 ${ms(pct(create, 50))}  p99 ${ms(pct(create, 99))}  max ${ms(Math.max(...create))}  (n=500)`);
  console.log(`  update: p50 ${ms(pct(update, 50))}  p99 ${ms(pct(update, 99))}  max ${ms(Math.max(...update))}  (n=500)`);
  console.log(`  all:    p50 ${ms(pct(both, 50))}  p99 ${ms(pct(both, 99))}  (pending ${c.status.pending})`);
  await c.close();
}

export async function main(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 100_000);
  console.log(`node ${process.version}, fake-indexeddb (in-memory, pure JS): NOT a browser`);
  await writes();
  await pull(n);
}
