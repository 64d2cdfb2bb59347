// The hybrid logical clock: a device's operation timestamps never fall behind what it has seen.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeAll, env, until } from './helpers.js';

const DAY = 86_400_000;

function sentChanges(e: ReturnType<typeof env>) {
  return e.server.syncRequests().flatMap((r) => r.body.changes as { id: string; operation: string; timestamp: string; data?: Record<string, unknown> }[]);
}

test('a device whose clock is a day behind edits a record it pulled: its timestamp is after the pulled one', async () => {
  const e = env();
  const now = Date.parse('2026-01-02T12:00:00.000Z');
  e.clock.t = now - DAY; // device A's clock
  // Device B (clock right) created and edited the item "now".
  const s = 'space-1';
  const i = 'item-1';
  e.server.remote({ operationId: 'b1', id: s, entityType: 'space', operation: 'create', data: { name: 'S' }, timestamp: new Date(now - 1000).toISOString() });
  e.server.remote({ operationId: 'b2', id: i, entityType: 'item', operation: 'create', data: { spaceId: s, title: 'by B' }, timestamp: new Date(now).toISOString() });
  const a = await e.client();
  await a.sync();
  const pulled = await a.get('item', i);
  assert.equal(pulled?.title, 'by B');
  assert.equal(pulled?.updatedAt, new Date(now).toISOString());

  await a.update('item', i, { title: 'by A, later' });
  const mine = await a.get('item', i);
  assert.ok(Date.parse(mine!.updatedAt) > now, `local view ${mine!.updatedAt} after the pulled ${pulled!.updatedAt}`);
  await until(() => a.status.pending === 0, 'sent');
  const op = sentChanges(e).find((c) => c.id === i && c.operation === 'update')!;
  assert.ok(Date.parse(op.timestamp) > now, `sent ${op.timestamp}, pulled ${pulled!.updatedAt}`);
  assert.equal(Date.parse(op.timestamp), now + 1, 'one tick after the newest seen, not the wall clock');
  await closeAll(e);
});

test('each operation is later than the one before, also across a reload, and the wall clock takes over when ahead', async () => {
  const e = env();
  e.server.offline = true;
  const t0 = e.clock.t;
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  await c.update('space', s, { name: 'S2' }); // same wall millisecond
  await c.update('space', s, { name: 'S3' });
  await c.close();
  // The clock goes back an hour (NTP correction, a dead battery) and the app is reloaded.
  e.clock.t = t0 - 3_600_000;
  const c2 = await e.client();
  await c2.update('space', s, { name: 'S4' });
  // Then the wall clock is ahead of everything seen: it is used as is.
  e.clock.t = t0 + 60_000;
  await c2.update('space', s, { name: 'S5' });
  const raw = e.storage();
  const ops = await raw.run('readonly', (tx) => tx.getAll<{ timestamp: string }>('outbox'));
  const hlc = await raw.run('readonly', (tx) => tx.get<number>('meta', 'hlc'));
  raw.close();
  const ts = ops.map((o) => Date.parse(o.timestamp));
  assert.deepEqual(ts, [t0, t0 + 1, t0 + 2, t0 + 3, t0 + 60_000]);
  assert.equal(hlc, t0 + 60_000, 'kept in the meta store');
  await closeAll(e);
});
