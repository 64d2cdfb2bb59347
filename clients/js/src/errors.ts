// How a failed request is handled. Only acks settle operations: no request
// error ever drops the outbox (docs/SYNC_PROTOCOL.md §9).

export type ErrorKind =
  | 'retry' //   network, timeout, 429, 5xx: same request later, with backoff
  | 'auth' //    401: ask getToken again
  | 'resync' //  409 resync_required, 400 invalid_cursor: drop the server copy, pull from scratch, keep the outbox
  | 'shrink' //  413: send fewer operations per request
  | 'fatal'; //  any other 4xx: a client bug; retried slowly so it never wedges silently

export class SyncError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly status?: number,
    /** From `Retry-After`, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'SyncError';
  }
}

/** Classifies an HTTP response that was not a 2xx. */
export function classifyResponse(status: number, body: unknown, retryAfter: string | null): SyncError {
  const err = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof err?.code === 'string' ? err.code : `http_${status}`;
  const message = typeof err?.message === 'string' ? err.message : `HTTP ${status}`;
  const ra = parseRetryAfter(retryAfter);
  if (status === 401) return new SyncError('auth', code, message, status);
  if ((status === 409 && code === 'resync_required') || (status === 400 && code === 'invalid_cursor'))
    return new SyncError('resync', code, message, status);
  if (status === 413) return new SyncError('shrink', code, message, status);
  if (status === 408 || status === 425 || status === 429 || status >= 500) return new SyncError('retry', code, message, status, ra);
  return new SyncError('fatal', code, message, status, ra);
}

export function networkError(e: unknown, timedOut: boolean): SyncError {
  if (timedOut) return new SyncError('retry', 'timeout', 'the request timed out');
  const msg = e instanceof Error ? e.message : String(e);
  return new SyncError('retry', 'network', msg || 'network error');
}

/** `Retry-After` as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | null, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export const MIN_BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 60_000;

/**
 * Delay before retry number `attempt` (1, 2, …): exponential from 1 s, capped at
 * 60 s, with "equal jitter" (half fixed, half random) so many clients that
 * failed together do not come back together. A `Retry-After` is a floor.
 */
export function backoffDelay(attempt: number, random: () => number, retryAfterMs?: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.max(0, attempt - 1));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  const d = Math.max(MIN_BACKOFF_MS, jittered);
  // Retry-After wins even above the cap (the server knows), within reason (10 min).
  return retryAfterMs !== undefined ? Math.max(d, Math.min(retryAfterMs, 600_000)) : d;
}

export type StorageErrorReason = 'quota' | 'closed' | 'unknown';

/**
 * A local write (or the application of a response) that failed in storage: `quota` (the disk or the
 * browser's quota is full), `closed` (the database was closed or deleted under the app, or the client
 * was closed), `unknown` (any other IndexedDB failure). Nothing of the failed operation was stored; the
 * local state is what it was before.
 */
export class StorageError extends Error {
  constructor(
    readonly reason: StorageErrorReason,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

const CLOSED = new Set(['InvalidStateError', 'TransactionInactiveError', 'AbortError', 'NotFoundError', 'VersionError']);
const IDB_ERRORS = new Set([...CLOSED, 'QuotaExceededError', 'UnknownError', 'DataError', 'ConstraintError', 'ReadOnlyError', 'DataCloneError', 'TimeoutError']);

/** The StorageError for a failure of the storage layer; null for any other error (e.g. a bad call). */
export function toStorageError(e: unknown): StorageError | null {
  if (e instanceof StorageError) return e;
  const err = e as { name?: unknown; message?: unknown } | null;
  const name = typeof err?.name === 'string' ? err.name : '';
  const message = typeof err?.message === 'string' && err.message ? err.message : name || 'storage failure';
  if (name === 'QuotaExceededError' || /quota/i.test(message)) return new StorageError('quota', message, e);
  if (CLOSED.has(name) || /connection.*(clos|lost)|storage closed|database.*(clos|delet)/i.test(message)) return new StorageError('closed', message, e);
  if (IDB_ERRORS.has(name)) return new StorageError('unknown', message, e);
  return null;
}
