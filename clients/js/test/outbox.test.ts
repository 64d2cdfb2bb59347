// Local writes and the outbox: durability, one row per operation, FIFO batches, reload.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, memoryStorage } from '../src/index.js';
import type { OutboxRow, Row } from '../src/model.js';
import { closeAll, env, settle, until } from './helpers.js';

async function rawRead(e: ReturnType<typeof env>, name = 'db') {
  const s = e.storage(name);
  const got = await s.run('readonly', async (tx) => ({
    records: await tx.getAll<Row>('records'),
    outbox: await tx.getAll<OutboxRow>('outbox'),
    cursor: await tx.get<string>('meta', 'cursor'),
  }));
  s.close();
  return got;
}

test('a create resolves once its record and its outbox row are stored, with _pending', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  await settle();
  const id = await c.create('space', { name: 'Personal' });
  const raw = await rawRead(e);
  assert.equal(raw.records.length, 1);
  assert.equal(raw.records[0]!.id, id);
  assert.equal(raw.records[0]!.v?._pending, true);
  assert.equal(raw.outbox.length, 1);
  assert.equal(raw.outbox[0]!.id, id);
  assert.equal(raw.outbox[0]!.operation, 'create');
  const got = await c.get('space', id);
  assert.equal(got?.name, 'Personal');
  assert.equal(got?._pending, true);
  assert.equal(got?.description, null, 'every field of the entity is present, null when unset');
  await closeAll(e);
});

test('every operation gets its own outbox row and operationId; update sends only changed fields', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  await settle();
  const s = await c.create('space', { name: 'S' });
  const i = await c.create('item', { spaceId: s, title: 'Dune', type: 'book', bookId: 'OL1' });
  await c.update('item', i, { title: 'Dune', notes: 'in paperback' }); // title unchanged
  await c.update('item', i, { isCompleted: true });
  await c.update('item', i, { isCompleted: true }); // no change: no operation
  const raw = await rawRead(e);
  assert.equal(raw.outbox.length, 4);
  assert.equal(new Set(raw.outbox.map((o) => o.operationId)).size, 4);
  assert.deepEqual(raw.outbox[2]!.data, { notes: 'in paperback' });
  assert.deepEqual(raw.outbox[3]!.data, { isCompleted: true });
  assert.equal(c.status.pending, 4);

  e.server.offline = false;
  e.clock.advance(60_000); // the retry timer fires
  await until(() => c.status.pending === 0, 'outbox drained');
  const sent = e.server.syncRequests().flatMap((r) => r.body.changes as { operationId: string }[]);
  assert.deepEqual(sent.map((x) => x.operationId), raw.outbox.map((o) => o.operationId), 'sent in FIFO order');
  const item = e.server.records.get(i)!.rec;
  assert.equal(item.notes, 'in paperback');
  assert.equal(item.isCompleted, true);
  assert.equal((await c.get('item', i))?._pending, false);
  await closeAll(e);
});

test('a large outbox goes in FIFO batches of at most 1000 operations', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  await settle();
  const s = await c.create('space', { name: 'S' });
  for (let n = 0; n < 2100; n++) await c.create('item', { spaceId: s, title: `item ${n}`, order: n });
  e.server.requests.length = 0;
  e.server.offline = false;
  await c.sync();
  const sizes = e.server.syncRequests().map((r) => (r.body.changes as unknown[]).length).filter((n) => n > 0);
  assert.deepEqual(sizes, [1000, 1000, 101]);
  const titles = e.server.syncRequests().flatMap((r) => (r.body.changes as { data?: { title?: string } }[]).map((x) => x.data?.title)).filter(Boolean);
  assert.deepEqual(titles, Array.from({ length: 2100 }, (_, n) => `item ${n}`));
  assert.equal(e.server.live('item').length, 2100);
  assert.equal(c.status.pending, 0);
  await closeAll(e);
});

test('nothing is lost on reload: a new client on the same database sees the pending item and sends it', async () => {
  const e = env();
  e.server.offline = true;
  const a = await e.client();
  await settle();
  const deviceId = a.deviceId;
  const s = await a.create('space', { name: 'S' });
  const i = await a.create('item', { spaceId: s, title: 'Visit Kyoto', type: 'place', placeId: 'kyoto' });
  await a.close(); // the tab closes before any sync
  e.server.offline = false;
  const b = await e.client();
  assert.equal(b.deviceId, deviceId, 'the device id is kept in storage');
  assert.equal((await b.get('item', i))?._pending, true);
  await until(() => b.status.pending === 0, 'sent after reload');
  assert.equal(e.server.records.get(i)?.rec.placeId, 'kyoto');
  assert.equal((await b.get('item', i))?._pending, false);
  await closeAll(e);
});

