// Error classes, backoff, Retry-After, 401 and token refresh, timeouts: the
// outbox is retried on a timer and never wedges.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, classifyResponse, parseRetryAfter, MAX_BACKOFF_MS } from '../src/errors.js';
import { closeAll, env, settle, until } from './helpers.js';

test('classifyResponse maps every documented status to its reaction', () => {
  const c = (s: number, code: string) => classifyResponse(s, { success: false, error: { code, message: code } }, null).kind;
  assert.equal(c(401, 'unauthorized'), 'auth');
  assert.equal(c(409, 'resync_required'), 'resync');
  assert.equal(c(400, 'invalid_cursor'), 'resync');
  assert.equal(c(413, 'too_many_changes'), 'shrink');
  assert.equal(c(413, 'payload_too_large'), 'shrink');
  assert.equal(c(429, 'rate_limited'), 'retry');
  assert.equal(c(503, 'database_unavailable'), 'retry');
  assert.equal(c(503, 'timeout'), 'retry');
  assert.equal(c(500, 'internal_error'), 'retry');
  assert.equal(c(400, 'validation_failed'), 'fatal');
  assert.equal(c(409, 'email_taken'), 'fatal');
  const e = classifyResponse(502, 'not json', '7');
  assert.equal(e.code, 'http_502');
  assert.equal(e.retryAfterMs, 7000);
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now), 10_000);
});

test('backoff grows from ~1 s to a 60 s cap, jittered, with Retry-After as a floor', () => {
  const lo = () => 0;
  const hi = () => 0.999999;
  assert.equal(backoffDelay(1, lo), 1000);
  assert.ok(backoffDelay(1, hi) <= 1000);
  assert.equal(backoffDelay(4, hi) > backoffDelay(3, hi), true);
  assert.ok(backoffDelay(3, lo) >= 2000 && backoffDelay(3, hi) <= 4000);
  for (let n = 1; n < 40; n++) {
    const d = backoffDelay(n, Math.random);
    assert.ok(d >= 1000 && d <= MAX_BACKOFF_MS, `attempt ${n}: ${d}`);
  }
  assert.ok(backoffDelay(20, lo) >= MAX_BACKOFF_MS / 2, 'the cap is jittered too');
  assert.equal(backoffDelay(1, lo, 30_000), 30_000);
  assert.equal(backoffDelay(1, lo, 10 * 3600_000), 600_000, 'an absurd Retry-After is bounded');
});

test('offline: the outbox is retried on a timer with growing delays and drains when the network returns, with no new write', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  await c.create('space', { name: 'S' });
  await until(() => c.status.lastError?.code === 'network' && !c.status.syncing, 'a failed round');
  assert.equal(c.status.online, false);
  const delays: number[] = [];
  for (let n = 0; n < 8; n++) {
    await until(() => e.clock.pending().length > 0 && !c.status.syncing, 'a retry timer');
    const d = e.clock.pending().filter((x) => x <= 120_000)[0]!; // the 5-minute poll is not a retry
    delays.push(d);
    e.clock.advance(d);
    await settle();
  }
  assert.ok(delays[0]! >= 1000 && delays[0]! <= 2000, `first retry ${delays[0]}`);
  assert.ok(delays.every((d, i) => i === 0 || d >= delays[i - 1]!), `non-decreasing: ${delays}`);
  assert.ok(delays.every((d) => d <= 60_000), `capped: ${delays}`);
  assert.equal(delays.at(-1), 45_000, 'at the cap (random fixed at 0.5: 30 s + 0.5 × 30 s)');
  assert.equal(c.status.pending, 1);
  e.server.offline = false;
  e.clock.advance(60_000);
  await until(() => c.status.pending === 0, 'drained');
  assert.equal(c.status.lastError, null);
  assert.equal(c.status.online, true);
  assert.ok(c.status.lastSyncedAt !== null);
  await closeAll(e);
});

test('503 and 429 wait at least Retry-After', async () => {
  for (const [status, code] of [[503, 'database_unavailable'], [429, 'rate_limited']] as const) {
    const e = env();
    e.server.offline = true;
    const c = await e.client();
    await c.create('space', { name: 'S' });
    await until(() => !c.status.syncing && c.status.lastError !== null, 'offline round');
    e.server.offline = false;
    e.server.faults.push({ kind: 'status', status, code, retryAfter: '17' });
    await c.sync().catch(() => undefined);
    assert.equal(c.status.lastError?.code, code);
    assert.equal(c.status.lastError?.status, status);
    assert.equal(c.status.online, true, 'a response means the server is reachable');
    const next = Math.min(...e.clock.pending());
    assert.ok(next >= 17_000, `waits Retry-After: ${next}`);
    e.clock.advance(16_000);
    await settle();
    assert.equal(c.status.pending, 1, 'not before Retry-After');
    e.clock.advance(next - 16_000);
    await until(() => c.status.pending === 0, 'sent after Retry-After');
    await closeAll(e);
  }
});

test('a request that hangs times out and is retried with the same operationIds', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client({ requestTimeoutMs: 5000 });
  const id = await c.create('space', { name: 'S' });
  await until(() => !c.status.syncing && c.status.lastError !== null, 'offline round');
  e.server.offline = false;
  e.server.faults.push({ kind: 'hang' });
  const round = c.sync().catch((err: Error) => err);
  await until(() => e.server.requests.length === 1, 'request sent');
  e.clock.advance(5000);
  const err = await round;
  assert.equal((err as { code?: string }).code, 'timeout');
  e.clock.advance(60_000);
  await until(() => c.status.pending === 0, 'retried');
  const ops = e.server.syncRequests().map((r) => (r.body.changes as { operationId: string }[])[0]?.operationId);
  assert.equal(ops[0], ops[1], 'same operationId on the retry');
  assert.ok(e.server.records.has(id));
  await closeAll(e);
});

test('401 asks getToken again, then goes on; a token that stays bad is asked a bounded number of times', async () => {
  const e = env();
  let calls = 0;
  let good = false;
  e.server.offline = true;
  const c = await e.client({ token: undefined, getToken: async () => (++calls, good ? 't1' : 'expired') });
  await c.create('space', { name: 'S' });
  await until(() => !c.status.syncing && c.status.lastError !== null, 'offline round');
  e.server.offline = false;
  calls = 0;
  await c.sync().catch(() => undefined);
  assert.equal(c.status.lastError?.code, 'unauthorized');
  assert.ok(calls >= 1 && calls <= 3, `getToken called ${calls} times`);
  assert.equal(c.status.pending, 1, 'the outbox is kept');
  good = true;
  e.clock.advance(120_000);
  await until(() => c.status.pending === 0, 'sent with the new token');
  assert.equal(e.server.requests.at(-1)!.auth, 'Bearer t1');
  await closeAll(e);
});

test('413 too_many_changes halves the batch until it fits', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  for (let n = 0; n < 9; n++) await c.create('item', { spaceId: s, title: `t${n}` });
  e.server.offline = false;
  e.server.faults.push({ kind: 'status', status: 413, code: 'too_many_changes' }, { kind: 'status', status: 413, code: 'too_many_changes' });
  e.server.requests.length = 0;
  await c.sync();
  const sizes = e.server.syncRequests().map((r) => (r.body.changes as unknown[]).length);
  assert.deepEqual(sizes.slice(0, 3), [10, 5, 2], 'halved after each 413');
  assert.equal(c.status.pending, 0);
  assert.equal(e.server.live('item').length, 9);
  await closeAll(e);
});
