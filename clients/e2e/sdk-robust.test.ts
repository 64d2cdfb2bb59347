// Issue 20, SDK side, in real Chromium against the real server: a device whose clock is a day behind
// still wins with an edit made after what it pulled (the hybrid logical clock); the database deleted
// under an open, offline app loses nothing; the sync state in words (offline with the network really
// off, needs sign-in, then setToken); a big pull reports progress.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { haveChromium, launch, poll, register, serverState, startServer, type Server } from './harness.js';
import { buildSdkPage, drained, inPage, online } from './pages.js';

const skip = haveChromium() ? false : 'no Chromium';
let server: Server;
let browser: Browser;
let n = 0;
const DAY = 86_400_000;

before(async () => {
  if (skip) return;
  server = await startServer(await buildSdkPage());
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const user = () => register(server.url, `r${Date.now()}-${n++}@example.com`);

/** The SDK page with a client as `window.c`: its clock shifted by `skewMs`, its database `db`. */
async function page(ctx: BrowserContext, token: string, db: string, skewMs = 0): Promise<Page> {
  const p = await ctx.newPage();
  p.on('pageerror', (e) => console.error('pageerror:', e.message));
  await p.goto(server.url);
  await poll(p, () => !!(window as unknown as { tidesyncSdk?: unknown }).tidesyncSdk, undefined, 10_000, 'the SDK page');
  await p.evaluate(
    async ([token, db, skew]) => {
      const w = window as unknown as { tidesyncSdk: typeof import('../js/src/index.js'); c: unknown };
      const sdk = w.tidesyncSdk;
      const clock = { now: () => Date.now() + skew, setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: (h: unknown) => clearTimeout(h as number) };
      w.c = await sdk.createClient({ url: '', token, storage: sdk.indexedDbStorage({ name: db }), clock });
    },
    [token, db, skewMs] as const,
  );
  return p;
}

/** One change pushed from Node as another device with a right clock. */
async function push(token: string, change: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.url}/api/sync`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ deviceId: 'device-b', lastSyncTimestamp: null, changes: [{ deviceId: 'device-b', timestamp: new Date().toISOString(), ...change }], limit: 1 }),
  });
  const j = (await res.json()) as { data: { acknowledged: { success: boolean }[] } };
  assert.ok(res.ok && j.data.acknowledged[0]!.success, JSON.stringify(j));
}

test('a device whose clock is a day behind edits what it pulled: its edit wins on every device, also when the record changed since', { skip }, async () => {
  const u = await user();
  const space = crypto.randomUUID();
  const item = crypto.randomUUID();
  await push(u.token, { operationId: crypto.randomUUID(), id: space, entityType: 'space', operation: 'create', data: { name: 'S' } });
  await push(u.token, { operationId: crypto.randomUUID(), id: item, entityType: 'item', operation: 'create', data: { spaceId: space, title: 'by B' } });
  const ctx = await browser.newContext({ bypassCSP: true });
  try {
    const a = await page(ctx, u.token, 'clock-a', -DAY);
    await drained(a);
    const pulled = await inPage(a, async (c, id: string) => (await c.get('item', id))?.title, item as never);
    assert.equal(pulled, 'by B');
    // A goes offline (so no poke brings what follows); B edits another field. A's next push comes from
    // a cursor before the record's current version: the server's cursor rule does not apply, and the
    // timestamps decide.
    await ctx.setOffline(true);
    await push(u.token, { operationId: crypto.randomUUID(), id: item, entityType: 'item', operation: 'update', data: { notes: 'B notes' } });
    const ts = await inPage(
      a,
      async (c, id: string) => {
        await c.update('item', id, { title: 'by A, a day behind, later' });
        return (await c.get('item', id))!.updatedAt;
      },
      item as never,
    );
    assert.ok(Date.parse(ts) > Date.now() - 60_000, `A's timestamp ${ts} is not a day behind`);
    await ctx.setOffline(false);
    await online(a);
    await drained(a);
    const st = await serverState(server.url, u.token);
    const it = st.items.find((i) => i.id === item)!;
    assert.equal(it.title, 'by A, a day behind, later', 'the later edit won on the server (every other device pulls this)');
    assert.equal(it.notes, 'B notes', "B's other field is kept");
    await inPage(a, async (c) => c.sync());
    const local = await inPage(a, async (c, id: string) => { const r = await c.get('item', id); return [r?.title, r?.notes]; }, item as never);
    assert.deepEqual(local, ['by A, a day behind, later', 'B notes'], 'and on device A');
  } finally {
    await ctx.close();
  }
});

