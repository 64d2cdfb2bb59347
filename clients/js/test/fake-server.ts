// A small in-process stand-in for POST /api/sync, enough to drive the client's
// state machine in Node, for any declared schema (default: the bucket list;
// collections, `plural` arrays, references, `x-parent` cascades and sharing
// roots are read from it, independently of the SDK's own reading): per-user
// version counter, idempotency by operationId, per-op errors (`maxLength`,
// unknown references), tombstones with cascade, no echo, paging (optionally cut to
// fewer records than `limit`, as a byte-capped server may), and injectable
// request-level failures. Shared roots (spaces, notebooks), seen from one
// member: roots where the user is a viewer (writes answer `forbidden`),
// removals (`removedSpaces` once per cursor, the root's records no longer
// sent), the members endpoints and invitations (sent by this user as an
// owner, and received). The real server is exercised by the browser tests.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Rec = Record<string, unknown> & { id: string; deletedAt: string | null };
type Kind = string;

/** A schema document as docs/SCHEMA.md describes it (the keywords this fake uses). */
export interface SchemaDoc {
  collections: Record<string, { plural: string; shareable?: boolean; required?: string[]; properties: Record<string, { type?: string | string[]; maxLength?: number; 'x-references'?: string; 'x-parent'?: boolean }> }>;
}

/** The repo's directory of schema files (crates/protocol/schema), found upwards from this file (run from a bundle in clients/.build). */
export function schemaDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++, d = dirname(d)) {
    const p = join(d, 'crates', 'protocol', 'schema');
    try {
      readFileSync(join(p, 'bucket-list.json'));
      return p;
    } catch {
      /* not here: one level up */
    }
  }
  throw new Error('crates/protocol/schema not found above ' + fileURLToPath(import.meta.url));
}

/** A schema file of the repo, parsed (`bucket-list`, `notes`). */
export function loadSchema(name: string): SchemaDoc {
  return JSON.parse(readFileSync(join(schemaDir(), `${name}.json`), 'utf8')) as SchemaDoc;
}

export type Fault =
  | { kind: 'network' }
  | { kind: 'status'; status: number; code: string; retryAfter?: string }
  | { kind: 'lost' } // apply the batch, then drop the response
  | { kind: 'hang' }; // never answer (until aborted)

export interface Change {
  operationId: string;
  id: string;
  entityType: Kind;
  operation: 'create' | 'update' | 'delete';
  data?: Record<string, unknown>;
  timestamp: string;
  deviceId: string;
}

export class FakeServer {
  private readonly fields: Record<Kind, string[]> = {};
  private readonly plural: Record<Kind, string> = {};
  /** Reference properties per collection: [property, referenced collection, is a parent]. */
  private readonly refs: Record<Kind, [string, Kind, boolean][]> = {};
  private readonly maxLength: Record<Kind, [string, number][]> = {};
  private readonly roots = new Set<Kind>();

  constructor(readonly schema: SchemaDoc = loadSchema('bucket-list')) {
    for (const [k, c] of Object.entries(schema.collections)) {
      const props = Object.entries(c.properties);
      this.fields[k] = props.map(([p]) => p);
      this.plural[k] = c.plural;
      this.refs[k] = props.filter(([, d]) => d['x-references']).map(([p, d]) => [p, d['x-references']!, d['x-parent'] === true]);
      this.maxLength[k] = props.filter(([, d]) => typeof d.maxLength === 'number').map(([p, d]) => [p, d.maxLength!]);
      if (c.shareable) this.roots.add(k);
    }
  }

  records = new Map<string, { kind: Kind; rec: Rec; version: number; by: string }>();
  acks = new Map<string, Record<string, unknown>>();
  version = 0;
  /** Every request body received (parsed). */
  requests: { path: string; body: Record<string, unknown>; auth: string | null }[] = [];
  faults: Fault[] = [];
  /** Largest page the server returns, whatever `limit` says. */
  pageCap = Infinity;
  validTokens = new Set(['t1']);
  /** Every request fails as a network error while set. */
  offline = false;
  /** Spaces where this user is a viewer. */
  viewerOf = new Set<string>();
  /** Spaces this user was removed from, with the version of the removal. */
  removals: { space: string; version: number }[] = [];
  /** Members per space, for the members endpoints (an unknown space answers 404). */
  members = new Map<string, { userId: string; email: string; name: string; role: string; since: string }[]>();
  /** Invitations this user sent, per space (`POST /api/spaces/{id}/members`). */
  sent = new Map<string, SentInvitation[]>();
  /** Invitations to this user; `GET /api/invitations` lists those of spaces not blocked. */
  received: ReceivedInvitation[] = [];
  /** Spaces whose invitations this user blocked. */
  blocked = new Set<string>();
  /** Runs after a sync is computed and before it is answered (a write "while the request is in flight"). */
  beforeReply: (() => Promise<void>) | null = null;

  fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = new URL(String(url)).pathname;
    const body = JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>;
    const auth = (init?.headers as Record<string, string> | undefined)?.Authorization ?? null;
    if (this.offline) throw new TypeError('Failed to fetch (offline)');
    this.requests.push({ path, body, auth });
    if (!auth || !this.validTokens.has(auth.replace(/^Bearer /, ''))) return json(401, { success: false, error: { code: 'unauthorized', message: 'no' } });
    const fault = this.faults.shift();
    if (fault?.kind === 'network') throw new TypeError('Failed to fetch');
    if (fault?.kind === 'hang')
      return new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
    if (fault?.kind === 'status')
      return json(fault.status, { success: false, error: { code: fault.code, message: fault.code } }, fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {});
    if (path === '/api/sync/stream-ticket') return json(200, { success: true, data: { ticket: 'tk', expiresIn: 60 } });
    if (path === '/api/auth/me') return json(200, { success: true, data: { user: { id: 'u1', email: 'me@example.com', name: 'me' } } });
    if (path.startsWith('/api/spaces/')) return this.membersCall(init?.method ?? 'GET', path, body);
    if (path.startsWith('/api/invitations')) return this.invitationsCall(path, body);
    const data = this.sync(body);
    await this.beforeReply?.();
    if (fault?.kind === 'lost') throw new TypeError('Failed to fetch (response lost)');
    return json(200, { success: true, data });
  };

  private membersCall(method: string, path: string, body: Record<string, unknown>): Response {
    const [, , , space, what, who] = path.split('/');
    const list = this.members.get(space!);
    if (!list) return json(404, { success: false, error: { code: 'not_found', message: 'no such space' } });
    const reply = (status = 200) => json(status, { success: true, data: { members: list } });
    if (method === 'GET' && what === 'members' && !who) return reply();
    if (method === 'POST' && what === 'members') {
      if (list.some((m) => m.email === body.email)) return json(409, { success: false, error: { code: 'conflict', message: 'already a member' } });
      // An invitation, whether or not the email has an account; a pending one is refreshed.
      const sent = this.sent.get(space!) ?? [];
      this.sent.set(space!, sent);
      let inv = sent.find((i) => i.email === body.email && i.status === 'pending');
      if (!inv) sent.push((inv = { id: crypto.randomUUID(), spaceId: space!, email: String(body.email), role: '', status: 'pending', createdAt: now(), expiresAt: now() }));
      inv.role = String(body.role);
      return json(202, { success: true, data: { invitation: inv } });
    }
    if (what === 'invitations') {
      const pending = (this.sent.get(space!) ?? []).filter((i) => i.status === 'pending');
      if (method === 'GET') return json(200, { success: true, data: { invitations: pending } });
      const inv = pending.find((i) => i.id === who);
      if (!inv) return notFound('no such invitation');
      inv.status = 'revoked';
      return json(200, { success: true, data: { invitation: inv } });
    }
    const m = list.find((x) => x.userId === who);
    if (!m) return json(404, { success: false, error: { code: 'not_found', message: 'no such member' } });
    if (method === 'PATCH') m.role = String(body.role);
    else if (method === 'DELETE') list.splice(list.indexOf(m), 1);
    return reply();
  }

  private invitationsCall(path: string, body: Record<string, unknown>): Response {
    const [, , , id, what] = path.split('/');
    const visible = this.received.filter((i) => !this.blocked.has(i.spaceId));
    if (!id) return json(200, { success: true, data: { invitations: visible } });
    const inv = visible.find((i) => i.id === id);
    if (!inv) return notFound('no such invitation');
    this.received.splice(this.received.indexOf(inv), 1);
    if (what === 'decline') {
      if (body.block === true) this.blocked.add(inv.spaceId);
      return json(200, { success: true, data: { id, spaceId: inv.spaceId, status: 'declined', blocked: body.block === true } });
    }
    const members = this.members.get(inv.spaceId) ?? [{ userId: 'u2', email: inv.inviter.email, name: inv.inviter.name, role: 'owner', since: now() }];
    members.push({ userId: 'u1', email: 'me@example.com', name: 'me', role: inv.role, since: now() });
    this.members.set(inv.spaceId, members);
    return json(200, { success: true, data: { spaceId: inv.spaceId, role: inv.role, members } });
  }

  /** Opaque to the client: `v1.u.N`, with a shared-scope part once anything is shared. */
  private stamp(v: number): string {
    return this.members.size || this.viewerOf.size || this.removals.length ? `v1.u.${v}.s7.${v}` : `v1.u.${v}`;
  }

  private cursor(v: unknown): number {
    if (v === null || v === undefined) return 0;
    const m = /^v1\.u\.(\d+)(\.s7\.\d+)?$/.exec(String(v));
    if (!m) throw new Error('bad cursor');
    return Number(m[1]);
  }

  /** The sharing root a record lives in: itself if a root, else its first parent's (an item by its spaceId, else by its category's). */
  spaceOf(id: string): string | null {
    const r = this.records.get(id);
    if (!r) return null;
    if (this.roots.has(r.kind)) return id;
    return this.rootOfData(r.kind, r.rec);
  }

  private rootOfData(kind: Kind, data: Record<string, unknown>): string | null {
    for (const [p, , parent] of this.refs[kind] ?? []) {
      const v = data[p];
      if (parent && typeof v === 'string') return this.spaceOf(v);
    }
    return null;
  }

  private removed(space: string | null): boolean {
    return !!space && this.removals.some((r) => r.space === space);
  }

  /** The user leaves (or is removed from) a shared space. */
  removeFrom(space: string) {
    this.removals.push({ space, version: ++this.version });
  }

  private bump(id: string, kind: Kind, rec: Rec, by: string) {
    this.records.set(id, { kind, rec, version: ++this.version, by });
  }

  sync(body: Record<string, unknown>) {
    const since = this.cursor(body.lastSyncTimestamp);
    const changes = (body.changes ?? []) as Change[];
    const acknowledged: Record<string, unknown>[] = [];
    const written = new Set<string>();
    const conflicts = new Set<string>();
    for (const c of changes) {
      const prior = this.acks.get(c.operationId);
      if (prior) {
        acknowledged.push({ ...prior, duplicate: true });
        continue;
      }
      const ack = this.apply(c, written, conflicts);
      this.acks.set(c.operationId, ack);
      acknowledged.push(ack);
    }
    const limit = Math.min(Number(body.limit ?? 1000), this.pageCap);
    const after = [...this.records.entries()]
      .filter(([id, r]) => r.version > since && (since > 0 || !r.rec.deletedAt) && !this.removed(this.spaceOf(id)))
      .sort((a, b) => a[1].version - b[1].version);
    const page = after.slice(0, limit);
    const hasMore = after.length > limit;
    const serverUpdates: Record<string, Rec[]> = Object.fromEntries(Object.values(this.plural).map((p) => [p, []]));
    for (const [id, r] of page) {
      if (written.has(id) && !conflicts.has(id) && r.by === body.deviceId) continue; // no echo
      serverUpdates[this.plural[r.kind]!]!.push(r.rec);
    }
    for (const id of conflicts) {
      const r = this.records.get(id)!;
      if (!page.some(([pid]) => pid === id)) serverUpdates[this.plural[r.kind]!]!.push(r.rec);
    }
    const syncTimestamp = this.stamp(hasMore ? page[page.length - 1]![1].version : this.version);
    // A removal is sent to every cursor from before it (so again after a lost answer), never from scratch.
    const removedSpaces = since > 0 ? this.removals.filter((r) => r.version > since).map((r) => r.space) : [];
    return { acknowledged, serverUpdates, syncTimestamp, hasMore, ...(removedSpaces.length ? { removedSpaces } : {}) };
  }

  private apply(c: Change, written: Set<string>, conflicts: Set<string>): Record<string, unknown> {
    const base = { operationId: c.operationId, id: c.id };
    const fail = (code: string, message: string) => ({ ...base, success: false, error: { code, message } });
    const cur = this.records.get(c.id);
    const data = c.data ?? {};
    if (!this.fields[c.entityType]) return fail('validation_failed', `entityType: unknown collection ${c.entityType}`);
    for (const [f, max] of this.maxLength[c.entityType]!) {
      const v = data[f];
      if (typeof v === 'string' && v.length > max) return fail('validation_failed', `${f}: at most ${max} characters`);
    }
    for (const [ref, kind] of this.refs[c.entityType]!) {
      const v = data[ref];
      if (typeof v === 'string' && this.records.get(v)?.kind !== kind) return fail('unknown_reference', `${ref}: no ${kind} with this id`);
    }
    if (c.operation !== 'create' && (!cur || cur.kind !== c.entityType)) return fail('not_found', `no ${c.entityType} with this id`);
    const space = cur ? this.spaceOf(c.id) : this.rootOfData(c.entityType, data);
    if (this.removed(space)) return fail('forbidden', 'you are no longer a member of this space');
    if (space && this.viewerOf.has(space)) return fail('forbidden', 'viewers cannot change this space');
    if (c.operation === 'create' && cur && cur.kind !== c.entityType) return fail('validation_failed', `id is already used by a ${cur.kind}`);
    written.add(c.id);
    if (c.operation === 'delete') {
      if (cur!.rec.deletedAt) return { ...base, success: true, duplicate: true };
      this.bump(c.id, cur!.kind, { ...cur!.rec, deletedAt: c.timestamp, updatedAt: c.timestamp, deviceId: c.deviceId }, c.deviceId);
      // The cascade along `x-parent`, down every level (a notebook's notes, then their check items).
      const gone = [c.id];
      while (gone.length) {
        const pid = gone.pop()!;
        for (const [cid, r] of this.records)
          if (!r.rec.deletedAt && (this.refs[r.kind] ?? []).some(([p, , parent]) => parent && r.rec[p] === pid)) {
            this.bump(cid, r.kind, { ...r.rec, deletedAt: c.timestamp }, c.deviceId);
            conflicts.add(cid); // cascaded tombstones go back to the deleting device
            gone.push(cid);
          }
      }
      return { ...base, success: true };
    }
    const rec: Rec = cur
      ? { ...cur.rec }
      : { id: c.id, userId: 'u1', createdAt: c.timestamp, deletedAt: null, ...Object.fromEntries(this.fields[c.entityType]!.map((f) => [f, null])) };
    for (const f of this.fields[c.entityType]!) if (Object.prototype.hasOwnProperty.call(data, f)) rec[f] = data[f];
    rec.updatedAt = c.timestamp;
    rec.deviceId = c.deviceId;
    if (cur?.rec.deletedAt) {
      conflicts.add(c.id);
      this.bump(c.id, c.entityType, { ...rec, deletedAt: cur.rec.deletedAt }, c.deviceId);
      return { ...base, success: true, conflict: true };
    }
    this.bump(c.id, c.entityType, rec, c.deviceId);
    return { ...base, success: true };
  }

  /** Another device's write, straight into the server. */
  remote(change: Omit<Change, 'deviceId' | 'timestamp'> & { timestamp?: string }) {
    const viewer = this.viewerOf;
    this.viewerOf = new Set(); // another member (the owner) may write
    try {
      return this.sync({ deviceId: 'other-device', lastSyncTimestamp: this.stamp(this.version), changes: [{ timestamp: new Date().toISOString(), deviceId: 'other-device', ...change }] });
    } finally {
      this.viewerOf = viewer;
    }
  }

  live(kind: Kind): Rec[] {
    return [...this.records.values()].filter((r) => r.kind === kind && !r.rec.deletedAt).map((r) => r.rec);
  }

  syncRequests(): { path: string; body: Record<string, unknown> }[] {
    return this.requests.filter((r) => r.path === '/api/sync');
  }
}

export interface SentInvitation {
  id: string;
  spaceId: string;
  email: string;
  role: string;
  status: string;
  createdAt: string;
  expiresAt: string;
}

export interface ReceivedInvitation {
  id: string;
  spaceId: string;
  spaceName: string;
  inviter: { name: string; email: string };
  role: string;
  createdAt: string;
  expiresAt: string;
}

const now = () => new Date().toISOString();

const notFound = (message: string) => json(404, { success: false, error: { code: 'not_found', message } });

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}
