// Queries from indexes by parent, subscribers recomputed only for the parents a change touches,
// pulled pages applied in slices with progress in `status`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Storage, SyncProgress } from '../src/index.js';
import { SLICE } from '../src/local.js';
import { closeAll, env, settle, until } from './helpers.js';

test('list by space and by category; subscribers of other parents are not called; a move updates both', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const a = await c.create('space', { name: 'A' });
  const b = await c.create('space', { name: 'B' });
  const ca = await c.create('category', { spaceId: a, name: 'Ca' });
  const i1 = await c.create('item', { spaceId: a, categoryId: ca, title: 'one', order: 2 });
  const i2 = await c.create('item', { spaceId: a, title: 'two', order: 1 });
  const i3 = await c.create('item', { spaceId: b, title: 'three' });
  assert.deepEqual((await c.list('item', { spaceId: a })).map((r) => r.id), [i2, i1], 'ordered by `order`');
  assert.deepEqual((await c.list('item', { categoryId: ca })).map((r) => r.id), [i1]);
  assert.deepEqual((await c.list('item', { spaceId: b })).map((r) => r.id), [i3]);
  assert.deepEqual((await c.list('category', { spaceId: a })).map((r) => r.id), [ca]);
  assert.equal((await c.list('item')).length, 3);

  const inA: string[][] = [];
  const inB: string[][] = [];
  const inCa: string[][] = [];
  c.subscribe('item', { spaceId: a }, (rows) => inA.push(rows.map((r) => r.id)));
  c.subscribe('item', { spaceId: b }, (rows) => inB.push(rows.map((r) => r.id)));
  c.subscribe('item', { categoryId: ca }, (rows) => inCa.push(rows.map((r) => r.id)));
  assert.deepEqual([inA.length, inB.length, inCa.length], [1, 1, 1]);

  // Writes in B: the subscribers of A and of Ca are not called.
  for (let k = 0; k < 5; k++) await c.create('item', { spaceId: b, title: `b${k}` });
  await c.update('item', i3, { title: 'three!' });
  await settle();
  assert.equal(inA.length, 1, 'A not recomputed');
  assert.equal(inCa.length, 1, 'Ca not recomputed');
  assert.equal(inB.at(-1)!.length, 6);

  // A move from A to B: both hear it.
  await c.update('item', i2, { spaceId: b });
  await settle();
  assert.deepEqual(inA.at(-1), [i1]);
  assert.ok(inB.at(-1)!.includes(i2));
  assert.equal(inCa.length, 1, 'i2 was never in Ca');

  // Deleting space A hides the items of its category (the cascade), also for a subscriber by category.
  await c.delete('space', a);
  await settle();
  assert.deepEqual(inA.at(-1), []);
  assert.deepEqual(inCa.at(-1), []);
  assert.deepEqual(await c.list('item', { categoryId: ca }), []);
  await closeAll(e);
});

/** A storage that records, per read-write transaction, how many records it wrote and whether it wrote an outbox row. */
type Logged = { records: number; outbox: boolean; cursor: boolean; relaxed: boolean };

function counting(inner: Storage, log: Logged[]): Storage {
  return {
    name: inner.name,
    suspend: () => inner.suspend(),
    close: () => inner.close(),
    run: (mode, fn, opts) =>
      inner.run(mode, async (tx) => {
        const entry = { records: 0, outbox: false, cursor: false, relaxed: opts?.relaxed === true };
        const r = await fn({
          ...tx,
          get: tx.get,
          getAll: tx.getAll,
          put: (s, v, k) => {
            if (s === 'records') entry.records++;
            if (s === 'meta' && k === 'cursor') entry.cursor = true;
            tx.put(s, v, k);
          },
          add: (s, v) => {
            if (s === 'outbox') entry.outbox = true;
            return tx.add(s, v);
          },
          delete: (s, k) => {
            if (s === 'outbox') entry.outbox = true;
            tx.delete(s, k);
          },
        });
        if (mode === 'readwrite') log.push(entry);
        return r;
      }, opts),
  };
}

