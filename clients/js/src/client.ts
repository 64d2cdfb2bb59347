// createClient: the public face. Reads come from the in-memory mirror; writes
// resolve once their IndexedDB transaction (record + outbox row) has committed;
// the network is only ever touched in the background.

import { indexedDbStorage } from './idb.js';
import { Live, type EventSourceCtor } from './live.js';
import { Local, type Changed } from './local.js';
import { compare, FIELDS, matches, sameValue, TYPES, type Rec, type Row } from './model.js';
import { memoryStorage, type Storage } from './storage.js';
import { SyncError } from './errors.js';
import { InvitationWatch } from './invitations.js';
import { Engine } from './sync.js';
import { Tabs, type TabMessage } from './tabs.js';
import type {
  AcceptedInvitation,
  Clock,
  CreateData,
  EntityType,
  Filter,
  Invitation,
  Member,
  MemberRole,
  Patch,
  RecordOf,
  RejectedOp,
  SentInvitation,
  SyncRetry,
  SyncState,
  SyncStatus,
} from './types.js';

export interface ClientOptions {
  /** Server base URL, e.g. `https://sync.example.com` or `''` for the page's own origin. */
  url: string;
  token?: string;
  /** Called for a token when there is none, and again after a 401 (at most twice in a row). */
  getToken?: () => Promise<string | null>;
  /**
   * The signed-in user's id (from the login answer). Used for `leave()` and as
   * the `userId` of a new record until the server's copy arrives; without it,
   * `leave()` asks `GET /api/auth/me` once.
   */
  userId?: string;
  /** Default: `indexedDbStorage()` where IndexedDB exists, else `memoryStorage()`. */
  storage?: Storage;
  /** Default: generated once and kept in storage. */
  deviceId?: string;
  fetch?: typeof fetch;
  /** Event-stream pokes (default: true where `EventSource` exists). */
  live?: boolean;
  /** For tests: time and timers. */
  clock?: Clock;
  /** For tests: the randomness of the backoff jitter. */
  random?: () => number;
  /** Per request (default 30 000). */
  requestTimeoutMs?: number;
  /** Pull at least this often while idle (default 300 000; pokes make it rarely matter). Invitations are read again as often while watched. */
  pollIntervalMs?: number;
  /** For tests: an EventSource implementation. */
  EventSource?: EventSourceCtor;
}

export interface Client {
  create<T extends EntityType>(type: T, data: CreateData<T>): Promise<string>;
  update<T extends EntityType>(type: T, id: string, patch: Patch<T>): Promise<void>;
  delete(type: EntityType, id: string): Promise<void>;
  get<T extends EntityType>(type: T, id: string): Promise<RecordOf<T> | undefined>;
  list<T extends EntityType>(type: T, filter?: Filter): Promise<RecordOf<T>[]>;
  /** Calls `cb` at once with the current rows, then whenever they change; rows that did not change keep their object identity. */
  subscribe<T extends EntityType>(type: T, filter: Filter | undefined, cb: (rows: RecordOf<T>[]) => void): () => void;
  readonly status: SyncStatus;
  onStatus(cb: (s: SyncStatus) => void): () => void;
  onRejected(cb: (ops: RejectedOp[]) => void): () => void;
  /** Forgets the kept rejected operations (`status.rejected` becomes empty, in every tab and after a reload). */
  clearRejected(): Promise<void>;
  /**
   * Signs in again: the token for every later request (in every tab of this database), e.g. after
   * `status.state === 'needsSignIn'`. The outbox is kept and a sync round starts at once.
   */
  setToken(token: string | null): void;
  sync(): Promise<void>;
  close(): Promise<void>;
  readonly deviceId: string;

