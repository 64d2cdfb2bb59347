// Shared spaces, client side: removals (`removedSpaces`) applied with the page
// and the cursor in one transaction, `forbidden` acks, the members calls and
// invitations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncError, type RejectedOp, type Storage } from '../src/index.js';
import type { OutboxRow, Row } from '../src/model.js';
import { closeAll, env, settle, until, type Env } from './helpers.js';

async function raw(e: Env, name = 'db') {
  const s = e.storage(name);
  const got = await s.run('readonly', async (tx) => ({
    records: await tx.getAll<Row>('records'),
    outbox: await tx.getAll<OutboxRow>('outbox'),
    cursor: await tx.get<string>('meta', 'cursor'),
  }));
  s.close();
  return got;
}

const uuid = () => crypto.randomUUID();

/**
 * Another member's shared space S (a category C, an item by spaceId, an item
 * by categoryId only), plus a personal space P with an item, all synced to
 * the client.
 */
async function sharedSetup(e: Env) {
  const ids = { S: uuid(), C: uuid(), I1: uuid(), I2: uuid(), P: uuid(), J: uuid() };
  e.server.members.set(ids.S, [{ userId: 'u2', email: 'owner@example.com', name: 'owner', role: 'owner', since: '2026-01-01T00:00:00.000Z' }]);
  const op = () => ({ operationId: uuid() });
  e.server.remote({ ...op(), id: ids.S, entityType: 'space', operation: 'create', data: { name: 'Shared' } });
  e.server.remote({ ...op(), id: ids.C, entityType: 'category', operation: 'create', data: { spaceId: ids.S, name: 'Movies' } });
  e.server.remote({ ...op(), id: ids.I1, entityType: 'item', operation: 'create', data: { spaceId: ids.S, categoryId: ids.C, title: 'by space' } });
  e.server.remote({ ...op(), id: ids.I2, entityType: 'item', operation: 'create', data: { categoryId: ids.C, title: 'by category only' } });
  e.server.remote({ ...op(), id: ids.P, entityType: 'space', operation: 'create', data: { name: 'Personal' } });
  e.server.remote({ ...op(), id: ids.J, entityType: 'item', operation: 'create', data: { spaceId: ids.P, title: 'mine' } });
  const c = await e.client();
  await c.sync();
  assert.equal((await c.list('item')).length, 3);
  return { c, ...ids };
}

test('removedSpaces drops the space, its categories and its items (by spaceId and by categoryId), server copies too; subscribers hear it', async () => {
  const e = env();
  const { c, S, C, I1, I2, P, J } = await sharedSetup(e);
  // A pending edit keeps a server copy in the row (`s`): it must go as well.
  e.server.offline = true;
  await c.update('item', J, { notes: 'pending, personal' });
  e.server.offline = false;

  const heard = { spaces: [] as number[], sItems: [] as number[], cats: [] as number[] };
  c.subscribe('space', undefined, (r) => heard.spaces.push(r.length));
  c.subscribe('item', { categoryId: C }, (r) => heard.sItems.push(r.length)); // I1 and I2 (which has no spaceId)
  c.subscribe('category', { spaceId: S }, (r) => heard.cats.push(r.length));
  const before = (await raw(e)).cursor;

  e.server.removeFrom(S);
  await c.sync();
  await settle();

  assert.deepEqual((await c.list('space')).map((s) => s.id), [P]);
  assert.deepEqual((await c.list('item')).map((i) => i.id), [J]);
  assert.deepEqual(await c.list('category'), []);
  for (const id of [S, C, I1, I2]) assert.equal(await c.get(id === S ? 'space' : id === C ? 'category' : 'item', id), undefined);
  const stored = await raw(e);
  assert.deepEqual(stored.records.map((r) => r.id).sort(), [P, J].sort(), 'no row of the removed space is left in storage');
  assert.notEqual(stored.cursor, before, 'the cursor moved with the removal');
  assert.equal(stored.outbox.length, 0, 'the personal edit was sent');
  assert.equal(e.server.records.get(J)!.rec.notes, 'pending, personal');
  assert.deepEqual(heard, { spaces: [2, 1], sItems: [2, 0], cats: [1, 0] });
  assert.equal(c.status.rejected.length, 0, 'nothing was pending in the space: no dead letters');
  await closeAll(e);
});

