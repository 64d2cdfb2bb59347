// status.state / status.retry in words, signing in again with setToken, the kept rejected operations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SyncState } from '../src/index.js';
import { closeAll, env, settle, until } from './helpers.js';

test('state: idle, pending, syncing, retrying (unreachable, busy, rate-limited, with the time), offline', async () => {
  const e = env();
  const c = await e.client();
  await c.sync();
  assert.equal(c.status.state, 'idle');
  const retry = () => c.status.retry;
  assert.equal(retry(), null);
  const states: SyncState[] = [];
  c.onStatus((s) => states.at(-1) !== s.state && states.push(s.state));

  // The server unreachable while the browser is online.
  e.server.offline = true;
  const s = await c.create('space', { name: 'S' });
  await until(() => c.status.state === 'retrying', 'retrying');
  assert.ok(states.includes('syncing'), `states: ${states}`);
  assert.equal(retry()?.reason, 'unreachable');
  assert.equal(retry()?.at, c.status.lastError?.retryAt);
  assert.ok(retry()!.at > e.clock.now());

  // The browser says it is offline: that wins over the retry.
  const g = globalThis as { navigator?: unknown };
  const had = Object.getOwnPropertyDescriptor(g, 'navigator');
  Object.defineProperty(g, 'navigator', { value: { onLine: false }, configurable: true });
  try {
    await c.update('space', s, { name: 'S2' });
    assert.equal(c.status.state, 'offline');
    assert.equal(c.status.pending, 2);
  } finally {
    if (had) Object.defineProperty(g, 'navigator', had);
    else delete g.navigator;
  }

  // Busy (503) and rate-limited (429 with Retry-After), each with when the next attempt is due.
  e.server.offline = false;
  e.server.faults.push({ kind: 'status', status: 503, code: 'database_unavailable' });
  await c.sync().catch(() => undefined);
  assert.equal(c.status.state, 'retrying');
  assert.equal(retry()?.reason, 'busy');
  e.server.faults.push({ kind: 'status', status: 429, code: 'rate_limited', retryAfter: '30' });
  const before = e.clock.now();
  await c.sync().catch(() => undefined);
  assert.deepEqual(c.status.retry, { reason: 'rateLimited', at: before + 30_000 });
  assert.equal(c.status.state, 'retrying');

  // Back: everything sent.
  await c.sync();
  assert.equal(c.status.state, 'idle');
  assert.equal(c.status.retry, null);
  await closeAll(e);
});

test('401 without a better token: needsSignIn, the outbox kept; setToken signs in again and sends it', async () => {
  const e = env();
  e.server.validTokens = new Set(['fresh']);
  const c = await e.client({ token: 'expired' });
  const s = await c.create('space', { name: 'S' });
  await c.create('item', { spaceId: s, title: 'typed before the token expired' });
  await until(() => c.status.state === 'needsSignIn', 'needs sign-in');
  assert.equal(c.status.lastError?.status, 401);
  assert.equal(c.status.retry, null);
  assert.equal(c.status.pending, 2, 'the outbox is kept');
  // Retries with the bad token change nothing. Waits for the retry round to end (a request made
  // and the round over), not for a time: under load a round still reading the outbox would
  // otherwise meet setToken below and send with the fresh token itself.
  const sent = e.server.requests.length;
  e.clock.advance(120_000);
  await until(() => e.server.requests.length > sent && !c.status.syncing, 'the retry round with the bad token');
  assert.equal(c.status.state, 'needsSignIn');
  assert.equal(c.status.pending, 2);
  const states: SyncState[] = [];
  c.onStatus((st) => states.at(-1) !== st.state && states.push(st.state));
  c.setToken('fresh');
  await until(() => c.status.state === 'idle', 'idle');
  assert.deepEqual(states, ['pending', 'syncing', 'idle'], 'signed in: pending, then sent');
  assert.equal(c.status.pending, 0);
  assert.equal(e.server.live('item').length, 1);
  assert.equal(e.server.requests.at(-1)!.auth, 'Bearer fresh');
  await closeAll(e);
});

test('setToken while a request with the old token is in flight: its 401 is not a sign-in prompt, the round sends at once with the new token', async () => {
  const e = env();
  e.server.validTokens = new Set(['fresh']);
  // Holds the answers to requests while `held` is set (the request already reached the server).
  let held: (() => void)[] | null = null;
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const res = await (e.server.fetch as typeof globalThis.fetch)(input, init);
    if (held) await new Promise<void>((r) => held!.push(r));
    return res;
  }) as typeof globalThis.fetch;
  const c = await e.client({ token: 'expired', fetch });
  await until(() => c.status.state === 'needsSignIn', 'needs sign-in');
  held = [];
  const sent = e.server.requests.length;
  await c.create('space', { name: 'S' });
  const round = c.sync().catch(() => undefined); // a round now, with the expired token, its answer held
  await until(() => e.server.requests.length > sent && held!.length > 0, 'the request with the expired token');
  assert.equal(e.server.requests.at(-1)!.auth, 'Bearer expired');
  const states: SyncState[] = [];
  c.onStatus((st) => states.at(-1) !== st.state && states.push(st.state));
  c.setToken('fresh');
  const release = held;
  held = null;
  for (const r of release) r();
  // No clock advance: the new token is used without waiting for a backoff timer.
  await until(() => c.status.state === 'idle', `idle (states: ${states})`);
  assert.ok(!states.includes('needsSignIn'), `signed in, never asked again: ${states}`);
  assert.equal(e.server.live('space').length, 1);
  assert.equal(e.server.requests.at(-1)!.auth, 'Bearer fresh');
  assert.equal(c.status.lastError, null);
  await round;
  await closeAll(e);
});

test('rejected operations are kept across reloads (at most 50) until clearRejected', async () => {
  const e = env();
  e.server.offline = true;
  const c = await e.client();
  const s = await c.create('space', { name: 'S' });
  await c.create('item', { spaceId: s, title: 'x'.repeat(501) });
  e.server.offline = false;
  await c.sync();
  assert.equal(c.status.rejected.length, 1);
  await c.close();
  const c2 = await e.client();
  assert.equal(c2.status.rejected.length, 1, 'after a reload');
  assert.equal(c2.status.rejected[0]!.error.code, 'validation_failed');
  await c2.clearRejected();
  assert.equal(c2.status.rejected.length, 0);
  await c2.close();
  const c3 = await e.client();
  assert.equal(c3.status.rejected.length, 0, 'cleared for good');
  await closeAll(e);
});
