// The local database: an in-memory mirror of the stored rows (so reads never
// wait for IndexedDB) kept in step with storage. Every change is one storage
// transaction that reads the current stored state itself, so several tabs
// writing at once stay correct; the mirror is then updated from what
// committed. All transactions of one tab run one after another, so the mirror
// only ever moves forward.

import type { Storage, Tx } from './storage.js';
import { StorageError, toStorageError } from './errors.js';
import type { RejectedOp } from './types.js';
import { applyOp, makeRow, refsOf, serverCopy } from './model.js';
import type { OutboxRow, Rec, Row } from './model.js';
import type { Model } from './schema.js';

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
  /** By collection name (read from the arrays named by each collection's `plural`). */
  records: Record<string, Rec[]>;
  /** `removedSpaces`: sharing roots (records of a `shareable` collection) the user left or was removed from (issue 11); their local copies must go, with everything under them. */
  removedSpaces?: string[];
  syncTimestamp: string;
  hasMore: boolean;
}

interface RemoteChange {
  t: string;
  id: string;
  /** The server's record; null = drop the local copy (a tombstone or a removal). */
  rec: Rec | null;
  /** Part of a removed shared root: pending operations on it are dropped too. */
  removed?: boolean;
}

/**
 * The removals of a page: a removed sharing root and every record under it
 * along `x-parent` (a space, its categories, their items and the space's own
 * items; a notebook, its notes, their check items), found in the stored rows
 * by their server copy, or by the local view for a record the server never
 * had. Collections are visited parents first, so one pass finds every level.
 * They are applied before the page's records, so a root shared again in the
 * same page stays.
 */
async function removals(page: Page, tx: Tx, model: Model): Promise<RemoteChange[]> {
  const out: RemoteChange[] = [];
  const roots = new Set(page.removedSpaces ?? []);
  if (roots.size) {
    const rows = await tx.getAll<Row>('records');
    const gone = new Set<string>();
    const byType = new Map<string, Row[]>();
    for (const r of rows) (byType.get(r.t) ?? byType.set(r.t, []).get(r.t)!).push(r);
    for (const t of model.types)
      for (const r of byType.get(t) ?? []) {
        const v = serverCopy(r) ?? r.v;
        if ((model.roots.has(t) && roots.has(r.id)) || model.parents[t]!.some((k) => typeof v?.[k] === 'string' && gone.has(v[k] as string))) gone.add(r.id);
      }
    for (const r of rows) if (gone.has(r.id)) out.push({ t: r.t, id: r.id, rec: null, removed: true });
  }
  return out;
}

/** The records of a page as changes (a tombstone drops the local copy). */
function recordChanges(page: Page, model: Model): RemoteChange[] {
  const out: RemoteChange[] = [];
  for (const t of model.types)
    for (const rec of page.records[t] ?? []) out.push({ t, id: rec.id, rec: rec.deletedAt ? null : rec });
  return out;
}

/** Records per IndexedDB transaction when a page is applied; the event loop runs between slices (500: no task over ~65 ms in Chromium while 100,000 records arrive, and 7.6–8.9 s for them against 10.7–11.1 s with 250). */
export const SLICE = 500;

/** Lets the page handle input between two slices (`scheduler.yield` where it exists). */
const yieldToLoop = (): Promise<void> => {
  const sch = (globalThis as { scheduler?: { yield?: () => Promise<void> } }).scheduler;
  return sch?.yield ? sch.yield() : new Promise((r) => setTimeout(r, 0));
};

/** Ids a removal takes away: the records, and the removed roots even when no local copy exists. */
function removedIds(page: Page, changes: RemoteChange[]): Set<string> {
  const ids = new Set(page.removedSpaces ?? []);
  for (const c of changes) if (c.removed) ids.add(c.id);
  return ids;
}