test('operations pending on a removed space are dropped as space_removed dead letters; others proceed', async () => {
  const e = env();
  const { c, S, C, I1, P } = await sharedSetup(e);
  const seen: RejectedOp[] = [];
  c.onRejected((r) => seen.push(...r));
  let local: { I3: string; K: string } | null = null;
  // The removal arrives in the answer to a pull; meanwhile (the request in
  // flight) the app edits the shared item, creates an item in the shared
  // space and one under its category, and a personal item. None of the
  // shared ones was sent, so only the removal can settle them.
  e.server.removeFrom(S);
  e.server.beforeReply = async () => {
    e.server.beforeReply = null;
    await c.update('item', I1, { title: 'edited while being removed' });
    const I3 = await c.create('item', { spaceId: S, title: 'new in shared' });
    await c.update('item', I3, { notes: 'and edited' });
    await c.create('item', { categoryId: C, title: 'under the shared category' });
    const K = await c.create('item', { spaceId: P, title: 'personal, new' });
    local = { I3, K };
  };
  await c.sync();
  await until(() => c.status.pending === 0 && !c.status.syncing, 'drained');
  assert.ok(local);
  const { I3, K } = local as { I3: string; K: string };
  assert.deepEqual(
    seen.map((r) => [r.operation, r.error.code]),
    [['update', 'space_removed'], ['create', 'space_removed'], ['update', 'space_removed'], ['create', 'space_removed']],
  );
  assert.deepEqual(seen.map((r) => r.id).slice(0, 3), [I1, I3, I3]);
  const sent = e.server.syncRequests().flatMap((r) => (r.body.changes as { id: string }[]).map((x) => x.id));
  assert.ok(!sent.includes(I1) && !sent.includes(I3), 'nothing on the removed space was sent');
  assert.ok(sent.includes(K), 'the personal create was sent');
  assert.deepEqual((await c.list('item')).map((i) => i.title).sort(), ['mine', 'personal, new']);
  assert.equal((await raw(e)).records.length, 3, 'P, J, K');
  await closeAll(e);
});

test('a removal is applied in the same transaction as its cursor: a failed commit leaves both, and the next pull gets it again', async () => {
  const e = env();
  const { c, S } = await sharedSetup(e);
  const before = (await raw(e)).cursor;
  // Abort the transaction that stores a new cursor, once (a crash mid-commit).
  const inner = e.storage();
  const flaky: Storage = {
    name: inner.name,
    suspend: () => inner.suspend(),
    close: () => inner.close(),
    run: (mode, fn) =>
      inner.run(mode, async (tx) => {
        let cursorPut = false;
        const result = await fn({ ...tx, put: (s, v, k) => ((cursorPut ||= s === 'meta' && k === 'cursor'), tx.put(s, v, k)) });
        if (cursorPut && failOnce) {
          failOnce = false;
          throw new Error('disk went away');
        }
        return result;
      }),
  };
  let failOnce = false;
  await c.close();
  const c2 = await e.client({ storage: flaky });
  await c2.sync(); // the startup round, unharmed
  e.server.removeFrom(S);
  failOnce = true;
  await assert.rejects(c2.sync(), (err: unknown) => err instanceof SyncError && err.code === 'storage');
  let stored = await raw(e);
  assert.equal(stored.cursor, before, 'the cursor did not move');
  assert.equal(stored.records.length, 6, 'and nothing was deleted');
  assert.equal((await c2.list('space')).length, 2, 'the mirror still shows the space');
  // The retry pulls from the old cursor; the server sends the removal again.
  e.clock.advance(60_000);
  await until(async () => (await c2.list('space')).length === 1, 'the removal applied on retry');
  stored = await raw(e);
  assert.equal(stored.records.length, 2);
  assert.notEqual(stored.cursor, before);
  const last = e.server.syncRequests().at(-1)!.body.lastSyncTimestamp;
  assert.equal(last, before, 'the retry was sent with the old cursor');
  await closeAll(e);
});

test('a lost answer with a removal: the next pull with the old cursor gets it again', async () => {
  const e = env();
  const { c, S } = await sharedSetup(e);
  e.server.removeFrom(S);
  e.server.faults.push({ kind: 'lost' });
  await assert.rejects(c.sync());
  assert.equal((await c.list('space')).length, 2);
  await c.sync();
  assert.equal((await c.list('space')).length, 1);
  assert.match(String((await raw(e)).cursor), /^v1\.u\.\d+\.s7\.\d+$/, 'the cursor is kept as the opaque string it is');
  await closeAll(e);
});

test('another tab sees the removal', async () => {
  const e = env();
  const { c, S } = await sharedSetup(e);
  const other = await e.client();
  await other.sync(); // its own startup round is over: from now on it learns only through the channel
  assert.equal((await other.list('space')).length, 2);
  const counts: number[] = [];
  other.subscribe('item', { spaceId: S }, (r) => counts.push(r.length));
  e.server.removeFrom(S);
  await c.sync();
  await until(async () => (await other.list('space')).length === 1, 'the removal reached the other tab', 5000);
  assert.deepEqual((await other.list('item')).map((i) => i.title), ['mine']);
  assert.equal(counts.at(-1), 0);
  await closeAll(e);
});

