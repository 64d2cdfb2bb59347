// The sender: push the outbox in FIFO batches, pull to the head, retry on a
// timer. A round never gives up on the outbox: a failed request is retried
// with backoff for as long as anything is pending, whether or not the app
// writes again.

import { backoffDelay, classifyResponse, networkError, SyncError } from './errors.js';
import type { Ack, Local, Page } from './local.js';
import type { OutboxRow, Rec } from './model.js';
import type { Model } from './schema.js';
import { SLICE } from './local.js';
import type { Clock, RejectedOp, SyncErrorInfo, SyncProgress } from './types.js';

export const MAX_OPS_PER_REQUEST = 1000; // the server's default MAX_CHANGES_PER_SYNC
const MAX_BODY_CHARS = 2_000_000; // well under the server's 5 MiB MAX_BODY_BYTES
const PAGE_LIMIT = 1000;
const MAX_REQUESTS_PER_ROUND = 10_000; // bounds a round even against a server that always says hasMore
const MAX_TOKEN_REFRESH = 2;

export interface EngineOptions {
  url: string;
  fetch: typeof fetch;
  token?: string;
  getToken?: () => Promise<string | null>;
  local: Local;
  clock: Clock;
  random: () => number;
  requestTimeoutMs: number;
  onState(s: { syncing?: boolean; online?: boolean; lastError?: SyncErrorInfo | null; lastSyncedAt?: number; progress?: SyncProgress | null }): void;
  onRejected(r: RejectedOp[]): void;
}

export class Engine {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: unknown = null;
  private attempts = 0;
  private token: string | null;
  /** Counts setToken calls: a 401 to a request made before the latest one is not the new token's answer. */
  private tokenGen = 0;
  private closed = false;
  /** The error of the last round, null if it succeeded. */
  lastFailure: SyncError | null = null;

  constructor(private readonly o: EngineOptions) {
    this.token = o.token ?? null;
  }

  /** Runs a round now, or once more after the one in progress. Resolves when the outbox is sent and the head pulled, or the round failed (a retry is then scheduled). */
  round(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.cancelTimer();
    const p = (async () => {
      try {
        let ok: boolean;
        do {
          this.again = false;
          ok = await this.once();
          // After a failure the retry timer decides, not the calls that came in meanwhile.
        } while (ok && this.again && !this.closed);
      } finally {
        this.running = null;
      }
    })();
    this.running = p;
    return p;
  }

  /**
   * After a local write: a round now (or right after the one in flight, so
   * writes made meanwhile share a request), unless a retry is scheduled after
   * a failure; then that timer, or the network coming back, sends it.
   */
  afterWrite(): void {
    if (this.closed || (this.timer !== null && this.attempts > 0)) return;
    void this.round();
  }

  /** Resets the backoff and runs a round (the network came back, the tab became visible). */
  now(): Promise<void> {
    this.attempts = 0;
    return this.round();
  }

  /** Stops retrying (this tab is no longer the sender); a round in progress ends normally. */
  pause(): void {
    this.cancelTimer();
  }