test('IndexedDB deleted under the open app while offline: records and outbox are written back, "N pending" stays true, all sync later', { skip }, async () => {
  const u = await user();
  const ctx = await browser.newContext({ bypassCSP: true });
  try {
    const p = await page(ctx, u.token, 'deleted-db');
    await drained(p);
    await ctx.setOffline(true);
    const ids = await inPage(p, async (c) => {
      const s = await c.create('space', { name: 'kept' });
      const i = await c.create('item', { spaceId: s, title: 'typed offline' });
      await c.update('item', i, { notes: 'edited offline' });
      return { s, i };
    });
    assert.equal(await inPage(p, async (c) => c.status.pending), 3);
    // Clear the site's database under the app (devtools, "clear site data"); the client's connection gets versionchange.
    await p.evaluate(() => new Promise<void>((res, rej) => {
      const r = indexedDB.deleteDatabase('deleted-db');
      r.onsuccess = () => res();
      r.onerror = () => rej(r.error);
    }));
    // A write after the deletion lands in the re-created database, next to what was written back.
    const after = await inPage(p, async (c, s: string) => c.create('item', { spaceId: s, title: 'after the deletion' }), ids.s as never);
    const raw = await p.evaluate(() => new Promise<{ outbox: number; records: number }>((res, rej) => {
      const r = indexedDB.open('deleted-db');
      r.onerror = () => rej(r.error);
      r.onsuccess = () => {
        const db = r.result;
        const t = db.transaction(['outbox', 'records']);
        const o = t.objectStore('outbox').count();
        const rc = t.objectStore('records').count();
        t.oncomplete = () => { db.close(); res({ outbox: o.result, records: rc.result }); };
      };
    }));
    assert.deepEqual(raw, { outbox: 4, records: 3 }, 'the outbox and the records are in the database again');
    assert.equal(await inPage(p, async (c) => c.status.pending), 4);
    await ctx.setOffline(false);
    await online(p);
    await drained(p);
    const st = await serverState(server.url, u.token);
    assert.deepEqual(st.items.map((i) => i.title).sort(), ['after the deletion', 'typed offline']);
    assert.equal(st.items.find((i) => i.id === ids.i)!.notes, 'edited offline');
    assert.ok(st.items.some((i) => i.id === after));
  } finally {
    await ctx.close();
  }
});

test('status.state: offline with the network off, needsSignIn after a 401, setToken signs in again and sends the outbox', { skip }, async () => {
  const u = await user();
  const ctx = await browser.newContext({ bypassCSP: true });
  try {
    const p = await page(ctx, 'not-a-valid-token', 'state');
    await inPage(p, async (c) => void (await c.create('space', { name: 'before sign-in' })));
    await poll(p, () => (window as unknown as { c: { status: { state: string } } }).c.status.state === 'needsSignIn', undefined, 15_000, 'needsSignIn');
    assert.equal(await inPage(p, async (c) => c.status.pending), 1, 'the outbox is kept');
    await ctx.setOffline(true);
    await poll(p, () => (window as unknown as { c: { status: { state: string } } }).c.status.state !== 'needsSignIn' || navigator.onLine === false, undefined, 5000, 'offline seen');
    await inPage(p, async (c, token: string) => c.setToken(token), u.token as never);
    await poll(p, () => (window as unknown as { c: { status: { state: string } } }).c.status.state === 'offline', undefined, 5000, 'offline');
    await ctx.setOffline(false);
    await online(p);
    await drained(p);
    assert.equal(await inPage(p, async (c) => c.status.state), 'idle');
    const st = await serverState(server.url, u.token);
    assert.deepEqual(st.spaces.map((s) => s.name), ['before sign-in']);
  } finally {
    await ctx.close();
  }
});

test('a big first pull reports progress in status and ends with every record', { skip }, async () => {
  const u = await user();
  const space = crypto.randomUUID();
  const N = 2500;
  let changes: Record<string, unknown>[] = [{ operationId: crypto.randomUUID(), id: space, entityType: 'space', operation: 'create', data: { name: 'big' }, deviceId: 'seed', timestamp: new Date().toISOString() }];
  for (let i = 0; i < N; i++) {
    changes.push({ operationId: crypto.randomUUID(), id: crypto.randomUUID(), entityType: 'item', operation: 'create', data: { spaceId: space, title: `#${i}` }, deviceId: 'seed', timestamp: new Date().toISOString() });
    if (changes.length === 1000 || i === N - 1) {
      const res = await fetch(`${server.url}/api/sync`, { method: 'POST', headers: { Authorization: `Bearer ${u.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ deviceId: 'seed', lastSyncTimestamp: null, changes, limit: 1 }) });
      assert.ok(res.ok);
      changes = [];
    }
  }
  const ctx = await browser.newContext({ bypassCSP: true });
  try {
    const p = await page(ctx, u.token, 'big');
    const r = await inPage(p, async (c) => {
      const seen: { received: number; applied: number }[] = [];
      c.onStatus((s) => s.progress && seen.push(s.progress));
      await c.sync();
      return { seen, items: (await c.list('item')).length, progress: c.status.progress };
    });
    assert.equal(r.items, N);
    assert.ok(r.seen.length >= 5, `${r.seen.length} progress updates`);
    assert.deepEqual(r.seen.at(-1), { received: N + 1, applied: N + 1 });
    assert.ok(r.seen.every((s, i) => s.applied <= s.received && (i === 0 || s.applied >= r.seen[i - 1]!.applied)));
    assert.equal(r.progress, null);
  } finally {
    await ctx.close();
  }
});
