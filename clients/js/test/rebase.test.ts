// Pulls: replay of pending operations over server rows, paging, cursor
// atomicity, lost responses, resync_required, and two "tabs" on one database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Storage } from '../src/index.js';
import { closeAll, env, settle, until } from './helpers.js';

test('a pulled server row under a pending edit does not flicker back; after the ack both edits show', async () => {
  const e = env();
  let editDuringPull: (() => Promise<void>) | null = null;
  // The local edit lands while a pure pull is in flight, so the pull's page
  // carries the row without it.
  const fetch = (async (u: string, init: RequestInit) => {
    const body = JSON.parse(String(init.body));
    if (editDuringPull && body.changes.length === 0) {
      const f = editDuringPull;
      editDuringPull = null;
      await f();
    }
    return e.server.fetch(u, init);
  }) as typeof globalThis.fetch;
  const c = await e.client({ fetch });
  const s = await c.create('space', { name: 'S' });
  const i = await c.create('item', { spaceId: s, title: 'Dune' });
  await until(() => c.status.pending === 0, 'synced');
  e.server.remote({ operationId: 'r1', id: i, entityType: 'item', operation: 'update', data: { notes: 'from the phone' } });
  const titles: unknown[] = [];
  c.subscribe('item', undefined, (rows) => titles.push(rows[0]?.title));
  editDuringPull = () => c.update('item', i, { title: 'Dune (local)' });
  await c.sync();
  await settle();
  assert.deepEqual(titles.slice(1).filter((t) => t !== 'Dune (local)'), [], `never flickered back: ${titles}`);
  const got = await c.get('item', i);
  assert.equal(got?.title, 'Dune (local)');
  assert.equal(got?.notes, 'from the phone');
  assert.equal(got?._pending, false);
  assert.equal(e.server.records.get(i)!.rec.title, 'Dune (local)');
  await closeAll(e);
});

test('pages cut shorter than limit: the client loops while hasMore, never by counting', async () => {
  const e = env();
  for (let n = 0; n < 25; n++)
    e.server.remote({ operationId: `s${n}`, id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, entityType: 'space', operation: 'create', data: { name: `space ${n}` } });
  e.server.pageCap = 3; // "cut by bytes": 3 records per page whatever the limit
  const c = await e.client();
  await until(async () => (await c.list('space')).length === 25, 'all pages');
  const pulls = e.server.syncRequests();
  assert.equal(pulls.length, 9, '8 full pages of 3 and a last one of 1');
  assert.ok(pulls.every((p) => p.body.limit === 1000));
  await closeAll(e);
});

/** Storage that fails the transaction that stores the cursor, once. */
function failCursorOnce(inner: Storage): { storage: Storage; failed: () => boolean } {
  let armed = true;
  let failed = false;
  const storage: Storage = {
    ...inner,
    name: inner.name,
    run: (mode, fn) =>
      inner.run(mode, (tx) =>
        fn({
          ...tx,
          get: tx.get.bind(tx),
          getAll: tx.getAll.bind(tx),
          add: tx.add.bind(tx),
          delete: tx.delete.bind(tx),
          clear: tx.clear.bind(tx),
          put(store, value, key) {
            if (armed && store === 'meta' && key === 'cursor') {
              armed = false;
              failed = true;
              throw new Error('disk full');
            }
            tx.put(store, value, key);
          },
        }),
      ),
    suspend: () => inner.suspend(),
    close: () => inner.close(),
  };
  return { storage, failed: () => failed };
}