test('a viewer\'s writes are forbidden per op: dead letters, rolled back to the server copy, the rest proceeds', async () => {
  const e = env();
  const { c, S, C, I1, I2, P } = await sharedSetup(e);
  const seen: RejectedOp[] = [];
  c.onRejected((r) => seen.push(...r));
  e.server.viewerOf.add(S);
  e.server.offline = true;
  await c.update('item', I1, { title: 'viewer edit' });
  const created = await c.create('item', { spaceId: S, categoryId: C, title: 'viewer create' });
  await c.delete('item', I2);
  const mine = await c.create('item', { spaceId: P, title: 'personal still works' });
  assert.equal((await c.get('item', I1))?.title, 'viewer edit', 'optimistic meanwhile');
  assert.equal(await c.get('item', I2), undefined);
  e.server.offline = false;
  await c.sync();
  assert.deepEqual(
    seen.map((r) => [r.id, r.operation, r.error.code]),
    [
      [I1, 'update', 'forbidden'],
      [created, 'create', 'forbidden'],
      [I2, 'delete', 'forbidden'],
    ],
  );
  assert.equal(c.status.pending, 0);
  assert.equal((await c.get('item', I1))?.title, 'by space', 'rolled back');
  assert.equal((await c.get('item', I1))?._pending, false);
  assert.equal(await c.get('item', created), undefined, 'the refused create is gone');
  assert.equal((await c.get('item', I2))?.title, 'by category only', 'the refused delete is undone');
  assert.equal((await c.get('item', mine))?._pending, false, 'the personal write went through');
  assert.ok(e.server.records.has(mine));
  assert.equal(c.status.rejected.length, 3);
  await closeAll(e);
});

test('members calls: paths, bodies, the members returned, and a sync round after a change', async () => {
  const e = env();
  const { c, S } = await sharedSetup(e);
  const path = (p: string) => e.server.requests.filter((r) => r.path === p).length;
  assert.deepEqual((await c.members(S)).map((m) => [m.email, m.role]), [['owner@example.com', 'owner']]);
  // Bob accepted an invitation meanwhile (see the invitation tests).
  e.server.members.get(S)!.push({ userId: 'u3', email: 'bob@example.com', name: 'bob', role: 'viewer', since: '' });
  const syncsBefore = path('/api/sync');
  const after = await c.setRole(S, 'u3', 'editor');
  assert.deepEqual(after.map((m) => m.role), ['owner', 'editor']);
  assert.deepEqual(e.server.requests.at(-1)!.body, { role: 'editor' });
  await until(() => path('/api/sync') > syncsBefore, 'a sync round after a change of members');
  await assert.rejects(c.invite(S, 'bob@example.com'), (err: unknown) => err instanceof SyncError && err.code === 'conflict' && err.status === 409);
  assert.equal((await c.removeMember(S, 'u3')).length, 1);
  // leave(): the user id from GET /api/auth/me (no userId option), then DELETE of that member.
  e.server.members.get(S)!.push({ userId: 'u1', email: 'me@example.com', name: 'me', role: 'editor', since: '' });
  await c.leave(S);
  assert.ok(e.server.requests.some((r) => r.path === '/api/auth/me'));
  assert.deepEqual(e.server.members.get(S)!.map((m) => m.userId), ['u2']);
  await assert.rejects(c.members(uuid()), (err: unknown) => err instanceof SyncError && err.code === 'not_found' && err.status === 404);
  await closeAll(e);
});

test('invite answers a pending invitation and adds no member; the owner lists and revokes', async () => {
  const e = env();
  const { c, S } = await sharedSetup(e);
  const sent = await c.invite(S, 'bob@example.com', 'viewer');
  assert.equal(sent.status, 'pending');
  assert.equal(sent.role, 'viewer');
  assert.deepEqual(e.server.requests.at(-1)!.body, { email: 'bob@example.com', role: 'viewer' });
  assert.equal(e.server.requests.at(-1)!.path, `/api/spaces/${S}/members`);
  assert.equal((await c.members(S)).length, 1, 'not a member before accepting');
  const again = await c.invite(S, 'bob@example.com', 'editor');
  assert.equal(again.id, sent.id, 'inviting again refreshes it');
  assert.deepEqual((await c.spaceInvitations(S)).map((i) => [i.email, i.role]), [['bob@example.com', 'editor']]);
  assert.equal((await c.revokeInvitation(S, sent.id)).status, 'revoked');
  assert.deepEqual(await c.spaceInvitations(S), []);
  await assert.rejects(c.revokeInvitation(S, sent.id), (err: unknown) => err instanceof SyncError && err.code === 'not_found');
  await closeAll(e);
});

function received(spaceId: string, name = 'FREE GIFT') {
  return {
    id: uuid(),
    spaceId,
    spaceName: name,
    inviter: { name: 'Ann', email: 'ann@example.com' },
    role: 'editor',
    createdAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-01-15T00:00:00.000Z',
  };
}

