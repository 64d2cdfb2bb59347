// The local database: an in-memory mirror of the stored rows (so reads never
// wait for IndexedDB) kept in step with storage. Every change is one storage
// transaction that reads the current stored state itself, so several tabs
// writing at once stay correct; the mirror is then updated from what
// committed. All transactions of one tab run one after another, so the mirror
// only ever moves forward.

import type { Storage, Tx } from './storage.js';
import type { EntityType, RejectedOp } from './types.js';
import { applyOp, makeRow, refsOf, serverCopy, PLURAL, TYPES } from './model.js';
import type { OutboxRow, Rec, Row } from './model.js';

/** One ack of `POST /api/sync` (fields this SDK does not know are ignored). */
export interface Ack {
  operationId: string | null;
  success: boolean;
  conflict?: boolean;
  duplicate?: boolean;
  error?: { code: string; message: string };
  /** Fields of `data` the server cast to the field's type before storing (e.g. a numeric `movieId` stored as a string); absent when none. */
  coercedFields?: string[];
}

/** What the server sent: `serverUpdates` of a push, or the top level of `/api/sync/initial`. */
export interface Page {
  records: Partial<Record<'spaces' | 'categories' | 'items', Rec[]>>;
  /** `removedSpaces`: shared spaces the user left or was removed from (issue 11); their local copies must go. */
  removedSpaces?: string[];
  syncTimestamp: string;
  hasMore: boolean;
}

interface RemoteChange {
  t: EntityType;
  id: string;
  /** The server's record; null = drop the local copy (a tombstone or a removal). */
  rec: Rec | null;
  /** Part of a removed shared space: pending operations on it are dropped too. */
  removed?: boolean;
}

/**
 * The one place that turns a page into record changes. Removals first: a
 * removed space, every category in it and every item in it (by `spaceId`, or
 * by `categoryId` of such a category), found in the stored rows by their
 * server copy, or by the local view for a record the server never had. Then
 * the records of the page, so a space shared again in the same page stays.
 */
async function remoteChanges(page: Page, tx: Tx): Promise<RemoteChange[]> {
  const out: RemoteChange[] = [];
  const gone = new Set(page.removedSpaces ?? []);
  if (gone.size) {
    const rows = await tx.getAll<Row>('records');
    const spaces = new Set(gone);
    const of = (r: Row) => serverCopy(r) ?? r.v;
    const inside = (r: Row, k: 'spaceId' | 'categoryId', set: Set<string>) => {
      const v = of(r)?.[k];
      return typeof v === 'string' && set.has(v);
    };
    for (const r of rows)
      if ((r.t === 'space' && spaces.has(r.id)) || (r.t === 'category' && inside(r, 'spaceId', spaces))) gone.add(r.id);
    for (const r of rows) if (r.t === 'item' && (inside(r, 'spaceId', spaces) || inside(r, 'categoryId', gone))) gone.add(r.id);
    for (const r of rows) if (gone.has(r.id)) out.push({ t: r.t, id: r.id, rec: null, removed: true });
  }
  for (const t of TYPES)
    for (const rec of page.records[PLURAL[t]] ?? []) out.push({ t, id: rec.id, rec: rec.deletedAt ? null : rec });
  return out;
}

/** Ids a removal takes away: the records, and the removed spaces even when no local copy exists. */
function removedIds(page: Page, changes: RemoteChange[]): Set<string> {
  const ids = new Set(page.removedSpaces ?? []);
  for (const c of changes) if (c.removed) ids.add(c.id);
  return ids;
}

export const MAX_REJECTED = 50;

export interface Changed {
  ids: string[];
  outbox: boolean;
  all?: boolean;
}

export class Local {
  rows = new Map<string, Row>();
  outbox: OutboxRow[] = [];
  rejected: RejectedOp[] = [];
  cursor: string | null = null;
  deviceId = '';
  userId: string | null = null;
  /**
   * The hybrid logical clock (epoch ms): the newest timestamp this device has written or seen (records
   * pulled, acked). A new operation's timestamp is `max(wall clock, hlc + 1)`, so it is never behind what
   * the device already knew, and each is later than the one before. Kept in `meta.hlc`.
   */
  hlc = 0;
  /** Set while a from-scratch resync is under way (persisted: a reload restarts it). */
  resync: { seen: Set<string> } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Called after every change of the mirror (this tab's or, through refresh, another's). */
  onChange: (c: Changed, types: Set<EntityType>, own: boolean) => void = () => {};