test('a page and its cursor commit together: when the transaction fails, neither the records nor the acks are applied', async () => {
  const e = env();
  e.server.remote({ operationId: 'r1', id: '00000000-0000-4000-8000-000000000001', entityType: 'space', operation: 'create', data: { name: 'remote' } });
  e.server.offline = true;
  const { storage, failed } = failCursorOnce(e.storage());
  const c = await e.client({ storage });
  const mine = await c.create('space', { name: 'mine' });
  await until(() => !c.status.syncing && c.status.lastError?.code === 'network', 'the offline round is over');
  e.server.offline = false;
  await c.sync().catch(() => undefined);
  assert.ok(failed());
  assert.equal(await c.get('space', '00000000-0000-4000-8000-000000000001'), undefined, 'no record of the failed page');
  assert.equal(c.status.pending, 1, 'the ack was not applied either: the op stays queued');
  const raw = await e.storage().run('readonly', async (tx) => ({ cursor: await tx.get('meta', 'cursor'), outbox: await tx.getAll('outbox') }));
  assert.equal(raw.cursor, undefined);
  assert.equal(raw.outbox.length, 1);
  e.clock.advance(60_000);
  await until(() => c.status.pending === 0, 'retried');
  assert.equal((await c.get('space', '00000000-0000-4000-8000-000000000001'))?.name, 'remote');
  assert.equal(e.server.live('space').filter((r) => r.id === mine).length, 1);
  await closeAll(e);
});

test('a response lost after the server applied the batch: the retry is a duplicate, nothing doubles', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  await c.create('item', { spaceId: s, title: 'once' });
  await until(() => !c.status.syncing && c.status.lastError?.code === 'network', 'the offline round is over');
  e.server.offline = false;
  e.server.faults.push({ kind: 'lost' });
  await c.sync().catch(() => undefined);
  assert.equal(c.status.pending, 2, 'no ack arrived');
  assert.equal(e.server.live('item').length, 1, 'but the server applied it');
  e.clock.advance(60_000);
  await until(() => c.status.pending === 0, 'retried');
  assert.equal(e.server.live('item').length, 1);
  assert.equal(e.server.acks.size, 2);
  assert.equal(c.status.rejected.length, 0);
  assert.equal((await c.list('item')).length, 1);
  await closeAll(e);
});

test('409 resync_required: keep the outbox, drop the server copy, pull from scratch, then push; nothing lost or resurrected', async () => {
  const e = env();
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  const gone = await c.create('item', { spaceId: s, title: 'deleted elsewhere' });
  const kept = await c.create('item', { spaceId: s, title: 'kept' });
  await until(() => c.status.pending === 0, 'synced');
  // Another device deletes `gone`; the server then forgets the tombstone (retention).
  e.server.records.delete(gone);
  e.server.offline = true;
  await c.update('item', kept, { notes: 'offline edit' });
  const fresh = await c.create('item', { spaceId: s, title: 'made offline' });
  e.server.offline = false;
  e.server.faults.push({ kind: 'status', status: 409, code: 'resync_required' });
  e.server.requests.length = 0;
  await c.sync();
  const reqs = e.server.syncRequests();
  assert.equal(reqs[1]!.body.lastSyncTimestamp, null, 'the resync starts from scratch');
  assert.deepEqual(reqs[1]!.body.changes, [], 'and pulls before it pushes');
  assert.equal(await c.get('item', gone), undefined, 'not resurrected');
  assert.equal((await c.get('item', kept))?.notes, 'offline edit', 'the offline edit survived');
  assert.equal((await c.get('item', fresh))?._pending, false);
  assert.equal(e.server.records.get(kept)!.rec.notes, 'offline edit');
  assert.ok(!e.server.records.has(gone));
  assert.equal(c.status.pending, 0);
  await closeAll(e);
});

test('two clients on one database (two tabs): writes in one appear in the other; the outbox is sent once', async () => {
  const e = env();
  e.server.offline = true;
  const a = await e.client();
  const b = await e.client();
  const s = await a.create('space', { name: 'from tab A' });
  await until(async () => (await b.get('space', s))?.name === 'from tab A', 'B sees A’s write');
  const i = await b.create('item', { spaceId: s, title: 'from tab B' });
  await until(async () => (await a.get('item', i)) !== undefined && a.status.pending === 2, 'A sees B’s write and pending count');
  e.server.offline = false;
  await Promise.all([a.sync(), b.sync()]); // both send at once: the server dedupes
  await until(() => a.status.pending === 0 && b.status.pending === 0, 'both drained');
  assert.equal(e.server.live('space').length, 1);
  assert.equal(e.server.live('item').length, 1);
  // B learns of A's acks through the channel (A applied them first) or its own response.
  await until(async () => (await b.get('item', i))?._pending === false, 'B shows the item as synced');
  await until(async () => (await a.get('item', i))?._pending === false, 'A shows the item as synced');
  await closeAll(e);
});