test('invitations: listed, accepted (a sync round follows), declined with or without a block', async () => {
  const e = env();
  const c = await e.client();
  await c.sync();
  const [a, b, d] = [received(uuid()), received(uuid()), received(uuid())];
  e.server.received.push(a, b, d);
  assert.deepEqual((await c.invitations()).map((i) => i.id), [a.id, b.id, d.id]);
  const syncs = e.server.syncRequests().length;
  const accepted = await c.acceptInvitation(a.id);
  assert.equal(accepted.spaceId, a.spaceId);
  assert.deepEqual(accepted.members.map((m) => m.role), ['owner', 'editor']);
  await until(() => e.server.syncRequests().length > syncs, 'the space is pulled at once');
  await c.declineInvitation(b.id);
  assert.deepEqual(e.server.requests.at(-1)!.body, { block: false });
  await c.declineInvitation(d.id, { block: true });
  assert.deepEqual(e.server.requests.at(-1)!.body, { block: true });
  e.server.received.push(received(d.spaceId));
  assert.deepEqual(await c.invitations(), [], 'the blocked space invites in vain');
  await assert.rejects(c.acceptInvitation(b.id), (err: unknown) => err instanceof SyncError && err.code === 'not_found' && err.status === 404);
  await closeAll(e);
});

/** A stand-in EventSource the test fires `change` events on. */
class FakeEventSource {
  static last: FakeEventSource | null = null;
  onopen: ((e: Event) => void) | null = null;
  onerror: ((e: Event) => void) | null = null;
  private listeners: ((e: MessageEvent) => void)[] = [];
  constructor(readonly url: string) {
    FakeEventSource.last = this;
    queueMicrotask(() => this.onopen?.(new Event('open')));
  }
  addEventListener(_type: string, cb: (e: MessageEvent) => void) {
    this.listeners.push(cb);
  }
  close() {}
  poke() {
    for (const cb of this.listeners) cb(new MessageEvent('change', { data: '{}' }));
  }
}

test('onInvitations reads at once, after stream pokes (at most every 10 s), and after an answer; nothing without a subscriber', async () => {
  const e = env();
  const c = await e.client({ live: true, EventSource: FakeEventSource });
  await until(() => FakeEventSource.last !== null, 'the stream is open');
  const reads = () => e.server.requests.filter((r) => r.path === '/api/invitations').length;
  FakeEventSource.last!.poke();
  await settle();
  assert.equal(reads(), 0, 'nobody watches: no request');
  const heard: string[][] = [];
  const off = c.onInvitations((l) => heard.push(l.map((i) => i.spaceName)));
  await until(() => heard.length === 1, 'the first read');
  assert.deepEqual(heard, [[]]);
  // An invitation arrives: the server pokes the stream.
  e.server.received.push(received(uuid(), 'Movies'));
  FakeEventSource.last!.poke();
  FakeEventSource.last!.poke();
  await settle();
  assert.equal(reads(), 1, 'within 10 s of the last read: later, once');
  e.clock.advance(10_000);
  await until(() => heard.length === 2, 'the read after the pokes');
  assert.deepEqual(heard[1], ['Movies']);
  assert.equal(reads(), 2);
  await c.declineInvitation(e.server.received[0]!.id);
  await until(() => heard.length === 3, 'the read after the answer');
  assert.deepEqual(heard[2], []);
  off();
  e.clock.advance(20_000);
  FakeEventSource.last!.poke();
  await settle();
  assert.equal(reads(), 3, 'unsubscribed: no more reads');
  await closeAll(e);
});

test('members calls are online only: offline they reject with a SyncError and queue nothing; a 401 asks getToken again', async () => {
  const e = env();
  let asked = 0;
  let current = 't1';
  const c = await e.client({ getToken: async () => (asked++, current), userId: 'u1' });
  await c.sync();
  const S = uuid();
  e.server.members.set(S, [{ userId: 'u1', email: 'me@example.com', name: 'me', role: 'owner', since: '' }]);
  const askedBefore = asked;
  e.server.validTokens = new Set(['t2']);
  current = 't2';
  assert.equal((await c.members(S)).length, 1, 'after a 401 the call is retried with a fresh token');
  assert.equal(asked, askedBefore + 1);
  e.server.offline = true;
  await assert.rejects(c.invite(S, 'x@example.com'), (err: unknown) => err instanceof SyncError && err.code === 'network' && err.status === undefined);
  await assert.rejects(c.leave(S), (err: unknown) => err instanceof SyncError && err.code === 'network');
  e.server.offline = false;
  assert.equal(c.status.pending, 0, 'a members call is never queued');
  assert.equal((await c.members(S)).length, 1, 'nothing was added');
  assert.ok(!e.server.requests.some((r) => r.path === '/api/auth/me'), 'the userId option saves the lookup');
  await closeAll(e);
});
