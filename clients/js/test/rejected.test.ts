// Per-operation rejections: dead letters, dependants, rollback; the rest of the outbox proceeds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RejectedOp } from '../src/index.js';
import { closeAll, env, settle, until } from './helpers.js';

test('a poison operation is dead-lettered, onRejected fires, and the operations after it are applied', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const seen: RejectedOp[][] = [];
  c.onRejected((r) => seen.push(r));
  const s = await c.create('space', { name: 'S' });
  const bad = await c.create('item', { spaceId: s, title: 'x'.repeat(501) });
  const good = await c.create('item', { spaceId: s, title: 'fine' });
  e.server.offline = false;
  await c.sync();
  assert.equal(c.status.pending, 0);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]![0]!.id, bad);
  assert.equal(seen[0]![0]!.error.code, 'validation_failed');
  assert.equal(c.status.rejected.length, 1);
  assert.equal(c.status.rejected[0]!.operation, 'create');
  assert.equal(await c.get('item', bad), undefined, 'the rejected create is rolled back');
  assert.equal((await c.get('item', good))?._pending, false);
  assert.ok(e.server.records.has(good));
  assert.ok(!e.server.records.has(bad));
  await closeAll(e);
});

test('a later operation on a rejected create, and an item under it, become dead letters locally', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const seen: RejectedOp[] = [];
  c.onRejected((r) => seen.push(...r));
  const s = await c.create('space', { name: 'S' });
  const cat = await c.create('category', { spaceId: s, name: 'C' });
  const item = await c.create('item', { spaceId: s, categoryId: cat, title: 'under C' });
  await c.update('category', cat, { name: 'C2' });
  const free = await c.create('item', { spaceId: s, title: 'free' });
  // Two 413s shrink the batch to one operation, so the category is refused alone, before its dependants are sent.
  e.server.records.set(cat, { kind: 'space', rec: { id: cat, deletedAt: null, name: 'taken' }, version: 0, by: 'x' });
  e.server.offline = false;
  e.server.faults.push({ kind: 'status', status: 413, code: 'too_many_changes' }, { kind: 'status', status: 413, code: 'too_many_changes' });
  e.server.requests.length = 0;
  await c.sync();
  assert.deepEqual(
    seen.map((r) => [r.id, r.operation, r.error.code]),
    [
      [cat, 'create', 'validation_failed'],
      [item, 'create', 'dependency_rejected'],
      [cat, 'update', 'dependency_rejected'],
    ],
  );
  const processed = [...e.server.acks.values()].map((a) => a.id);
  assert.ok(!processed.includes(item), 'the dependant item never reached the server');
  assert.equal(processed.filter((id) => id === cat).length, 1, 'only the category create was processed, not its update');
  assert.ok(e.server.records.has(free), 'the unrelated item went through');
  assert.equal(c.status.pending, 0);
  assert.equal(await c.get('item', item), undefined);
  await closeAll(e);
});

test('a rejected update rolls the local copy back to the server value, keeping later pending edits', async () => {
  const e = env();
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  const i = await c.create('item', { spaceId: s, title: 'original', notes: 'n0' });
  await until(() => c.status.pending === 0, 'synced');
  e.server.offline = true;
  await c.update('item', i, { title: 'y'.repeat(501) });
  await c.update('item', i, { notes: 'n1' });
  assert.equal((await c.get('item', i))?.title, 'y'.repeat(501), 'optimistic');
  e.server.offline = false;
  await c.sync();
  const got = await c.get('item', i);
  assert.equal(got?.title, 'original', 'rolled back');
  assert.equal(got?.notes, 'n1', 'the later, accepted edit stays');
  assert.equal(c.status.rejected.length, 1);
  await closeAll(e);
});

test('dead letters survive a reload and are capped', async () => {
  const e = env();
  e.server.offline = true;
  const a = await e.client();
  const s = await a.create('space', { name: 'S' });
  for (let n = 0; n < 55; n++) await a.create('item', { spaceId: s, title: 'z'.repeat(501) });
  e.server.offline = false;
  await a.sync();
  assert.equal(a.status.rejected.length, 50);
  await a.close();
  const b = await e.client();
  await settle();
  assert.equal(b.status.rejected.length, 50);
  assert.equal(b.status.pending, 0);
  await closeAll(e);
});