test('list filters, orders by `order`, hides deleted records and the children of a deleted space', async () => {
  const e = env();
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  const cat = await c.create('category', { spaceId: s, name: 'Books' });
  const i2 = await c.create('item', { spaceId: s, categoryId: cat, title: 'second', order: 2 });
  const i1 = await c.create('item', { spaceId: s, categoryId: cat, title: 'first', order: 1 });
  const other = await c.create('item', { title: 'no space' });
  assert.deepEqual((await c.list('item', { categoryId: cat })).map((r) => r.id), [i1, i2]);
  assert.deepEqual((await c.list('item')).map((r) => r.id), [i1, i2, other]);
  await c.delete('space', s);
  assert.deepEqual((await c.list('item')).map((r) => r.id), [other], 'children hidden at once, before the server cascades');
  assert.equal(await c.get('category', cat), undefined);
  await until(() => c.status.pending === 0, 'synced');
  assert.equal(e.server.records.get(i1)?.rec.deletedAt !== null, true, 'the server cascaded the delete');
  assert.deepEqual((await c.list('item')).map((r) => r.id), [other]);
  await closeAll(e);
});

test('subscribe delivers current rows at once, then changes; unchanged rows keep their identity', async () => {
  const e = env();
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  const a = await c.create('item', { spaceId: s, title: 'a', order: 1 });
  await until(() => c.status.pending === 0, 'synced');
  const calls: { id: string; title: unknown }[][] = [];
  const seen: unknown[][] = [];
  const off = c.subscribe('item', { spaceId: s }, (rows) => {
    seen.push(rows);
    calls.push(rows.map((r) => ({ id: r.id, title: r.title })));
  });
  assert.equal(calls.length, 1);
  const b = await c.create('item', { spaceId: s, title: 'b', order: 2 });
  await until(() => calls.length === 2, 'second call');
  assert.equal(seen[1]![0], seen[0]![0], 'row a is the same object');
  await until(() => c.status.pending === 0, 'synced');
  await c.update('item', b, { title: 'b2' });
  await until(() => calls.at(-1)![1]?.title === 'b2', 'update seen');
  assert.equal(seen.at(-1)![0], seen[0]![0], 'row a is still the same object');
  await until(() => c.status.pending === 0 && calls.at(-1)!.length === 2, 'synced');
  await settle();
  const n = calls.length;
  await c.create('space', { name: 'unrelated' });
  await settle();
  assert.equal(calls.length, n, 'no call when the result did not change');
  off();
  await c.update('item', a, { title: 'a2' });
  await settle();
  assert.equal(calls.length, n, 'no call after unsubscribe');
  await closeAll(e);
});

test('memoryStorage: clients on one instance share data like tabs; a failing transaction leaves nothing', async () => {
  const storage = memoryStorage();
  await assert.rejects(
    storage.run('readwrite', async (tx) => {
      tx.put('meta', 'x', 'cursor');
      throw new Error('boom');
    }),
  );
  assert.equal(await storage.run('readonly', (tx) => tx.get('meta', 'cursor')), undefined);
  const e = env();
  const a = await createClient({ url: 'http://x', token: 't1', fetch: e.server.fetch as typeof fetch, storage, live: false, clock: e.clock });
  const id = await a.create('space', { name: 'mem' });
  await a.close();
  const b = await createClient({ url: 'http://x', token: 't1', fetch: e.server.fetch as typeof fetch, storage, live: false, clock: e.clock });
  assert.equal((await b.get('space', id))?.name, 'mem');
  await b.close();
});

test('bad local calls fail at once and write nothing', async () => {
  const e = env();
  const c = await e.client();
  await assert.rejects(c.create('space', { name: '  ' }), /required/);
  await assert.rejects(c.update('item', '00000000-0000-4000-8000-000000000000', { title: 'x' }), /no item/);
  await assert.rejects(c.create('planet' as 'space', { name: 'x' }), /unknown entity type/);
  assert.equal(c.status.pending, 0);
  assert.equal((await rawRead(e)).outbox.length, 0);
  await closeAll(e);
});