  // Members of shared spaces and invitations. Online only: each is one
  // request, never queued; it rejects with a `SyncError` (code
  // `network`/`timeout` without the network, else the server's: `not_found`,
  // `forbidden`, `conflict`, `validation_failed`, `rate_limited`, with
  // `status`). After a change of members a sync round starts.
  /** The members of a space, owner first (an unshared space: its owner alone). */
  members(spaceId: string): Promise<Member[]>;
  /**
   * Owner only: invites an email (`409 conflict` if a member already, `429 rate_limited` beyond the server's
   * limits). The answer is the same whether or not the email has an account; the invitee becomes a member
   * when they accept. Inviting again refreshes the pending invitation (same id, new role and expiry).
   */
  invite(spaceId: string, email: string, role?: MemberRole): Promise<SentInvitation>;
  /** Owner only: the space's pending invitations, oldest first. */
  spaceInvitations(spaceId: string): Promise<SentInvitation[]>;
  /** Owner only: withdraws a pending invitation. */
  revokeInvitation(spaceId: string, invitationId: string): Promise<SentInvitation>;
  /** Your pending invitations, oldest first. */
  invitations(): Promise<Invitation[]>;
  /**
   * Calls `cb` with your pending invitations, and again whenever they change: read at once, after the event
   * stream's pokes (an invitation arriving pokes it), on the poll timer and after an answer. Returns the
   * unsubscribe function. A failed read keeps the last list.
   */
  onInvitations(cb: (list: Invitation[]) => void): () => void;
  /** Accepts one of your invitations: you become a member, and the space arrives at the sync round that starts. */
  acceptInvitation(invitationId: string): Promise<AcceptedInvitation>;
  /** Declines one of your invitations; with `block`, later invitations to that space are never shown to you. */
  declineInvitation(invitationId: string, opts?: { block?: boolean }): Promise<void>;
  /** Owner only: changes a member's role. */
  setRole(spaceId: string, userId: string, role: MemberRole): Promise<Member[]>;
  /** Owner only (or the member themself): removes a member; their devices then drop the space. */
  removeMember(spaceId: string, userId: string): Promise<Member[]>;
  /** Leaves a space shared with you (the owner cannot: `409 conflict`); this device drops it at the sync that follows. */
  leave(spaceId: string): Promise<void>;
  /** Owner only: hands the space to another member; the old owner becomes an editor. */
  transferOwnership(spaceId: string, userId: string): Promise<Member[]>;
}

const REQUIRED: Record<EntityType, string[]> = { space: ['name'], category: ['spaceId', 'name'], item: ['title'] };

const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