  idle(): Promise<void> {
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  close(): void {
    this.closed = true;
    this.cancelTimer();
  }

  private cancelTimer() {
    if (this.timer !== null) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number) {
    this.cancelTimer();
    if (this.closed) return;
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = null;
      void this.round();
    }, ms);
  }

  private async once(): Promise<boolean> {
    const { local } = this.o;
    this.o.onState({ syncing: true });
    let batch = MAX_OPS_PER_REQUEST;
    let tokenRefreshes = 0;
    let resyncs = 0;
    let sentOps = 0;
    let received = 0;
    let big = false;
    let ahead: { from: string; gen: number; data: Promise<Record<string, unknown>> } | null = null;
    try {
      for (let n = 0; n < MAX_REQUESTS_PER_ROUND && !this.closed; n++) {
        let gen = this.tokenGen;
        try {
          // A resync pulls the whole server copy first, then pushes the outbox.
          const ops = local.resync ? [] : fit(await local.peekOutbox(batch));
          sentOps = ops.length;
          const cursor = local.cursor;
          const pull = (from: string | null, changes: OutboxRow[]) =>
            this.call('POST', '/api/sync', { deviceId: local.deviceId, lastSyncTimestamp: from, changes: changes.map(wire), limit: PAGE_LIMIT });
          // The page asked for while the previous one was being applied, if it still fits: nothing
          // to send, and the cursor it was asked from is the one stored now.
          const useAhead = ahead && ops.length === 0 && ahead.from === cursor;
          if (useAhead) gen = ahead!.gen;
          const data = useAhead ? await ahead!.data : await pull(cursor, ops);
          ahead = null;
          const page = toPage(data, local.model);
          // More to pull and nothing sent: ask for the next page now, and apply this one meanwhile.
          if (page.hasMore && ops.length === 0) {
            ahead = { from: page.syncTimestamp, gen: this.tokenGen, data: pull(page.syncTimestamp, []) };
            ahead.data.catch(() => undefined); // unused if it no longer fits; else awaited above
          }
          const acks = Array.isArray(data.acknowledged) ? (data.acknowledged as Ack[]) : [];
          if (acks.length !== ops.length) throw new SyncError('retry', 'bad_response', `expected ${ops.length} acks, got ${acks.length}`);
          let n = 0;
          for (const t in page.records) n += page.records[t]!.length;
          const before = received;
          received += n;
          big ||= page.hasMore || n > SLICE;
          if (big) this.o.onState({ progress: { received, applied: before } });
          const rejected = await local.applyResponse(ops, acks, page, cursor, this.o.clock.now(), (applied) => {
            if (big) this.o.onState({ progress: { received, applied: before + applied } });
          });
          this.o.onState({ online: true });
          if (rejected.length) this.o.onRejected(rejected);
          // Loop while the server has more or anything is pending; never by counting records.
          if (!page.hasMore && !local.resync && local.outbox.length === 0) break;
        } catch (e) {
          const err = e instanceof SyncError ? e : new SyncError('retry', 'storage', e instanceof Error ? e.message : String(e));
          ahead = null; // a failed page is asked for again, not awaited twice
          // The app signed in again while this request (with the old token) was out: send again now
          // with the new one, rather than report "needs sign-in" and wait for the backoff timer.
          if (err.kind === 'auth' && gen !== this.tokenGen && tokenRefreshes < MAX_TOKEN_REFRESH) {
            tokenRefreshes++;
            continue;
          }
          if (err.kind === 'auth' && this.o.getToken && tokenRefreshes < MAX_TOKEN_REFRESH) {
            tokenRefreshes++;
            this.token = null; // ask getToken again before the next request
            continue;
          }
          if (err.kind === 'resync' && resyncs < 2) {
            resyncs++;
            await local.startResync();
            continue;
          }
          if (err.kind === 'shrink' && sentOps > 1) {
            batch = Math.max(1, Math.floor(sentOps / 2));
            continue;
          }
          throw err;
        }
      }
      this.attempts = 0;
      this.lastFailure = null;
      this.o.onState({ lastError: null, lastSyncedAt: this.o.clock.now() });
      return true;
    } catch (e) {
      const err = e as SyncError;
      this.lastFailure = err;
      this.attempts++;
      const delay = backoffDelay(this.attempts, this.o.random, err.retryAfterMs);
      const retryAt = this.o.clock.now() + delay;
      this.o.onState({
        online: err.code !== 'network' && err.code !== 'timeout',
        lastError: { code: err.code, message: err.message, status: err.status, retryAt },
      });
      // Retry on a timer, not on the next local write, so the queue never wedges.
      this.schedule(delay);
      return false;
    } finally {
      this.o.onState({ syncing: false, progress: null });
    }
  }

  private async authHeader(): Promise<string | null> {
    if (!this.token && this.o.getToken) {
      try {
        this.token = await this.o.getToken();
      } catch (e) {
        throw new SyncError('auth', 'unauthorized', `getToken failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return this.token ? `Bearer ${this.token}` : null;
  }

  /** A new token from the app (signed in again): used from the next request; the backoff starts over. */
  setToken(token: string | null): void {
    this.token = token;
    this.tokenGen++;
    this.attempts = 0;
  }

  /** Forgets the token, so the next request asks `getToken` again (after a 401). */
  dropToken(): void {
    if (this.o.getToken) this.token = null;
  }

  /** One API call with a timeout; the `data` of a success envelope, or a classified SyncError. */
  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const auth = await this.authHeader();
    const ctl = new AbortController();
    let timedOut = false;
    const t = this.o.clock.setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.o.requestTimeoutMs);
    try {
      let res: Response;
      try {
        res = await this.o.fetch(this.o.url + path, {
          method,
          headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(auth ? { Authorization: auth } : {}) },
          body: body !== undefined ? JSON.stringify(body) : undefined,
          signal: ctl.signal,
          cache: 'no-store',
        });
      } catch (e) {
        throw networkError(e, timedOut);
      }
      let json: unknown = null;
      try {
        json = await res.json();
      } catch (e) {
        if (timedOut) throw networkError(e, true);
      }
      if (!res.ok) throw classifyResponse(res.status, json, res.headers.get('retry-after'));
      const env = json as { success?: boolean; data?: Record<string, unknown> } | null;
      if (!env || env.success !== true || typeof env.data !== 'object' || !env.data)
        throw new SyncError('retry', 'bad_response', 'the server answered without a success envelope', res.status);
      return env.data;
    } finally {
      this.o.clock.clearTimeout(t);
    }
  }
}

/** Keeps a batch under the body limit (an operation with a huge note goes alone). */
function fit(ops: OutboxRow[]): OutboxRow[] {
  let size = 0;
  for (let i = 0; i < ops.length; i++) {
    size += JSON.stringify(ops[i]!.data ?? null).length + 200;
    if (size > MAX_BODY_CHARS && i > 0) return ops.slice(0, i);
  }
  return ops;
}

function wire(op: OutboxRow) {
  const c: Record<string, unknown> = {
    operationId: op.operationId,
    id: op.id,
    entityType: op.entityType,
    operation: op.operation,
    timestamp: op.timestamp,
    deviceId: op.deviceId,
  };
  if (op.data) c.data = op.data;
  return c;
}

/** A response as a page: each collection's records from the array named by its `plural`. */
function toPage(data: Record<string, unknown>, model: Model): Page {
  const src = (data.serverUpdates ?? data) as Record<string, unknown>;
  if (typeof data.syncTimestamp !== 'string') throw new SyncError('retry', 'bad_response', 'no syncTimestamp in the response');
  const records: Record<string, Rec[]> = {};
  for (const t of model.types) {
    const l = src[model.plural[t]!];
    records[t] = Array.isArray(l) ? (l as Rec[]) : [];
  }
  return {
    records,
    removedSpaces: Array.isArray(data.removedSpaces) ? data.removedSpaces.filter((x): x is string => typeof x === 'string') : [],
    syncTimestamp: data.syncTimestamp,
    hasMore: data.hasMore === true,
  };
}
