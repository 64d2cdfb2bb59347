// Public types of @tidesync/client. Records are the server's wire records
// (docs/DATA_MODELS.md), camelCase, plus `_pending`.
//
// The client is typed by a map of collections (`Collections`): for each
// collection name, its record as read, the data of a create, the patch of an
// update and the filter of a list. `npm run schema-types -- schema.json`
// generates that map from a schema; the default is the bucket list, whose
// types are spelt out below (Space, Category, Item, …).

/** What a client knows of one collection's types. */
export interface CollectionTypes {
  /** A record as `get`/`list`/`subscribe` give it: the collection's properties and the server's fields. */
  record: RecordMeta;
  /** The data of `create`: the required properties and any others. */
  create: object;
  /** The data of `update`. */
  patch: object;
  /** The filter of `list`/`subscribe`: parent references (`x-parent` properties) by value. */
  filter: object;
}

/** Collection name → its types (a type alias, not an interface, so it has an implicit index signature). */
export type Collections = { [name: string]: CollectionTypes };

/** The bucket list's collection names (the built-in default schema). */
export type EntityType = 'space' | 'category' | 'item';

/** Metadata every record carries; set by the server (locally: a best guess until the server's copy arrives). */
export interface RecordMeta {
  id: string;
  userId: string | null;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  deviceId: string | null;
  /** true while local operations on this record are not yet acknowledged by the server. */
  _pending: boolean;
}

export interface SpaceFields {
  name: string;
  description: string | null;
  color: string | null;
  icon: string | null;
  order: number | null;
}

export interface CategoryFields {
  spaceId: string;
  name: string;
  description: string | null;
  color: string | null;
  icon: string | null;
  order: number | null;
}

export interface ItemFields {
  spaceId: string | null;
  categoryId: string | null;
  title: string;
  description: string | null;
  notes: string | null;
  type: string | null;
  movieId: string | null;
  bookId: string | null;
  placeId: string | null;
  isCompleted: boolean | null;
  completedAt: string | null;
  priority: number | string | null;
  order: number | null;
  tags: string[] | null;
}

export interface FieldsOf {
  space: SpaceFields;
  category: CategoryFields;
  item: ItemFields;
}

export type Space = SpaceFields & RecordMeta;
export type Category = CategoryFields & RecordMeta;
export type Item = ItemFields & RecordMeta;
export type RecordOf<T extends EntityType> = FieldsOf[T] & RecordMeta;
/** Any synced record. */
export type AnyRecord = Space | Category | Item;

/** Data for `create`: the required fields plus any others. */
export type CreateData<T extends EntityType> = T extends 'space'
  ? Pick<SpaceFields, 'name'> & Partial<SpaceFields>
  : T extends 'category'
    ? Pick<CategoryFields, 'spaceId' | 'name'> & Partial<CategoryFields>
    : Pick<ItemFields, 'title'> & Partial<ItemFields>;

export type Patch<T extends EntityType> = Partial<FieldsOf[T]>;

export interface Filter {
  spaceId?: string;
  categoryId?: string;
}

/** The built-in bucket list as a `Collections` map: the default type of `createClient`. */
export type BucketListCollections = {
  [T in EntityType]: { record: RecordOf<T>; create: CreateData<T>; patch: Patch<T>; filter: Filter };
};

/** A request-level or round-level error, as shown in `status.lastError`. */
export interface SyncErrorInfo {
  /** The server's error code (`rate_limited`, `database_unavailable`, …) or a client one (`network`, `timeout`, `unauthorized`, `storage`). */
  code: string;
  message: string;
  /** HTTP status, when there was a response. */
  status?: number;
  /** When the next automatic attempt is due (epoch ms), if one is scheduled. */
  retryAt?: number;
}

/** A member's role in a space. An unshared space has its owner alone. */
export type Role = 'owner' | 'editor' | 'viewer';

/** One member of a space, as `GET /api/spaces/{spaceId}/members` lists it (owner first). */
export interface Member {
  userId: string;
  email: string;
  name: string;
  role: Role;
  /** When the member got this role (ISO-8601). */
  since: string;
}

/** The role an invitation offers. */
export type MemberRole = Exclude<Role, 'owner'>;