function uuid(): string {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function createClient(opts: ClientOptions): Promise<Client> {
  const g = globalThis as unknown as {
    indexedDB?: IDBFactory;
    EventSource?: EventSourceCtor;
    navigator?: { onLine?: boolean };
    addEventListener?: (t: string, cb: (e: Event) => void) => void;
    removeEventListener?: (t: string, cb: (e: Event) => void) => void;
    document?: Document;
  };
  const storage = opts.storage ?? (g.indexedDB ? indexedDbStorage() : memoryStorage());
  const clock = opts.clock ?? realClock;
  const random = opts.random ?? Math.random;
  const url = opts.url.replace(/\/+$/, '');
  const local = new Local(storage);
  if (opts.userId) local.userId = opts.userId;
  await local.load(() => opts.deviceId ?? uuid());
  if (opts.deviceId && opts.deviceId !== local.deviceId) local.deviceId = opts.deviceId;

  /** The state in words, from the other fields; `navigator.onLine` tells "offline" from "server unreachable". */
  const derive = (st: Omit<SyncStatus, 'state' | 'retry'>): SyncStatus => {
    const e = st.lastError;
    const auth = !!e && (e.code === 'unauthorized' || e.status === 401);
    const retry: SyncRetry | null =
      e && !auth && e.retryAt !== undefined
        ? {
            reason: e.status === 429 || e.code === 'rate_limited' ? 'rateLimited' : e.code === 'network' || e.code === 'timeout' ? 'unreachable' : 'busy',
            at: e.retryAt,
          }
        : null;
    const state: SyncState = auth
      ? 'needsSignIn'
      : g.navigator?.onLine === false
        ? 'offline'
        : st.syncing
          ? 'syncing'
          : retry
            ? 'retrying'
            : st.pending > 0
              ? 'pending'
              : 'idle';
    return { ...st, state, retry };
  };
  let status: SyncStatus = derive({
    online: g.navigator?.onLine ?? true,
    pending: local.outbox.length,
    syncing: false,
    lastSyncedAt: null,
    lastError: null,
    rejected: local.rejected,
    progress: null,
    storage: null,
  });
  const statusSubs = new Set<(s: SyncStatus) => void>();
  const rejectedSubs = new Set<(r: RejectedOp[]) => void>();
  const setStatus = (p: Partial<SyncStatus>) => {
    const next = derive({ ...status, ...p });
    let changed = false;
    for (const k of Object.keys(next) as (keyof SyncStatus)[])
      if (k === 'retry' ? next.retry?.at !== status.retry?.at || next.retry?.reason !== status.retry?.reason : status[k] !== next[k]) changed = true;
    if (!changed) return;
    if (next.retry && status.retry && next.retry.at === status.retry.at && next.retry.reason === status.retry.reason) next.retry = status.retry;
    status = next;
    for (const cb of statusSubs) cb(status);
  };

  // --- reads and subscriptions -------------------------------------------
  const visible = (row: Row | undefined, depth = 0): Rec | null => {
    const v = row?.v;
    if (!v || depth > 3) return null;
    // A child of a deleted or unknown parent is hidden: the local view of the server's delete
    // cascade (the server never keeps a live child under a deleted parent).
    for (const ref of ['spaceId', 'categoryId'] as const) {
      const p = v[ref];
      if (typeof p === 'string' && !visible(local.rows.get(p), depth + 1)) return null;
    }
    return v;
  };
  /** Candidates from the indexes: by category, else by space, else every record of the type (never a scan of all records). */
  const query = <T extends EntityType>(type: T, filter?: Filter): RecordOf<T>[] => {
    const ids = local.ids(type, filter?.categoryId ?? filter?.spaceId);
    const out: RecordOf<T>[] = [];
    for (const id of ids) {
      const v = visible(local.rows.get(id));
      if (v && matches(v, filter)) out.push(v as unknown as RecordOf<T>);
    }
    return out.sort(compare);
  };
  /** Past this many changed records, a subscription's rows are computed again rather than patched. */
  const PATCH_MAX = 64;
  interface Sub { type: EntityType; filter?: Filter; cb: (rows: never[]) => void; last: Rec[]; byId: Map<string, Rec> }
  const subs = new Set<Sub>();
  let dirty = new Set<EntityType>();
  let flushing = false;
  /** Whether a change touches a subscription: its type (or a parent type: the cascade hides children) and, if filtered, its parent. */
  const affected = (s: Sub, types: Set<EntityType>, keys: Set<string>) => {
    const typed = types.has(s.type) || (s.type === 'item' && (types.has('space') || types.has('category'))) || (s.type === 'category' && types.has('space'));
    if (!typed) return false;
    const f = s.filter;
    if (f?.categoryId === undefined && f?.spaceId === undefined) return true;
    return (f.categoryId !== undefined && keys.has(f.categoryId)) || (f.spaceId !== undefined && keys.has(f.spaceId));
  };
  /** Where `v` is, or goes, in rows sorted by `compare` (a total order: ids break ties). */
  const place = (rows: Rec[], v: Rec) => {
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(rows[mid]! as never, v as never) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const setRows = (s: Sub, rows: Rec[]) => {
    s.last = rows;
    s.byId = new Map(rows.map((r) => [r.id, r]));
  };
  /**
   * A subscription's new rows when only rows of its own type changed: each changed row is taken out
   * of the previous answer and put back at its place (binary search), the others keep their object
   * and order. Null when nothing changed.
   */
  const patch = (s: Sub, ids: Set<string>): Rec[] | null => {
    let out: Rec[] | null = null;
    for (const id of ids) {
      const old = s.byId.get(id);
      const row = local.rows.get(id);
      const cand = row?.t === s.type ? visible(row) : null;
      const v = cand && matches(cand, s.filter) ? cand : null;
      if (old === v || (!old && !v)) continue;
      out ??= s.last.slice();
      if (old) {
        let i = place(out, old);
        if (out[i] !== old) i = out.indexOf(old);
        out.splice(i, 1);
        s.byId.delete(id);
      }
      if (v) {
        out.splice(place(out, v), 0, v);
        s.byId.set(id, v);
      }
    }
    if (out) s.last = out;
    return out;
  };
  const flush = () => {
    flushing = false;
    const types = dirty;
    dirty = new Set();
    const ch = local.take();
    // Rows of parent types changed: children may be shown or hidden, so a full recompute.
    const parentsMoved = (t: EntityType) => (t === 'item' ? types.has('space') || types.has('category') : t === 'category' && types.has('space'));
    for (const s of subs) {
      if (!ch.all && !affected(s, types, ch.keys)) continue;
      if (!ch.all && ch.ids.size <= PATCH_MAX && !parentsMoved(s.type)) {
        const rows = patch(s, ch.ids);
        if (rows) s.cb(rows as never[]);
        continue;
      }
      const rows = query(s.type, s.filter) as unknown as Rec[];
      if (rows.length === s.last.length && rows.every((r, i) => r === s.last[i])) continue;
      setRows(s, rows);
      s.cb(rows as never[]);
    }
  };
  local.onChange = (c: Changed, types: Set<EntityType>, own: boolean) => {
    for (const t of types) dirty.add(t);
    if (!flushing) {
      flushing = true;
      queueMicrotask(flush);
    }
    setStatus({ pending: local.outbox.length, rejected: local.rejected });
    if (own) tabs.post({ k: 'changed', ids: c.ids, outbox: c.outbox, all: c.all });
  };

  local.onStorage = (e) => {
    const cur = status.storage;
    if (!e ? cur !== null : cur?.reason !== e.reason || cur.message !== e.message) setStatus({ storage: e && { reason: e.reason, message: e.message } });
  };

  // The database was re-created from this tab's memory: the other tabs read it again.
  local.onRestored = () => tabs.post({ k: 'changed', ids: [], outbox: true, all: true });

  // --- the sender, the tabs, the stream ------------------------------------
  const engine = new Engine({
    url,
    fetch: opts.fetch ?? globalThis.fetch.bind(globalThis),
    token: opts.token,
    getToken: opts.getToken,
    local,
    clock,
    random,
    requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
    onState: (s) => {
      setStatus(s);
      if (tabs.leader) tabs.post({ k: 'hb', status: leaderStatus() });
    },
    onRejected: (r) => {
      for (const cb of rejectedSubs) cb(r);
    },
  });
  // Read only while the app watches (onInvitations); `listInvitations` is defined with the members calls below.
  const invites = new InvitationWatch({ list: () => listInvitations(), clock });
  const leaderStatus = () => ({ syncing: status.syncing, online: status.online, lastError: status.lastError, lastSyncedAt: status.lastSyncedAt, progress: status.progress });
  const ES = opts.EventSource ?? g.EventSource;
  const live =
    opts.live !== false && ES
      ? new Live({
          url,
          deviceId: local.deviceId,
          ticket: async () => String((await engine.call('POST', '/api/sync/stream-ticket', {})).ticket),
          poke: () => {
            void engine.round();
            // A poke without data may be an invitation: tell this tab's and the others' watchers.
            invites.poked();
            tabs.post({ k: 'poked' });
          },
          onState: () => undefined,
          clock,
          random,
          EventSource: ES,
        })
      : null;

  const pollMs = opts.pollIntervalMs ?? 300_000;
  let pollTimer: unknown = null;
  const poll = () => {
    if (pollTimer !== null) clock.clearTimeout(pollTimer);
    pollTimer = clock.setTimeout(() => {
      if (tabs.leader) void engine.round();
      invites.poked();
      poll();
    }, pollMs);
  };
  const tabs: Tabs = new Tabs(storage.name, {
    now: () => clock.now(),
    heartbeat: leaderStatus,
    wantsToSend: () => local.outbox.length > 0,
    onLeader: (leader) => {
      if (leader) {
        live?.start();
        void engine.now();
      } else {
        live?.stop();
        engine.pause();
      }
    },
    onMessage: (m: TabMessage) => {
      if (m.k === 'changed') {
        void local.refresh(m).then(() => {
          if (m.outbox && tabs.leader && local.outbox.length) engine.afterWrite();
        });
      } else if (m.k === 'kick' && tabs.leader) engine.afterWrite();
      else if (m.k === 'poked') invites.poked();
      else if (m.k === 'hb' && !tabs.leader) setStatus(m.status as Partial<SyncStatus>);
      else if (m.k === 'token') {
        engine.setToken(m.token);
        if (tabs.leader) void engine.now();
      }
    },
  });

  /** Something to send: the leader sends, a follower tells it to (and the leader also hears the `changed` notice). */
  const kick = () => (tabs.leader ? engine.afterWrite() : tabs.post({ k: 'kick' }));

  // --- page lifecycle ----------------------------------------------------------
  const on = (target: { addEventListener?: (t: string, cb: (e: Event) => void) => void } | undefined, t: string, cb: (e: Event) => void) => {
    target?.addEventListener?.(t, cb);
    return () => (target as { removeEventListener?: (t: string, cb: (e: Event) => void) => void })?.removeEventListener?.(t, cb);
  };
  const offs: (() => void)[] = [];
  let closed = false;
  const sleep = () => {
    // Into the bfcache or frozen: let another tab lead, release the database.
    tabs.stop();
    live?.stop();
    storage.suspend();
  };
  const wake = () => {
    if (closed) return;
    tabs.start();
    // Notices sent while we slept were missed: re-read everything.
    void local.refresh({ ids: [], outbox: true, all: true });
  };
  if (g.document) {
    offs.push(on(g, 'pagehide', (e) => (e as PageTransitionEvent).persisted && sleep()));
    offs.push(on(g, 'pageshow', (e) => (e as PageTransitionEvent).persisted && wake()));
    offs.push(on(g.document, 'freeze', sleep));
    offs.push(on(g.document, 'resume', wake));
    offs.push(on(g.document, 'visibilitychange', () => g.document!.visibilityState === 'visible' && tabs.leader && void engine.now()));
  }
  offs.push(on(g, 'online', () => {
    setStatus({ online: true });
    live?.nudge();
    invites.poked();
    if (tabs.leader) void engine.now();
  }));
  offs.push(on(g, 'offline', () => setStatus({ online: false })));
  storage.onBlocked = () =>
    setStatus({ lastError: { code: 'storage_blocked', message: 'another tab holds an older version of the local database open' } });

  tabs.start();
  poll();

  const write = async (op: 'create' | 'update' | 'delete', type: EntityType, id: string, data: Record<string, unknown> | null) => {
    if (closed) throw new Error('client closed');
    // The timestamp: the hybrid logical clock's next tick after the wall clock (never behind what was seen).
    await local.write({ operationId: uuid(), entityType: type, id, operation: op, data, deviceId: local.deviceId }, clock.now());
    kick();
  };
  const checkType = (type: string) => {
    if (!TYPES.includes(type as EntityType)) throw new TypeError(`unknown entity type ${type}`);
  };
  const pick = (type: EntityType, data: Record<string, unknown>) => {
    const out: Record<string, unknown> = {};
    for (const f of FIELDS[type]) if (f in data && data[f] !== undefined) out[f] = data[f];
    return out;
  };

  // --- members (online only) ----------------------------------------------------
  let me: string | null = opts.userId ?? null;
  const api = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    if (closed) throw new Error('client closed');
    for (let tries = 0; ; tries++) {
      try {
        return await engine.call(method, path, body);
      } catch (e) {
        if (e instanceof SyncError && e.kind === 'auth' && opts.getToken && tries < 1) {
          engine.dropToken();
          continue;
        }
        throw e;
      }
    }
  };
  /** Pulls now, so a membership change shows at once (the leader syncs; a follower asks it to). */
  const pullSoon = () => (tabs.leader ? void engine.now() : tabs.post({ k: 'kick' }));
  const membersAt = (spaceId: string, rest = '') => `/api/spaces/${encodeURIComponent(spaceId)}/${rest || 'members'}`;
  const change = async (method: string, path: string, body?: unknown): Promise<Member[]> => {
    const data = await api(method, path, body);
    pullSoon();
    return (data.members ?? []) as Member[];
  };
  const invitationsAt = (id: string, what: string) => `/api/invitations/${encodeURIComponent(id)}/${what}`;
  const listInvitations = async () => ((await api('GET', '/api/invitations')).invitations ?? []) as Invitation[];
  /** An invitation was answered: this tab's and the other tabs' lists change. */
  const answered = () => {
    void invites.refresh();
    tabs.post({ k: 'poked' });
  };

  const client: Client = {
    get deviceId() {
      return local.deviceId;
    },
    get status() {
      return status;
    },
    async create(type, data) {
      checkType(type);
      const d = pick(type, data as Record<string, unknown>);
      for (const f of REQUIRED[type]) {
        const v = d[f];
        if (v === undefined || v === null || (typeof v === 'string' && !v.trim())) throw new TypeError(`${type}.${f} is required`);
      }
      const id = uuid();
      await write('create', type, id, d);
      return id;
    },
    async update(type, id, patch) {
      checkType(type);
      const cur = local.rows.get(id)?.v;
      if (!cur) throw new Error(`no ${type} ${id}`);
      // Only the fields that change travel.
      const d = pick(type, patch as Record<string, unknown>);
      for (const k of Object.keys(d)) if (sameValue(cur[k], d[k])) delete d[k];
      if (Object.keys(d).length === 0) return;
      await write('update', type, id, d);
    },
    async delete(type, id) {
      checkType(type);
      if (!local.rows.get(id)?.v) return; // already gone locally
      await write('delete', type, id, null);
    },
    async get(type, id) {
      const row = local.rows.get(id);
      return row && row.t === type ? ((visible(row) ?? undefined) as never) : undefined;
    },
    async list(type, filter) {
      checkType(type);
      return query(type, filter);
    },
    subscribe(type, filter, cb) {
      checkType(type);
      const s: Sub = { type, filter, cb: cb as Sub['cb'], last: [], byId: new Map() };
      setRows(s, query(type, filter) as unknown as Rec[]);
      subs.add(s);
      cb(s.last as never[]);
      return () => void subs.delete(s);
    },
    onStatus(cb) {
      statusSubs.add(cb);
      return () => void statusSubs.delete(cb);
    },
    onRejected(cb) {
      rejectedSubs.add(cb);
      return () => void rejectedSubs.delete(cb);
    },
    async clearRejected() {
      if (closed) throw new Error('client closed');
      await local.clearRejected();
    },
    setToken(token) {
      if (closed) return;
      engine.setToken(token);
      tabs.post({ k: 'token', token });
      // The sign-in is done: no longer "needs sign-in" while the round with the new token runs.
      if (status.state === 'needsSignIn') setStatus({ lastError: null });
      if (tabs.leader) void engine.now();
    },
    async sync() {
      await engine.now();
      if (engine.lastFailure) throw engine.lastFailure;
    },
    async members(spaceId) {
      return ((await api('GET', membersAt(spaceId))).members ?? []) as Member[];
    },
    async invite(spaceId, email, role = 'editor') {
      return (await api('POST', membersAt(spaceId), { email, role })).invitation as SentInvitation;
    },
    async spaceInvitations(spaceId) {
      return ((await api('GET', membersAt(spaceId, 'invitations'))).invitations ?? []) as SentInvitation[];
    },
    async revokeInvitation(spaceId, invitationId) {
      const path = membersAt(spaceId, `invitations/${encodeURIComponent(invitationId)}`);
      return (await api('DELETE', path)).invitation as SentInvitation;
    },
    invitations: listInvitations,
    onInvitations: (cb) => invites.subscribe(cb),
    async acceptInvitation(invitationId) {
      const data = await api('POST', invitationsAt(invitationId, 'accept'));
      pullSoon();
      answered();
      return data as unknown as AcceptedInvitation;
    },
    async declineInvitation(invitationId, opts = {}) {
      await api('POST', invitationsAt(invitationId, 'decline'), { block: opts.block === true });
      answered();
    },
    setRole: (spaceId, userId, role) => change('PATCH', membersAt(spaceId, `members/${encodeURIComponent(userId)}`), { role }),
    removeMember: (spaceId, userId) => change('DELETE', membersAt(spaceId, `members/${encodeURIComponent(userId)}`)),
    async leave(spaceId) {
      if (!me) {
        const u = (await api('GET', '/api/auth/me')).user as { id?: unknown } | undefined;
        if (typeof u?.id !== 'string') throw new SyncError('retry', 'bad_response', 'no user id in /api/auth/me');
        me = local.userId = u.id;
      }
      await change('DELETE', membersAt(spaceId, `members/${encodeURIComponent(me)}`));
    },
    transferOwnership: (spaceId, userId) => change('POST', membersAt(spaceId, 'owner'), { userId }),
    async close() {
      if (closed) return;
      closed = true;
      for (const off of offs) off();
      if (pollTimer !== null) clock.clearTimeout(pollTimer);
      invites.stop();
      engine.close();
      live?.stop();
      // Let writes and the round in flight finish before the database goes.
      await engine.idle();
      await local.drain();
      tabs.stop();
      subs.clear();
      storage.close();
    },
  };
  return client;
}