  constructor(readonly storage: Storage) {}

  /** Resolves when everything queued so far has finished. */
  drain(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  /** Runs storage work after everything queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async load(newDeviceId: () => string): Promise<void> {
    await this.serial(async () => {
      const got = await this.storage.run('readwrite', async (tx) => {
        let deviceId = await tx.get<string>('meta', 'deviceId');
        if (!deviceId) tx.put('meta', (deviceId = newDeviceId()), 'deviceId');
        return {
          deviceId,
          rows: await tx.getAll<Row>('records'),
          outbox: await tx.getAll<OutboxRow>('outbox'),
          rejected: await tx.getAll<RejectedOp>('rejected'),
          cursor: (await tx.get<string>('meta', 'cursor')) ?? null,
          resync: (await tx.get<boolean>('meta', 'resync')) ?? false,
          hlc: (await tx.get<number>('meta', 'hlc')) ?? 0,
        };
      });
      this.deviceId = got.deviceId;
      this.install(got);
    });
  }

  /** Moves the clock up to a timestamp seen (ISO string or ms); never back. */
  observe(ts: unknown): void {
    const t = typeof ts === 'number' ? ts : typeof ts === 'string' ? Date.parse(ts) : NaN;
    if (t > this.hlc) this.hlc = t;
  }

  private observeRec(r: Rec | null | undefined): void {
    if (!r) return;
    this.observe(r.updatedAt);
    this.observe(r.createdAt);
    this.observe(r.deletedAt);
  }

  private install(got: { rows: Row[]; outbox: OutboxRow[]; rejected: RejectedOp[]; cursor: string | null; resync: boolean; hlc?: number }) {
    // Rows stored before the clock existed (or written by another tab) count as seen.
    this.observe(got.hlc);
    for (const r of got.rows) {
      this.observeRec(r.v);
      this.observeRec(r.s);
    }
    for (const o of got.outbox) this.observe(o.timestamp);
    this.rows = new Map(got.rows.map((r) => [r.id, r]));
    this.outbox = got.outbox;
    this.rejected = got.rejected.slice(-MAX_REJECTED);
    this.cursor = got.cursor;
    if (got.resync && !this.resync) this.resync = { seen: new Set() };
    if (!got.resync) this.resync = null;
    for (const r of got.rows) if (r.v?.userId && !this.userId) this.userId = r.v.userId as string;
  }

  /** Re-reads what another tab changed (`all`: everything, e.g. back from the bfcache). */
  refresh(c: Changed): Promise<void> {
    return this.serial(async () => {
      if (c.all) {
        const got = await this.storage.run('readonly', async (tx) => ({
          rows: await tx.getAll<Row>('records'),
          outbox: await tx.getAll<OutboxRow>('outbox'),
          rejected: await tx.getAll<RejectedOp>('rejected'),
          cursor: (await tx.get<string>('meta', 'cursor')) ?? null,
          resync: (await tx.get<boolean>('meta', 'resync')) ?? false,
          hlc: (await tx.get<number>('meta', 'hlc')) ?? 0,
        }));
        const types = new Set<EntityType>(TYPES);
        this.install(got);
        this.onChange({ ids: [], outbox: true, all: true }, types, false);
        return;
      }
      const got = await this.storage.run('readonly', async (tx) => {
        const rows: [string, Row | undefined][] = [];
        for (const id of c.ids) rows.push([id, await tx.get<Row>('records', id)]);
        const outbox = c.outbox ? await tx.getAll<OutboxRow>('outbox') : null;
        const rejected = c.outbox ? await tx.getAll<RejectedOp>('rejected') : null;
        return { rows, outbox, rejected };
      });
      const types = new Set<EntityType>();
      for (const [id, row] of got.rows) {
        const old = this.rows.get(id);
        if (old) types.add(old.t);
        if (row) types.add(row.t);
        row ? this.rows.set(id, row) : this.rows.delete(id);
        this.observeRec(row?.v);
      }
      if (got.outbox) this.outbox = got.outbox;
      if (got.rejected) this.rejected = got.rejected.slice(-MAX_REJECTED);
      this.onChange(c, types, false);
    });
  }

  /**
   * A local write: the record's new local state and its outbox row, in one transaction. Its timestamp is
   * the hybrid clock's next tick after `wall` (the stored clock is read in the transaction, so tabs
   * writing at once stay ordered too).
   */
  write(o: Omit<OutboxRow, 'seq' | 'timestamp'>, wall: number): Promise<void> {
    return this.serial(async () => {
      const row = await this.storage.run('readwrite', async (tx) => {
        const stored = (await tx.get<number>('meta', 'hlc')) ?? 0;
        const t = Math.max(wall, this.hlc + 1, stored + 1);
        tx.put('meta', t, 'hlc');
        const op: Omit<OutboxRow, 'seq'> = { ...o, timestamp: new Date(t).toISOString() };
        const cur = await tx.get<Row>('records', op.id);
        if (cur && cur.t !== op.entityType) throw new Error(`${op.id} is a ${cur.t}, not a ${op.entityType}`);
        if (op.operation !== 'create' && !cur?.v) throw new Error(`no ${op.entityType} ${op.id}`);
        const seq = await tx.add('outbox', op);
        const full = { ...op, seq };
        const server = serverCopy(cur);
        const base = cur?.v ?? null;
        const v = applyOp(base, full, this.userId);
        const next: Row = { id: op.id, t: op.entityType, v: v && !v.deletedAt ? { ...v, _pending: true } : null, s: server };
        tx.put('records', next);
        return { next, full, t };
      });
      this.hlc = Math.max(this.hlc, row.t);
      const op = row.full;
      this.rows.set(op.id, row.next);
      this.outbox.push(row.full);
      this.onChange({ ids: [op.id], outbox: true }, new Set([op.entityType]), true);
    });
  }

  /** The first `n` operations of the outbox, read from storage so other tabs' writes are included. */
  peekOutbox(n: number): Promise<OutboxRow[]> {
    // Read-only and not applied to the mirror, so it need not wait in this tab's queue.
    return this.storage.run('readonly', (tx) => tx.getAll<OutboxRow>('outbox', n));
  }

  /** Starts a resync (409 resync_required / invalid_cursor): forget the cursor, keep the outbox and, until the new copy is complete, the old rows. */
  startResync(): Promise<void> {
    return this.serial(async () => {
      await this.storage.run('readwrite', async (tx) => {
        tx.delete('meta', 'cursor');
        tx.put('meta', true, 'resync');
      });
      this.cursor = null;
      this.resync = { seen: new Set() };
    });
  }

  /**
   * Applies one response in ONE transaction: the acks (settled operations
   * leave the outbox and advance the server copy; rejected ones and their
   * dependants become dead letters), the page of records and removals (the
   * operations pending on removed records become dead letters too) and the
   * new cursor, then recomputes every touched row by replaying what is still
   * pending.
   */
  applyResponse(sent: readonly OutboxRow[], acks: readonly Ack[], page: Page, sentCursor: string | null, now: number): Promise<RejectedOp[]> {
    return this.serial(async () => {
      const resync = this.resync;
      const knownIds = resync && !page.hasMore ? [...this.rows.keys()] : [];
      const res = await this.storage.run('readwrite', async (tx) => {
        const outbox = await tx.getAll<OutboxRow>('outbox');
        const present = new Set(outbox.map((o) => o.seq));
        const stored = (await tx.get<string>('meta', 'cursor')) ?? null;
        const touched = new Map<string, { t: EntityType; s: Rec | null }>();
        const entry = async (id: string, t: EntityType | null) => {
          let e = touched.get(id);
          if (!e) {
            const row = await tx.get<Row>('records', id);
            e = { t: (t ?? row?.t)!, s: serverCopy(row) };
            if (!e.t) return null;
            touched.set(id, e);
          }
          return e;
        };
        const rejected: RejectedOp[] = [];
        const reject = (op: OutboxRow, error: { code: string; message: string }) => {
          tx.delete('outbox', op.seq);
          present.delete(op.seq);
          const { seq, deviceId, ...rest } = op;
          void seq;
          void deviceId;
          rejected.push({ ...rest, error, rejectedAt: now });
        };

        // 1. Acks, matched by position. An op another tab already settled is skipped.
        const conflicted = new Set<string>();
        const dead = new Set<string>();
        for (let i = 0; i < sent.length; i++) {
          const op = sent[i]!;
          const ack = acks[i];
          if (!ack || !present.has(op.seq)) continue;
          const e = await entry(op.id, op.entityType);
          if (ack.success) {
            tx.delete('outbox', op.seq);
            present.delete(op.seq);
            if (e) e.s = applyOp(e.s, op, this.userId);
            if (ack.conflict) conflicted.add(op.id);
          } else {
            reject(op, ack.error ?? { code: 'rejected', message: 'rejected by the server' });
            if (op.operation === 'create') dead.add(op.id);
          }
        }
        // 2. The page, only if no other tab moved the cursor meanwhile (then
        // it holds newer data, removals included; records of conflicting
        // writes are applied anyway).
        const takePage = stored === sentCursor;
        const changes = await remoteChanges(page, tx);
        for (const t of TYPES) for (const rec of page.records[PLURAL[t]] ?? []) this.observeRec(rec);
        for (const c of changes) {
          if (c.rec?.userId && !this.userId) this.userId = c.rec.userId as string;
          if (!takePage && (c.removed || !conflicted.has(c.id))) continue;
          if (!c.removed) resync?.seen.add(c.id);
          touched.set(c.id, { t: c.t, s: c.rec });
        }
        // Removed from a shared space: what is pending on its records, or
        // points into it, is dropped (the server would answer forbidden).
        if (takePage && page.removedSpaces?.length) {
          const gone = removedIds(page, changes);
          for (const op of outbox) {
            if (!present.has(op.seq) || !(gone.has(op.id) || refsOf(op).some((r) => gone.has(r)))) continue;
            await entry(op.id, op.entityType);
            reject(op, { code: 'space_removed', message: 'you are no longer a member of this shared space' });
            if (op.operation === 'create') dead.add(op.id);
          }
        }
        // 3. Operations that depend on a rejected create can never succeed.
        for (const op of outbox) {
          if (!present.has(op.seq) || !(dead.has(op.id) || refsOf(op).some((r) => dead.has(r)))) continue;
          await entry(op.id, op.entityType);
          reject(op, { code: 'dependency_rejected', message: `depends on a rejected operation on ${[op.id, ...refsOf(op)].find((r) => dead.has(r))}` });
          if (op.operation === 'create') dead.add(op.id);
        }
        // A finished resync: what the server no longer has goes (nothing resurrected).
        const resyncDone = !!resync && takePage && !page.hasMore;
        if (resyncDone) for (const id of knownIds) if (!resync.seen.has(id)) { const e = await entry(id, null); if (e) e.s = null; }
        // 4. Rows: the server copy with what is still pending replayed on top.
        const byId = new Map<string, OutboxRow[]>();
        for (const op of outbox) if (present.has(op.seq)) (byId.get(op.id) ?? byId.set(op.id, []).get(op.id)!).push(op);
        const rows: [string, Row | null][] = [];
        for (const [id, e] of touched) {
          const row = makeRow(id, e.t, e.s, byId.get(id) ?? [], this.userId);
          row ? tx.put('records', row) : tx.delete('records', id);
          rows.push([id, row]);
        }
        // 5. Dead letters (the newest MAX_REJECTED are kept).
        if (rejected.length) {
          for (const r of rejected) await tx.add('rejected', r);
          const all = await tx.getAll<RejectedOp & { seq: number }>('rejected');
          for (const r of all.slice(0, Math.max(0, all.length - MAX_REJECTED))) tx.delete('rejected', r.seq);
        }
        // 6. The clock (what was seen), the cursor with the records it covers.
        if (this.hlc > ((await tx.get<number>('meta', 'hlc')) ?? 0)) tx.put('meta', this.hlc, 'hlc');
        if (takePage) tx.put('meta', page.syncTimestamp, 'cursor');
        if (resyncDone) tx.delete('meta', 'resync');
        return { rows, outbox: outbox.filter((o) => present.has(o.seq)), rejected, cursor: takePage ? page.syncTimestamp : stored, resyncDone };
      });
      const types = new Set<EntityType>();
      for (const [id, row] of res.rows) {
        const old = this.rows.get(id);
        if (old) types.add(old.t);
        if (row) types.add(row.t);
        row ? this.rows.set(id, row) : this.rows.delete(id);
      }
      this.outbox = res.outbox;
      this.cursor = res.cursor;
      if (res.resyncDone) this.resync = null;
      if (res.rejected.length) this.rejected = [...this.rejected, ...res.rejected].slice(-MAX_REJECTED);
      const big = res.rows.length > 2000;
      this.onChange({ ids: big ? [] : res.rows.map(([id]) => id), outbox: true, all: big }, types, true);
      return res.rejected;
    });
  }
}

export type { Tx };