/** An invitation you sent, as the owner sees it: the same whether or not the email has an account. */
export interface SentInvitation {
  id: string;
  spaceId: string;
  /** The invitee's email, normalized (trimmed, lower-case). */
  email: string;
  role: MemberRole;
  status: 'pending' | 'accepted' | 'declined' | 'revoked';
  /** ISO-8601. */
  createdAt: string;
  /** ISO-8601: after this it can no longer be accepted. */
  expiresAt: string;
}

/** An invitation you received (`invitations()`): what you would accept, nothing else of the space. */
export interface Invitation {
  id: string;
  spaceId: string;
  spaceName: string;
  inviter: { name: string; email: string };
  role: MemberRole;
  createdAt: string;
  expiresAt: string;
}

/** The answer to `acceptInvitation`: the space arrives at the sync round that follows. */
export interface AcceptedInvitation {
  spaceId: string;
  role: MemberRole;
  members: Member[];
}

/** A local operation the server refused for good (a "dead letter"); it was dropped and the local copy rolled back. */
export interface RejectedOp {
  operationId: string;
  /** The collection's name (with the default schema: an `EntityType`). */
  entityType: string;
  id: string;
  operation: 'create' | 'update' | 'delete';
  data: Record<string, unknown> | null;
  timestamp: string;
  /**
   * The server's per-operation error (`validation_failed`, `not_found`, `unknown_reference`, `forbidden`, …),
   * or a local one: `dependency_rejected` (an operation it depended on was rejected) or `space_removed`
   * (the user left or was removed from the shared space the operation touched, before it was sent).
   */
  error: { code: string; message: string };
  rejectedAt: number;
}

/**
 * The sync state in one word, derived from the other fields (first that applies):
 * `needsSignIn` (the server refused the token: 401, and `getToken` gave no better one; call `setToken`),
 * `offline` (the browser says it has no network), `syncing` (a round is in progress), `retrying` (the
 * last round failed; `retry` says why and when the next attempt is due), `pending` (operations wait
 * to be sent), `idle` (everything is sent and the last round succeeded).
 */
export type SyncState = 'offline' | 'pending' | 'syncing' | 'retrying' | 'needsSignIn' | 'idle';

/**
 * Why the last round failed and when the next automatic attempt is due (epoch ms): `rateLimited`
 * (429), `unreachable` (network error or timeout while the browser is online), `busy` (any other
 * failure: 5xx, `database_unavailable`, a storage failure, a client bug).
 */
export interface SyncRetry {
  reason: 'busy' | 'rateLimited' | 'unreachable';
  at: number;
}

export interface SyncStatus {
  /** Derived: see `SyncState`. */
  state: SyncState;
  /** Derived from `lastError`: set while `state` is `retrying` (and while offline or syncing after a failure), else null. */
  retry: SyncRetry | null;
  /** Whether the server was reachable at the last attempt (`navigator.onLine` is only the first guess). */
  online: boolean;
  /** Operations in the outbox, from every tab. */
  pending: number;
  /** A push/pull round is in progress (in this tab or in the tab that sends). */
  syncing: boolean;
  /** When the last round reached the server's head (epoch ms), or null. */
  lastSyncedAt: number | null;
  lastError: SyncErrorInfo | null;
  /** The most recent rejected operations (newest last, at most 50). */
  rejected: readonly RejectedOp[];
  /**
   * During a big pull (a round whose pages say `hasMore`, or bring more than one slice of 500 records):
   * records received from the server so far in this round, and how many of them are applied locally
   * (stored and visible). The server sends no total. `null` otherwise.
   */
  progress: SyncProgress | null;
  /**
   * Trouble with the local database, from the last failed transaction of this tab until the next one
   * that commits: `quota` (full), `closed` (closed or deleted under the app; the client opens it again,
   * re-creating it from memory if it was deleted), `unknown`. The failed write rejected with a
   * `StorageError`. `null` when storage works.
   */
  storage: { reason: 'quota' | 'closed' | 'unknown'; message: string } | null;
}

export interface SyncProgress {
  received: number;
  applied: number;
}

/** Timers and time, injectable so tests can drive the client deterministically. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
