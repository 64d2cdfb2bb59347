// Local mirror of the server's record rules: the fields of each entity, how an
// operation changes a record, and how pending operations are replayed over the
// server's copy (the "rebase"). docs/DATA_MODELS.md, docs/SYNC_PROTOCOL.md §5.

import type { Model } from './schema.js';

type Sortable = { order?: unknown; createdAt: string; id: string };

export type Op = 'create' | 'update' | 'delete';
export type Rec = Record<string, unknown> & { id: string; deletedAt: string | null };

/** One outbox row = one operation with its own idempotency key. */
export interface OutboxRow {
  seq: number;
  operationId: string;
  entityType: string;
  id: string;
  operation: Op;
  data: Record<string, unknown> | null;
  timestamp: string;
  deviceId: string;
}

/** One stored record: `v` the local view (null = hidden), `s` the server copy, present only while operations are pending. */
export interface Row {
  id: string;
  t: string;
  v: Rec | null;
  s?: Rec | null;
}

/** Whether `o` has the key itself: a property may be named `constructor` or `toString`, which `in` finds on every object. */
export const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** The record after one operation; `base` null = not known to exist. Mirrors the server: no undelete, only sent keys touched. */
export function applyOp(base: Rec | null, op: OutboxRow, userId: string | null, model: Model): Rec | null {
  const fields = model.fields[op.entityType] ?? [];
  if (op.operation === 'delete') {
    if (!base) return null;
    return base.deletedAt ? base : { ...base, deletedAt: op.timestamp, updatedAt: op.timestamp, deviceId: op.deviceId };
  }
  const data = op.data ?? {};
  if (!base) {
    if (op.operation !== 'create') return null; // update of something unknown: the server answers not_found
    const rec: Rec = { id: op.id, userId, deletedAt: null };
    for (const f of fields) rec[f] = null;
    for (const f of fields) if (own(data, f)) rec[f] = data[f];
    rec.createdAt = op.timestamp;
    rec.updatedAt = op.timestamp;
    rec.deviceId = op.deviceId;
    return rec;
  }
  if (base.deletedAt) return base;
  const rec: Rec = { ...base };
  for (const f of fields) if (own(data, f)) rec[f] = data[f];
  rec.updatedAt = op.timestamp;
  rec.deviceId = op.deviceId;
  return rec;
}

/** Replays pending operations (FIFO) over the server copy. */
export function replay(server: Rec | null, ops: readonly OutboxRow[], userId: string | null, model: Model): Rec | null {
  let r = server;
  for (const op of ops) r = applyOp(r, op, userId, model);
  return r;
}

/** The row to store for a record, given its server copy and the operations still pending on it; null = delete the row. */
export function makeRow(id: string, t: string, server: Rec | null, ops: readonly OutboxRow[], userId: string | null, model: Model): Row | null {
  if (ops.length === 0) {
    if (!server || server.deletedAt) return null;
    return { id, t, v: withPending(server, false) };
  }
  const v = replay(server, ops, userId, model);
  return { id, t, v: v && !v.deletedAt ? withPending(v, true) : null, s: server };
}

function withPending(r: Rec, pending: boolean): Rec {
  if (r._pending === pending) return r;
  return { ...r, _pending: pending };
}

/** The server copy held by a row (without `_pending`). */
export function serverCopy(row: Row | undefined): Rec | null {
  if (!row) return null;
  if ('s' in row) return row.s ?? null;
  if (!row.v) return null;
  const { _pending, ...rest } = row.v;
  void _pending;
  return rest as Rec;
}

/** Whether a record has every field value of a filter (`{ notebookId }`; keys set to undefined are ignored). */
export function matches(rec: Rec, filter: Record<string, unknown> | undefined): boolean {
  if (!filter) return true;
  for (const k in filter) if (filter[k] !== undefined && rec[k] !== filter[k]) return false;
  return true;
}

/** List order: `order` ascending (unset last), then creation time, then id, so every tab and device shows the same order. */
export function compare(a: Sortable, b: Sortable): number {
  const ao = typeof a.order === 'number' ? a.order : Infinity;
  const bo = typeof b.order === 'number' ? b.order : Infinity;
  if (ao !== bo) return ao < bo ? -1 : 1;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  return false;
}

/** References an operation's data makes (a child depends on its parent's create). */
export function refsOf(op: OutboxRow, model: Model): string[] {
  const d = op.data;
  if (!d) return [];
  const out: string[] = [];
  for (const k of model.refs[op.entityType] ?? []) if (typeof d[k] === 'string') out.push(d[k]);
  return out;
}
