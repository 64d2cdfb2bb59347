// In Chromium against the real server (random port, fresh database):
//  1. p50/p99 of a local create and a local update (the promise resolving =
//     durable in IndexedDB) with 10,000 items stored;
//  2. time for 1,000 offline operations to sync once the API is reachable again;
//  3. time to pull and apply 10,000 records into an empty client;
//  4. the core bundle size (min+gzip).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pct, seedItems } from './bench-data.js';
import { CLIENTS, haveChromium, launch, register, setApiBlocked, startServer, CHROMIUM, BIN } from './harness.js';
import { buildSdkPage, drained, inPage, online, sdkPage } from './pages.js';

const N = 10_000;

const ms = (x: number) => `${x.toFixed(2)} ms`;

export async function main(): Promise<void> {
  if (!haveChromium()) throw new Error(`no Chromium at ${CHROMIUM}`);
  console.log(`server: ${BIN}\nbrowser: ${execFileSync(CHROMIUM, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()}`);
  const server = await startServer(await buildSdkPage());
  const browser = await launch();
  try {
    const u = await register(server.url, `bench-${Date.now()}@example.com`);
    await seedItems(server.url, u.token, N);

    // 3. Pull 10,000 records into an empty client.
    const ctx = await browser.newContext({ bypassCSP: true });
    const page = await sdkPage(ctx, server.url, u.token, 'bench');
    const pull = await inPage(page, async (c) => {
      const t0 = performance.now();
      await c.sync();
      return { ms: performance.now() - t0, items: (await c.list('item')).length };
    });
    // The same 10 pages fetched and parsed without applying them: the network and server share.
    const net = await page.evaluate(async (token) => {
      const t0 = performance.now();
      let cursor: string | null = null;
      for (let n = 0; n < 100; n++) {
        const res = await fetch('/api/sync', { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ deviceId: 'bench-net', lastSyncTimestamp: cursor, changes: [], limit: 1000 }) });
        const j = (await res.json()) as { data: { syncTimestamp: string; hasMore: boolean } };
        cursor = j.data.syncTimestamp;
        if (!j.data.hasMore) break;
      }
      return performance.now() - t0;
    }, u.token);
    console.log(`\n10,000 pulled records into an empty client: sync() ${ms(pull.ms)} (${pull.items} items, 10 pages of 1000)`);
    console.log(`  of which fetching + parsing the same 10 pages: ${ms(net)}; applying them (IndexedDB + memory): ~${ms(pull.ms - net)}`);

    // 1. Local writes with 10,000 items stored, API blocked so only local work is timed.
    await setApiBlocked(ctx, true);
    const writes = await inPage(page, async (c) => {
      const items = await c.list('item');
      const spaceId = items[0]!.spaceId!;
      const create: number[] = [];
      const update: number[] = [];
      for (let i = 0; i < 500; i++) {
        const t0 = performance.now();
        await c.create('item', { spaceId, title: `bench create ${i}`, type: 'book', bookId: `OL${i}W` });
        create.push(performance.now() - t0);
      }
      for (let i = 0; i < 500; i++) {
        const t0 = performance.now();
        await c.update('item', items[i * 7]!.id, { notes: `bench update ${i}`, isCompleted: i % 2 === 0 });
        update.push(performance.now() - t0);
      }
      return { create, update, stored: items.length, pending: c.status.pending };
    });
    console.log(`local writes with ${writes.stored} items stored (API blocked, each awaited; durability 'strict'):`);
    console.log(`  create: p50 ${ms(pct(writes.create, 50))}  p99 ${ms(pct(writes.create, 99))}  max ${ms(Math.max(...writes.create))}  (n=500)`);
    console.log(`  update: p50 ${ms(pct(writes.update, 50))}  p99 ${ms(pct(writes.update, 99))}  max ${ms(Math.max(...writes.update))}  (n=500)`);
    const both = [...writes.create, ...writes.update];
    console.log(`  all:    p50 ${ms(pct(both, 50))}  p99 ${ms(pct(both, 99))}`);

    // 2. Those 1,000 offline operations, once the API is back.
    if (writes.pending !== 1000) throw new Error(`expected 1000 pending, got ${writes.pending}`);
    await setApiBlocked(ctx, false);
    const t0 = Date.now();
    await online(page);
    await drained(page, 60_000);
    console.log(`1,000 offline operations synced in ${Date.now() - t0} ms (from the 'online' event to an empty outbox)`);

    // Online writes, for comparison: the sync runs in the background meanwhile.
    const live = await inPage(page, async (c) => {
      const spaceId = (await c.list('space'))[0]!.id;
      const t: number[] = [];
      for (let i = 0; i < 300; i++) {
        const t0 = performance.now();
        await c.create('item', { spaceId, title: `online create ${i}` });
        t.push(performance.now() - t0);
      }
      return t;
    });
    console.log(`online creates (sync running in the background): p50 ${ms(pct(live, 50))}  p99 ${ms(pct(live, 99))}  (n=300)`);
    await drained(page, 60_000);
    await ctx.close();
  } finally {
    await browser.close();
    await server.stop();
  }
  // 4. The core bundle.
  console.log(execFileSync(process.execPath, [join(CLIENTS, 'js', 'scripts', 'size.mjs')]).toString().trim());
}