export const MAX_REJECTED = 50;
const EMPTY: ReadonlySet<string> = new Set();

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
  /** Ids of each type, and of each type by parent (`type + '\0' + ` the value of each `x-parent` property of the local view). */
  private byType: Map<string, Set<string>>;
  private byParent = new Map<string, Set<string>>();
  /** What changed since the client last looked (`take`): record ids, the keys they touched (ids, parents), or all. */
  private changedIds = new Set<string>();
  private changedKeys = new Set<string>();
  private changedAll = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Called after every change of the mirror (this tab's or, through refresh, another's). */
  onChange: (c: Changed, types: Set<string>, own: boolean) => void = () => {};

  /** Told of storage trouble (a StorageError) and of its end (null, at the next committed write). */
  onStorage: (e: StorageError | null) => void = () => {};
  /** Told when the database was re-created and the copy in memory written back. */
  onRestored: () => void = () => {};

  constructor(
    readonly storage: Storage,
    readonly model: Model,
  ) {
    this.byType = this.emptyIndex();
    storage.onRecreated = (tx) => this.restore(tx);
  }

  private emptyIndex() {
    return new Map(this.model.types.map((t) => [t, new Set<string>()]));
  }

  /** One storage transaction; a failure of the storage itself becomes a StorageError. */
  private async run<T>(mode: 'readonly' | 'readwrite', fn: (tx: Tx) => Promise<T>, relaxed = false): Promise<T> {
    let r: T;
    try {
      r = await this.storage.run(mode, fn, relaxed ? { relaxed } : undefined);
    } catch (e) {
      const se = toStorageError(e);
      if (!se) throw e;
      this.onStorage(se);
      throw se;
    }
    if (mode === 'readwrite') this.onStorage(null);
    return r;
  }

  /**
   * The database was deleted (or its data cleared) under the open app and created again: write back
   * everything this tab holds in memory, so no record, pending operation or dead letter is lost and
   * "N pending" stays true.
   */
  private async restore(tx: Tx): Promise<void> {
    tx.put('meta', this.deviceId, 'deviceId');
    if (this.cursor !== null) tx.put('meta', this.cursor, 'cursor');
    tx.put('meta', this.model.types, 'collections');
    if (this.resync) tx.put('meta', true, 'resync');
    if (this.hlc) tx.put('meta', this.hlc, 'hlc');
    for (const row of this.rows.values()) tx.put('records', row);
    for (const op of this.outbox) tx.put('outbox', op);
    for (const r of this.rejected) tx.put('rejected', r);
    queueMicrotask(() => this.onRestored());
  }

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
      const got = await this.run('readwrite', async (tx) => {
        let deviceId = await tx.get<string>('meta', 'deviceId');
        if (!deviceId) tx.put('meta', (deviceId = newDeviceId()), 'deviceId');
        let cursor = (await tx.get<string>('meta', 'cursor')) ?? null;
        let resync = (await tx.get<boolean>('meta', 'resync')) ?? false;
        // Pulled under a schema without some of today's collections, the database skipped their
        // records while its cursor moved past them: pull again from scratch (a database from
        // before this was noted ran the bucket list, the only model then).
        const had = (await tx.get<string[]>('meta', 'collections')) ?? ['space', 'category', 'item'];
        const now = this.model.types;
        if (cursor !== null && now.some((t) => !had.includes(t))) {
          tx.delete('meta', 'cursor');
          tx.put('meta', true, 'resync');
          cursor = null;
          resync = true;
        }
        if (now.length !== had.length || now.some((t) => !had.includes(t))) tx.put('meta', now, 'collections');
        return {
          deviceId,
          rows: await tx.getAll<Row>('records'),
          outbox: await tx.getAll<OutboxRow>('outbox'),
          rejected: await tx.getAll<RejectedOp>('rejected'),
          cursor,
          resync,
          hlc: (await tx.get<number>('meta', 'hlc')) ?? 0,
        };
      });
      this.deviceId = got.deviceId;
      this.install(got);
    });
  }

  /** The ids of one type, or of one type under a parent (the id in one of its `x-parent` properties). */
  ids(t: string, parent?: string): ReadonlySet<string> {
    return (parent === undefined ? this.byType.get(t) : this.byParent.get(t + '\0' + parent)) ?? EMPTY;
  }

  private parents(row: Row | undefined): string[] {
    const v = row?.v;
    if (!v) return [];
    const out: string[] = [];
    for (const k of this.model.parents[row!.t] ?? []) if (typeof v[k] === 'string') out.push(v[k] as string);
    return out;
  }

  /** The one way the mirror changes a row: keeps the indexes and notes what changed. */
  private setRow(id: string, row: Row | null): void {
    const old = this.rows.get(id);
    this.changedIds.add(id);
    this.changedKeys.add(id);
    if (old) {
      this.byType.get(old.t)?.delete(id);
      for (const p of this.parents(old)) {
        this.byParent.get(old.t + '\0' + p)?.delete(id);
        this.changedKeys.add(p);
      }
    }
    if (row && this.byType.has(row.t)) {
      this.rows.set(id, row);
      this.byType.get(row.t)!.add(id);
      for (const p of this.parents(row)) {
        const k = row.t + '\0' + p;
        (this.byParent.get(k) ?? this.byParent.set(k, new Set()).get(k)!).add(id);
        this.changedKeys.add(p);
      }
    } else this.rows.delete(id);
    // A record shown or hidden shows or hides what is below it too: subscriptions filtered by a
    // descendant that is itself a parent (a space's categories, a notebook's notes) must look again.
    if (old) this.touchBelow(old.t, id, 0);
    if (row && row.t !== old?.t) this.touchBelow(row.t, id, 0);
  }

  private touchBelow(t: string, id: string, depth: number): void {
    if (depth > this.model.types.length) return;
    for (const c of this.model.children[t] ?? [])
      if (this.model.children[c]?.length)
        for (const cid of this.ids(c, id)) {
          this.changedKeys.add(cid);
          this.touchBelow(c, cid, depth + 1);
        }
  }

  /** What changed since the last call (then forgotten). */
  take(): { all: boolean; ids: Set<string>; keys: Set<string> } {
    const r = { all: this.changedAll, ids: this.changedIds, keys: this.changedKeys };
    this.changedAll = false;
    this.changedIds = new Set();
    this.changedKeys = new Set();
    return r;
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
    this.rows = new Map();
    this.byType = this.emptyIndex();
    this.byParent = new Map();
    for (const r of got.rows) this.setRow(r.id, r);
    this.take();
    this.changedAll = true;
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
        const got = await this.run('readonly', async (tx) => ({
          rows: await tx.getAll<Row>('records'),
          outbox: await tx.getAll<OutboxRow>('outbox'),
          rejected: await tx.getAll<RejectedOp>('rejected'),
          cursor: (await tx.get<string>('meta', 'cursor')) ?? null,
          resync: (await tx.get<boolean>('meta', 'resync')) ?? false,
          hlc: (await tx.get<number>('meta', 'hlc')) ?? 0,
        }));
        const types = new Set<string>(this.model.types);
        this.install(got);
        this.onChange({ ids: [], outbox: true, all: true }, types, false);
        return;
      }
      const got = await this.run('readonly', async (tx) => {
        const rows: [string, Row | undefined][] = [];
        for (const id of c.ids) rows.push([id, await tx.get<Row>('records', id)]);
        const outbox = c.outbox ? await tx.getAll<OutboxRow>('outbox') : null;
        const rejected = c.outbox ? await tx.getAll<RejectedOp>('rejected') : null;
        return { rows, outbox, rejected };
      });
      const types = new Set<string>();
      for (const [id, row] of got.rows) {
        const old = this.rows.get(id);
        if (old) types.add(old.t);
        if (row) types.add(row.t);
        this.setRow(id, row ?? null);
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
      const row = await this.run('readwrite', async (tx) => {
        // Both reads in one round trip to the database, the writes issued before the outbox key is known.
        const [stored, cur] = await Promise.all([tx.get<number>('meta', 'hlc'), tx.get<Row>('records', o.id)]);
        const t = Math.max(wall, this.hlc + 1, (stored ?? 0) + 1);
        const op: Omit<OutboxRow, 'seq'> = { ...o, timestamp: new Date(t).toISOString() };
        if (cur && cur.t !== op.entityType) throw new Error(`${op.id} is a ${cur.t}, not a ${op.entityType}`);
        if (op.operation !== 'create' && !cur?.v) throw new Error(`no ${op.entityType} ${op.id}`);
        tx.put('meta', t, 'hlc');
        const seqP = tx.add('outbox', op);
        const v = applyOp(cur?.v ?? null, op as OutboxRow, this.userId, this.model);
        const next: Row = { id: op.id, t: op.entityType, v: v && !v.deletedAt ? { ...v, _pending: true } : null, s: serverCopy(cur) };
        tx.put('records', next);
        const full: OutboxRow = { ...op, seq: await seqP };
        return { next, full, t };
      });
      this.hlc = Math.max(this.hlc, row.t);
      const op = row.full;
      this.setRow(op.id, row.next);
      this.outbox.push(row.full);
      this.onChange({ ids: [op.id], outbox: true }, new Set([op.entityType]), true);
    });
  }

  /** Forgets the dead letters (`clearRejected`), in storage too, so other tabs and reloads see none. */
  clearRejected(): Promise<void> {
    return this.serial(async () => {
      await this.run('readwrite', async (tx) => tx.clear('rejected'));
      this.rejected = [];
      this.onChange({ ids: [], outbox: true }, new Set(), true);
    });
  }

  /** The first `n` operations of the outbox, read from storage so other tabs' writes are included. */
  peekOutbox(n: number): Promise<OutboxRow[]> {
    // Read-only and not applied to the mirror, so it need not wait in this tab's queue.
    return this.run('readonly', (tx) => tx.getAll<OutboxRow>('outbox', n));
  }

  /** Starts a resync (409 resync_required / invalid_cursor): forget the cursor, keep the outbox and, until the new copy is complete, the old rows. */
  startResync(): Promise<void> {
    return this.serial(async () => {
      await this.run('readwrite', async (tx) => {
        tx.delete('meta', 'cursor');
        tx.put('meta', true, 'resync');
      });
      this.cursor = null;
      this.resync = { seen: new Set() };
    });
  }

  /**
   * Applies one response. The first transaction takes the acks (settled
   * operations leave the outbox and advance the server copy; rejected ones and
   * their dependants become dead letters), the removals (the operations
   * pending on removed records become dead letters too) and the first
   * `SLICE` records of the page; each further transaction takes `SLICE`
   * records more, with the event loop (and this tab's local writes) running
   * in between; the last one also stores the new cursor. Every transaction
   * recomputes the rows it touches by replaying what is still pending at that
   * moment. A crash between slices leaves the old cursor: the page is pulled
   * again and re-applied (the same server copies). `onSlice(n)`: n records of
   * the page applied so far.
   */
  async applyResponse(
    sent: readonly OutboxRow[],
    acks: readonly Ack[],
    page: Page,
    sentCursor: string | null,
    now: number,
    onSlice?: (applied: number) => void,
  ): Promise<RejectedOp[]> {
    const recs = recordChanges(page, this.model);
    const conflicted = new Set<string>();
    let knownIds: string[] = [];
    let rejected: RejectedOp[] = [];
    for (let at = 0; ; at += SLICE) {
      const first = at === 0;
      const last = at + SLICE >= recs.length;
      const part = recs.slice(at, at + SLICE);
      const got = await this.serial(() => this.applyPart(first ? sent : [], first ? acks : [], page, part, first, last, sentCursor, now, conflicted, knownIds));
      if (first) {
        rejected = got.rejected;
        knownIds = got.knownIds;
      }
      onSlice?.(Math.min(recs.length, at + SLICE));
      if (last) return rejected;
      await yieldToLoop();
    }
  }

  private async applyPart(
    sent: readonly OutboxRow[],
    acks: readonly Ack[],
    page: Page,
    recs: RemoteChange[],
    first: boolean,
    last: boolean,
    sentCursor: string | null,
    now: number,
    conflicted: Set<string>,
    known: string[],
  ): Promise<{ rejected: RejectedOp[]; knownIds: string[] }> {
    const resync = this.resync;
    const knownIds = first && resync && !page.hasMore ? [...this.rows.keys()] : known;
    const res = await this.run('readwrite', async (tx) => {
      // The reads in one round trip to the database.
      const [outbox, storedCursor, storedHlc] = await Promise.all([tx.getAll<OutboxRow>('outbox'), tx.get<string>('meta', 'cursor'), tx.get<number>('meta', 'hlc')]);
      const present = new Set(outbox.map((o) => o.seq));
      const stored = storedCursor ?? null;
      const touched = new Map<string, { t: string; s: Rec | null }>();
      const entry = async (id: string, t: string | null) => {
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
      const dead = new Set<string>();
      for (let i = 0; i < sent.length; i++) {
        const op = sent[i]!;
        const ack = acks[i];
        if (!ack || !present.has(op.seq)) continue;
        const e = await entry(op.id, op.entityType);
        if (ack.success) {
          tx.delete('outbox', op.seq);
          present.delete(op.seq);
          if (e) e.s = applyOp(e.s, op, this.userId, this.model);
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
      const gone = first ? await removals(page, tx, this.model) : [];
      for (const c of recs) this.observeRec(c.rec);
      for (const c of [...gone, ...recs]) {
        if (c.rec?.userId && !this.userId) this.userId = c.rec.userId as string;
        if (!takePage && (c.removed || !conflicted.has(c.id))) continue;
        if (!c.removed) resync?.seen.add(c.id);
        touched.set(c.id, { t: c.t, s: c.rec });
      }
      // Removed from a shared space: what is pending on its records, or
      // points into it, is dropped (the server would answer forbidden).
      if (first && takePage && page.removedSpaces?.length) {
        const ids = removedIds(page, gone);
        for (const op of outbox) {
          if (!present.has(op.seq) || !(ids.has(op.id) || refsOf(op, this.model).some((r) => ids.has(r)))) continue;
          await entry(op.id, op.entityType);
          reject(op, { code: 'space_removed', message: 'you are no longer a member of this shared space' });
          if (op.operation === 'create') dead.add(op.id);
        }
      }
      // 3. Operations that depend on a rejected create can never succeed.
      for (const op of outbox) {
        if (!present.has(op.seq) || !(dead.has(op.id) || refsOf(op, this.model).some((r) => dead.has(r)))) continue;
        await entry(op.id, op.entityType);
        reject(op, { code: 'dependency_rejected', message: `depends on a rejected operation on ${[op.id, ...refsOf(op, this.model)].find((r) => dead.has(r))}` });
        if (op.operation === 'create') dead.add(op.id);
      }
      // A finished resync: what the server no longer has goes (nothing resurrected).
      const resyncDone = last && !!resync && takePage && !page.hasMore;
      if (resyncDone) for (const id of knownIds) if (!resync.seen.has(id)) { const e = await entry(id, null); if (e) e.s = null; }
      // 4. Rows: the server copy with what is still pending replayed on top.
      const byId = new Map<string, OutboxRow[]>();
      for (const op of outbox) if (present.has(op.seq)) (byId.get(op.id) ?? byId.set(op.id, []).get(op.id)!).push(op);
      const rows: [string, Row | null][] = [];
      for (const [id, e] of touched) {
        const row = makeRow(id, e.t, e.s, byId.get(id) ?? [], this.userId, this.model);
        row ? tx.put('records', row) : tx.delete('records', id);
        rows.push([id, row]);
      }
      // 5. Dead letters (the newest MAX_REJECTED are kept).
      if (rejected.length) {
        for (const r of rejected) await tx.add('rejected', r);
        const all = await tx.getAll<RejectedOp & { seq: number }>('rejected');
        for (const r of all.slice(0, Math.max(0, all.length - MAX_REJECTED))) tx.delete('rejected', r.seq);
      }
      // 6. The clock (what was seen); with the last slice, the cursor with the records it covers.
      if (this.hlc > (storedHlc ?? 0)) tx.put('meta', this.hlc, 'hlc');
      const moveCursor = last && takePage;
      if (moveCursor) tx.put('meta', page.syncTimestamp, 'cursor');
      if (resyncDone) tx.delete('meta', 'resync');
      return { rows, outbox: outbox.filter((o) => present.has(o.seq)), rejected, cursor: moveCursor ? page.syncTimestamp : stored, resyncDone };
      // A slice of server copies only (no acks, no removals, not the cursor, which comes with the last) is
      // relaxed: the server sends it again if a crash loses it (idb.ts).
    }, !last && (!first || (sent.length === 0 && acks.length === 0 && !page.removedSpaces?.length)));
    const types = new Set<string>();
    for (const [id, row] of res.rows) {
      const old = this.rows.get(id);
      if (old) types.add(old.t);
      if (row) types.add(row.t);
      this.setRow(id, row);
    }
    this.outbox = res.outbox;
    this.cursor = res.cursor;
    if (res.resyncDone) this.resync = null;
    if (res.rejected.length) this.rejected = [...this.rejected, ...res.rejected].slice(-MAX_REJECTED);
    // Other tabs re-read these ids (a whole slice at most).
    this.onChange({ ids: res.rows.map(([id]) => id), outbox: true }, types, true);
    return { rejected: res.rejected, knownIds };
  }
}

export type { Tx };
