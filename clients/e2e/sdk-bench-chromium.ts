// SDK benchmark IN CHROMIUM against the real server (random port, fresh SQLite database). Not a test;
// run by hand:  TIDESYNC_BIN=... CHROMIUM=/usr/bin/chromium node clients/e2e/sdk-bench.mjs chromium [records=100000]
//
//  1. With 10,000 items stored in one space and a subscription on that space (as an app shows it):
//     p50/p99 of a local create and of a local update (the promise resolving = committed in IndexedDB
//     with durability 'strict'), the network off (context.setOffline).
//  2. N records (1 space + N-1 items) pulled into an empty client: time of sync(), the same pages
//     fetched and parsed without applying them (the network and server share), and the long tasks
//     (PerformanceObserver 'longtask') meanwhile: how many, the longest.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pct, seedItems } from './bench-data.js';
import { BIN, CHROMIUM, CLIENTS, haveChromium, launch, register, startServer } from './harness.js';
import { buildSdkPage, inPage, sdkPage } from './pages.js';

const ms = (x: number) => `${x.toFixed(2)} ms`;

export async function main(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 100_000);
  if (!haveChromium()) throw new Error(`no Chromium at ${CHROMIUM}`);
  console.log(`server: ${BIN}\nbrowser: ${execFileSync(CHROMIUM, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()}`);
  const server = await startServer(await buildSdkPage());
  const browser = await launch();
  try {
    // 1. Local writes with 10,000 items stored.
    {
      const u = await register(server.url, `sdk-bench-w-${Date.now()}@example.com`);
      await seedItems(server.url, u.token, 10_000);
      const ctx = await browser.newContext({ bypassCSP: true });
      const page = await sdkPage(ctx, server.url, u.token, 'bench-writes');
      await inPage(page, async (c) => c.sync());
      await ctx.setOffline(true);
      const w = await inPage(page, async (c) => {
        const spaceId = '00000000-0000-4000-8000-000000000001'; // SEED_SPACE (this function runs in the page)
        const items = await c.list('item', { spaceId });
        let deliveries = 0;
        const off = c.subscribe('item', { spaceId }, () => deliveries++);
        await c.sync().catch(() => undefined);
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
        off();
        return { create, update, stored: items.length, deliveries, pending: c.status.pending };
      });
      const both = [...w.create, ...w.update];
      console.log(`\nlocal writes with ${w.stored.toLocaleString('en')} items stored in one space, a subscription on it (${w.deliveries} deliveries), network off (durability 'strict'):`);
      console.log(`  create: p50 ${ms(pct(w.create, 50))}  p99 ${ms(pct(w.create, 99))}  max ${ms(Math.max(...w.create))}  (n=500)`);
      console.log(`  update: p50 ${ms(pct(w.update, 50))}  p99 ${ms(pct(w.update, 99))}  max ${ms(Math.max(...w.update))}  (n=500)`);
      console.log(`  all:    p50 ${ms(pct(both, 50))}  p99 ${ms(pct(both, 99))}  (pending ${w.pending})`);
      await ctx.close();
    }
    // 2. N records pulled into an empty client.
    {
      const u = await register(server.url, `sdk-bench-p-${Date.now()}@example.com`);
      const t0 = Date.now();
      await seedItems(server.url, u.token, n - 1);
      console.log(`\nseeded ${n.toLocaleString('en')} records in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const ctx = await browser.newContext({ bypassCSP: true });
      const page = await sdkPage(ctx, server.url, u.token, 'bench-pull');
      const r = await inPage(page, async (c) => {
        const long: number[] = [];
        const obs = new PerformanceObserver((l) => {
          for (const e of l.getEntries()) long.push(e.duration);
        });
        obs.observe({ type: 'longtask', buffered: false });
        let progress = 0;
        const offS = c.onStatus((s) => s.progress && progress++);
        const t = performance.now();
        await c.sync();
        const took = performance.now() - t;
        await new Promise((res) => setTimeout(res, 50));
        obs.disconnect();
        offS();
        return { took, long, progress, items: (await c.list('item')).length };
      });
      const net = await page.evaluate(async (token) => {
        const t = performance.now();
        let cursor: string | null = null;
        for (let k = 0; k < 1000; k++) {
          const res = await fetch('/api/sync', { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ deviceId: 'bench-net', lastSyncTimestamp: cursor, changes: [], limit: 1000 }) });
          const j = (await res.json()) as { data: { syncTimestamp: string; hasMore: boolean } };
          cursor = j.data.syncTimestamp;
          if (!j.data.hasMore) break;
        }
        return performance.now() - t;
      }, u.token);
      console.log(`${n.toLocaleString('en')} records pulled into an empty client: sync() ${(r.took / 1000).toFixed(2)} s (${r.items.toLocaleString('en')} items listed; ${r.progress} progress updates)`);
      console.log(`  of which fetching + parsing the same pages: ${(net / 1000).toFixed(2)} s; applying them ~${((r.took - net) / 1000).toFixed(2)} s`);
      const over200 = r.long.filter((d) => d > 200).length;
      console.log(`  long tasks (> 50 ms) during the pull: ${r.long.length}, longest ${r.long.length ? ms(Math.max(...r.long)) : '-'}, over 200 ms: ${over200}`);
      await ctx.close();
    }
  } finally {
    await browser.close();
    await server.stop();
  }
  console.log(execFileSync(process.execPath, [join(CLIENTS, 'js', 'scripts', 'size.mjs')]).toString().trim());
}
