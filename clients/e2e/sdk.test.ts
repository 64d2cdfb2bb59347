// The SDK in real Chromium against the real server: poison operations, a
// lost response, two tabs with one sender (and a hung leader), a delete
// against a pending update, concurrent edits of different fields.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page, Request } from 'playwright-core';
import { haveChromium, launch, poll, register, serverState, setApiBlocked, startServer, type Server } from './harness.js';
import { buildSdkPage, drained, inPage, online, sdkPage } from './pages.js';

type C = import('../js/src/index.js').Client;
const skip = haveChromium() ? false : 'no Chromium';
let server: Server;
let browser: Browser;
let n = 0;

before(async () => {
  if (skip) return;
  server = await startServer(await buildSdkPage());
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const user = () => register(server.url, `u${Date.now()}-${n++}@example.com`);
const isSync = (r: Request) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/sync';

test('a poison operation is rejected on its own; the operations after it sync', { skip }, async () => {
  const u = await user();
  const ctx = await browser.newContext({ bypassCSP: true });
  try {
    const p = await sdkPage(ctx, server.url, u.token);
    await drained(p);
    await setApiBlocked(ctx, true);
    const ids = await inPage(p, async (c) => {
      const s = await c.create('space', { name: 'S' });
      const poison = await c.create('item', { spaceId: s, title: 'x'.repeat(501) }); // over text(500)
      const bad2 = await c.create('item', { spaceId: s, title: 'dangling', categoryId: '00000000-0000-4000-8000-00000000dead' });
      const after = await c.create('item', { spaceId: s, title: 'after the poison' });
      return { s, poison, bad2, after };
    });
    await setApiBlocked(ctx, false);
    await online(p);
    await drained(p);
    const st = await serverState(server.url, u.token);
    assert.deepEqual(st.items.map((i) => i.title), ['after the poison']);
    const local = await inPage(p, async (c) => ({
      items: (await c.list('item')).map((i) => i.title),
      rejected: c.status.rejected.map((r) => [r.id, r.error.code]),
      heard: (window as unknown as { rejected: unknown[] }).rejected.length,
    }));
    assert.deepEqual(local.items, ['after the poison']);
    assert.deepEqual(local.rejected, [[ids.poison, 'validation_failed'], [ids.bad2, 'unknown_reference']]);
    assert.equal(local.heard, 2, 'onRejected fired for both');
  } finally {
    await ctx.close();
  }
});

test('a response lost after the server applied the batch causes no duplicate', { skip }, async () => {
  const u = await user();
  const ctx = await browser.newContext({ bypassCSP: true });
  try {
    const p = await sdkPage(ctx, server.url, u.token);
    await drained(p);
    let lost = 0;
    await ctx.route('**/api/sync', async (route) => {
      const body = route.request().postDataJSON() as { changes?: unknown[] };
      if (lost === 0 && body.changes?.length) {
        lost++;
        await route.fetch(); // the server applies the batch…
        return route.abort('connectionreset'); // …and the answer never arrives
      }
      return route.continue();
    });
    await inPage(p, async (c) => {
      const s = await c.create('space', { name: 'once' });
      await c.create('item', { spaceId: s, title: 'only one' });
    });
    await drained(p, 30_000);
    assert.equal(lost, 1);
    const st = await serverState(server.url, u.token);
    assert.equal(st.spaces.length, 1);
    assert.equal(st.items.length, 1);
    const local = await inPage(p, async (c) => ({ items: (await c.list('item')).length, rejected: c.status.rejected.length }));
    assert.deepEqual(local, { items: 1, rejected: 0 });
  } finally {
    await ctx.close();
  }
});

test('two tabs: both write, one sends; the other takes over when the leader hangs or closes', { skip }, async () => {
  const u = await user();
  const ctx = await browser.newContext({ bypassCSP: true });
  try {
    const t1 = await sdkPage(ctx, server.url, u.token, 'tabs');
    await drained(t1);
    const t2 = await sdkPage(ctx, server.url, u.token, 'tabs');
    const sent = new Map<Page, number>([[t1, 0], [t2, 0]]);
    for (const t of [t1, t2]) t.on('request', (r) => isSync(r) && sent.set(t, sent.get(t)! + 1));
    const s = await inPage(t1, (c) => c.create('space', { name: 'tabs' }));
    await inPage(t1, (c, s: string) => c.create('item', { spaceId: s, title: 'from tab 1' }), s);
    await inPage(t2, async (c, s: string) => {
      for (let k = 0; k < 3; k++) await c.create('item', { spaceId: s, title: `from tab 2 #${k}` });
    }, s);
    await drained(t1);
    await drained(t2);
    assert.ok(sent.get(t1)! > 0, 'the leader sent');
    assert.equal(sent.get(t2), 0, 'the follower never sent');
    await poll(t2, async () => (await (window as unknown as { c: C }).c.list('item')).length === 4, undefined, 10_000, '4 items in tab 2');
    assert.equal((await serverState(server.url, u.token)).items.length, 4);

    // The leader hangs (a busy main thread: no heartbeat, no timers): the
    // visible follower steals the lock and sends.
    const hang = t1.evaluate(() => {
      const end = Date.now() + 14_000;
      while (Date.now() < end);
    });
    await inPage(t2, (c, s: string) => c.create('item', { spaceId: s, title: 'while tab 1 hangs' }), s);
    await drained(t2, 30_000);
    assert.ok(sent.get(t2)! > 0, 'the follower took over');
    await hang;

    // The leader (now t2) closes: t1 takes over again.
    await t2.close();
    const before = sent.get(t1)!;
    await inPage(t1, (c, s: string) => c.create('item', { spaceId: s, title: 'after tab 2 closed' }), s);
    await drained(t1, 30_000);
    assert.ok(sent.get(t1)! > before, 'the remaining tab sends');
    const titles = (await serverState(server.url, u.token)).items.map((i) => i.title).sort();
    assert.equal(titles.length, 6);
    assert.ok(titles.includes('while tab 1 hangs') && titles.includes('after tab 2 closed'));
  } finally {
    await ctx.close();
  }
});

/** Two devices (browser contexts) of one user, both synced with one item. */
async function twoDevices() {
  const u = await user();
  const ctxA = await browser.newContext({ bypassCSP: true });
  const ctxB = await browser.newContext({ bypassCSP: true });
  const a = await sdkPage(ctxA, server.url, u.token);
  const b = await sdkPage(ctxB, server.url, u.token);
  const id = await inPage(a, async (c) => {
    const s = await c.create('space', { name: 'shared by my devices' });
    return c.create('item', { spaceId: s, title: 'Dune', notes: null });
  });
  await drained(a);
  await poll(b, async (id) => !!(await (window as unknown as { c: C }).c.get('item', id)), id, 10_000, 'the item on B');
  return { u, ctxA, ctxB, a, b, id };
}

test('a delete on one device against a pending update on another converges: deleted on both', { skip }, async () => {
  const { u, ctxA, ctxB, a, b, id } = await twoDevices();
  try {
    await setApiBlocked(ctxB, true);
    await inPage(b, (c, id: string) => c.update('item', id, { title: 'Dune (edited offline)' }), id);
    await inPage(a, (c, id: string) => c.delete('item', id), id);
    await drained(a);
    await setApiBlocked(ctxB, false);
    await online(b);
    await drained(b);
    await inPage(a, (c) => c.sync());
    for (const p of [a, b]) assert.equal(await inPage(p, (c, id: string) => c.get('item', id), id), undefined);
    assert.equal((await serverState(server.url, u.token)).items.length, 0);
    assert.equal(await inPage(b, (c) => c.status.rejected.length), 0, 'the update was settled (as a conflict), not rejected');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('concurrent offline edits of different fields on two devices both survive', { skip }, async () => {
  const { u, ctxA, ctxB, a, b, id } = await twoDevices();
  try {
    await setApiBlocked(ctxA, true);
    await setApiBlocked(ctxB, true);
    await inPage(a, (c, id: string) => c.update('item', id, { title: 'Dune Messiah' }), id);
    await inPage(b, (c, id: string) => c.update('item', id, { notes: 'borrow from Sam' }), id);
    for (const [ctx, p] of [[ctxA, a], [ctxB, b]] as const) {
      await setApiBlocked(ctx, false);
      await online(p);
      await drained(p);
    }
    await inPage(a, (c) => c.sync());
    for (const p of [a, b]) {
      await poll(
        p,
        async (id) => {
          const r = await (window as unknown as { c: C }).c.get('item', id);
          return r?.title === 'Dune Messiah' && r?.notes === 'borrow from Sam';
        },
        id,
        10_000,
        'both edits',
      );
    }
    const srv = (await serverState(server.url, u.token)).items[0]!;
    assert.equal(srv.title, 'Dune Messiah');
    assert.equal(srv.notes, 'borrow from Sam');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
