// Storage failures: typed StorageError, `status.storage`, and a database deleted under the open app.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageError, type Storage } from '../src/index.js';
import { toStorageError } from '../src/errors.js';
import type { OutboxRow, Row } from '../src/model.js';
import { closeAll, env, until } from './helpers.js';

/** Read-write transactions fail with `fail()` while it returns an error. */
function faulty(inner: Storage, fail: () => Error | null): Storage {
  const s: Storage = {
    name: inner.name,
    suspend: () => inner.suspend(),
    close: () => inner.close(),
    run: (mode, fn) => {
      const e = mode === 'readwrite' ? fail() : null;
      return e ? Promise.reject(e) : inner.run(mode, fn);
    },
  };
  return s;
}

async function rawRead(e: ReturnType<typeof env>) {
  const s = e.storage();
  const got = await s.run('readonly', async (tx) => ({
    records: await tx.getAll<Row>('records'),
    outbox: await tx.getAll<OutboxRow>('outbox'),
    deviceId: await tx.get<string>('meta', 'deviceId'),
  }));
  s.close();
  return got;
}

test('a write that fails with QuotaExceededError rejects with StorageError("quota"), changes nothing, and shows in status until a write commits', async () => {
  const e = env();
  e.server.offline = true;
  let full = false;
  const c = await e.client({ storage: faulty(e.storage(), () => (full ? new DOMException('The quota has been exceeded.', 'QuotaExceededError') : null)) });
  const s = await c.create('space', { name: 'S' });
  assert.equal(c.status.storage, null);
  full = true;
  const err = await c.create('item', { spaceId: s, title: 'typed by the user' }).catch((x: unknown) => x);
  assert.ok(err instanceof StorageError, `got ${String(err)}`);
  assert.equal(err.reason, 'quota');
  assert.deepEqual(c.status.storage, { reason: 'quota', message: 'The quota has been exceeded.' });
  assert.equal(c.status.pending, 1, 'still only the space');
  assert.deepEqual(await c.list('item'), [], 'nothing half-written');
  // A bad call is not a storage error.
  await assert.rejects(c.update('item', 'no-such-id', { title: 'x' }), (x: unknown) => !(x instanceof StorageError));
  full = false;
  await c.create('item', { spaceId: s, title: 'typed by the user' });
  assert.equal(c.status.storage, null, 'cleared by the next committed write');
  assert.equal(c.status.pending, 2);
  await closeAll(e);
});

test('storage errors are classified: quota, closed, unknown; other errors are not storage errors', () => {
  assert.equal(toStorageError(new DOMException('x', 'QuotaExceededError'))?.reason, 'quota');
  assert.equal(toStorageError(new DOMException('The database connection is closing.', 'InvalidStateError'))?.reason, 'closed');
  assert.equal(toStorageError(new DOMException('x', 'TransactionInactiveError'))?.reason, 'closed');
  assert.equal(toStorageError(new Error('storage closed'))?.reason, 'closed');
  assert.equal(toStorageError(new DOMException('Internal error', 'UnknownError'))?.reason, 'unknown');
  assert.equal(toStorageError(new Error('no item x')), null);
  assert.equal(toStorageError(new TypeError('item.title is required')), null);
});

test('the database deleted under the open app is created again with the records and the outbox held in memory', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const deviceId = c.deviceId;
  const s = await c.create('space', { name: 'S' });
  const i1 = await c.create('item', { spaceId: s, title: 'one' });
  await c.update('item', i1, { notes: 'offline edit' });
  assert.equal(c.status.pending, 3);
  // Site data cleared / devtools "delete database": our connection gets versionchange and lets it go.
  await new Promise<void>((resolve, reject) => {
    const req = e.idb.deleteDatabase('db');
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
  });
  // Re-created at once from memory, without waiting for a write.
  await until(async () => (await rawRead(e)).outbox.length === 3, 'outbox written back');
  const raw = await rawRead(e);
  assert.deepEqual(raw.records.map((r) => r.id).sort(), [s, i1].sort());
  assert.equal(raw.deviceId, deviceId);
  assert.equal(c.status.pending, 3, '"3 pending" is true');
  // A later write lands next to them, and everything reaches the server.
  const i2 = await c.create('item', { spaceId: s, title: 'two' });
  assert.equal((await rawRead(e)).outbox.length, 4);
  e.server.offline = false;
  await c.sync();
  assert.equal(c.status.pending, 0);
  for (const id of [s, i1, i2]) assert.ok(e.server.records.has(id), id);
  assert.equal(e.server.records.get(i1)!.rec.notes, 'offline edit');
  await closeAll(e);
});

test('a write right after the deletion (before the reopen) waits for the re-created database and keeps everything', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  const del = e.idb.deleteDatabase('db');
  const deleted = new Promise((r) => (del.onsuccess = r));
  const i = await c.create('item', { spaceId: s, title: 'right after' });
  await deleted;
  await until(async () => (await rawRead(e)).outbox.length === 2, 'both operations stored');
  assert.equal(c.status.pending, 2);
  assert.ok((await rawRead(e)).records.some((r) => r.id === i));
  await closeAll(e);
});