test('a big pull is applied in slices of at most SLICE (500) records, with progress, and a local write goes in between', async () => {
  const e = env();
  const space = 'space-big';
  e.server.remote({ operationId: 's', id: space, entityType: 'space', operation: 'create', data: { name: 'Big' } });
  const N = 2200;
  for (let k = 0; k < N; k++) {
    const id = `item-${String(k).padStart(5, '0')}`;
    const rec = { id, userId: 'u1', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', deletedAt: null, deviceId: 'other', spaceId: space, categoryId: null, title: `#${k}` };
    e.server.records.set(id, { kind: 'item', rec, version: ++e.server.version, by: 'other' });
  }
  const log: Logged[] = [];
  e.server.offline = true; // nothing happens until the test says so
  const c = await e.client({ storage: counting(e.storage(), log) });
  const progress: (SyncProgress | null)[] = [];
  let wrote: Promise<string> | null = null;
  c.onStatus((s) => {
    if (s.progress !== progress.at(-1)) progress.push(s.progress);
    // As soon as the first slice is in, the user adds an item.
    if (s.progress && s.progress.applied === SLICE && !wrote) wrote = c.create('item', { spaceId: space, title: 'typed during the pull' });
  });
  log.length = 0;
  e.server.offline = false;
  await c.sync();
  await until(() => c.status.pending === 0, 'sent');
  assert.ok(wrote, 'the write was made during the pull');
  const typed = await wrote!;
  assert.equal((await c.list('item', { spaceId: space })).length, N + 1);
  assert.ok(e.server.records.has(typed));

  const applied = log.filter((t) => t.records > 0 && !t.outbox);
  assert.ok(SLICE <= 500 && applied.every((t) => t.records <= SLICE + 1), `records per transaction: ${log.map((t) => t.records)}`);
  assert.ok(applied.length >= 3, `${applied.length} slices`);
  const writeAt = log.findIndex((t) => t.outbox);
  const lastCursor = log.map((t) => t.cursor).lastIndexOf(true);
  assert.ok(writeAt >= 0 && writeAt < lastCursor, `the local write (tx ${writeAt}) committed before the pull ended (tx ${lastCursor})`);
  // The first page's cursor is stored only with its last slice.
  assert.ok(!log[0]!.cursor, 'not with the first slice');
  // Only slices of server copies (which the server can send again) are relaxed: never the outbox, never the cursor.
  const relaxed = log.filter((t) => t.relaxed);
  assert.ok(relaxed.length >= 1, `some slice is relaxed: ${JSON.stringify(log)}`);
  assert.ok(relaxed.every((t) => !t.outbox && !t.cursor && t.records > 0), `relaxed: ${JSON.stringify(relaxed)}`);
  assert.ok(log.filter((t) => t.cursor || t.outbox).every((t) => !t.relaxed), 'the outbox and the cursor commit strict');

  const shown = progress.filter((p): p is SyncProgress => p !== null).map((p) => `${p.received}/${p.applied}`);
  assert.deepEqual(shown.slice(0, 3), ['1000/0', `1000/${SLICE}`, `1000/${2 * SLICE}`]);
  // The space and the items, all applied (the item typed during the pull may come back with a later page).
  const [gotRecords, appliedRecords] = shown.at(-1)!.split('/').map(Number);
  assert.ok(gotRecords === appliedRecords && (gotRecords === N + 1 || gotRecords === N + 2), `last progress ${shown.at(-1)}`);
  assert.equal(progress.at(-1), null, 'null once the round is over');
  assert.equal(c.status.progress, null);
  await closeAll(e);
});

test('a small pull shows no progress', async () => {
  const e = env();
  e.server.remote({ operationId: 's', id: 'sp', entityType: 'space', operation: 'create', data: { name: 'S' } });
  const c = await e.client();
  const seen: unknown[] = [];
  c.onStatus((s) => seen.push(s.progress));
  await c.sync();
  assert.ok((await c.get('space', 'sp')) !== undefined);
  assert.ok(seen.every((p) => p === null));
  await closeAll(e);
});

test('while a page is applied the next one is already asked for; the pages all arrive once, in order', async () => {
  const e = env();
  const space = 'space-p';
  e.server.remote({ operationId: 's', id: space, entityType: 'space', operation: 'create', data: { name: 'P' } });
  for (let k = 0; k < 2500; k++) {
    const id = `p-${String(k).padStart(5, '0')}`;
    const rec = { id, userId: 'u1', createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z', deletedAt: null, deviceId: 'other', spaceId: space, categoryId: null, title: `#${k}` };
    e.server.records.set(id, { kind: 'item', rec, version: ++e.server.version, by: 'other' });
  }
  const events: string[] = [];
  const log: Logged[] = [];
  const storage = counting(e.storage(), log);
  const run = storage.run;
  storage.run = (mode, fn) => run(mode, fn).then((r) => (mode === 'readwrite' && events.push('tx'), r));
  e.server.offline = true;
  const c = await e.client({ storage, fetch: ((u: string, i?: RequestInit) => (events.push('req'), e.server.fetch(u, i))) as typeof fetch });
  await until(() => !c.status.syncing, 'first (offline) round over');
  events.length = 0;
  e.server.requests.length = 0;
  e.server.offline = false;
  await c.sync();
  assert.equal((await c.list('item', { spaceId: space })).length, 2500);
  const cursors = e.server.syncRequests().map((r) => r.body.lastSyncTimestamp);
  assert.equal(cursors.length, 3, `3 pages of 1000, one request each: ${cursors}`);
  assert.equal(new Set(cursors).size, 3, 'each asked once');
  assert.deepEqual(events.slice(0, 3), ['req', 'req', 'tx'], `the second page is asked for before the first is stored: ${events.join(' ')}`);
  await closeAll(e);
});
