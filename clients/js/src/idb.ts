// IndexedDB storage. One database per `name`, four object stores:
//   records  – one row per record: {id, t: type, v: local view, s?: server copy while ops are pending}
//   outbox   – one row per pending operation, auto-numbered (`seq`) so FIFO order is the key order
//   meta     – cursor, deviceId, resync state
//   rejected – dead letters
// Every read-write transaction asks for `durability: 'strict'`, so a resolved
// write is on disk, not in an OS buffer; except the slices of a pulled page
// that hold only server copies (`relaxed`): the page's cursor is stored by
// its last slice, strict, and a crash before that pulls the page again. (A
// browser's store is one ordered log, SQLite's or LevelDB's: a strict commit
// makes the relaxed ones before it durable too.)

import type { Storage, StoreName, Tx } from './storage.js';

const VERSION = 1;
const STORES: StoreName[] = ['records', 'outbox', 'meta', 'rejected'];

export interface IndexedDbOptions {
  /** Database name (default `tidesync`). Use one per signed-in user. */
  name?: string;
  /** Any IDBFactory; default `globalThis.indexedDB` (tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
}

export function indexedDbStorage(opts: IndexedDbOptions = {}): Storage {
  const name = opts.name ?? 'tidesync';
  const factory = opts.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!factory) throw new Error('indexedDbStorage: no IndexedDB here; pass { indexedDB } or use memoryStorage()');
  let dbp: Promise<IDBDatabase> | null = null;
  let closed = false;
  /** A connection was open before: a database found missing now was deleted under the app. */
  let opened = false;

  const storage: Storage = {
    name,
    run: (mode, fn, opts) => attempt(mode, fn, false, opts?.relaxed === true),
    suspend() {
      // bfcache: an open connection would keep another tab's upgrade waiting.
      const p = dbp;
      dbp = null;
      void p?.then((db) => db.close(), () => undefined);
    },
    close() {
      closed = true;
      storage.suspend();
    },
  };

  function open(): Promise<IDBDatabase> {
    if (closed) return Promise.reject(new Error('storage closed'));
    if (dbp) return dbp;
    const p = new Promise<IDBDatabase>((resolve, reject) => {
      const req = factory!.open(name, VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('records')) db.createObjectStore('records', { keyPath: 'id' });
        if (!db.objectStoreNames.contains('outbox')) db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true });
        if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
        if (!db.objectStoreNames.contains('rejected')) db.createObjectStore('rejected', { keyPath: 'seq', autoIncrement: true });
      };
      // Another tab still holds an older version open; it closes on its
      // `versionchange`, then this open goes on by itself.
      req.onblocked = () => storage.onBlocked?.();
      req.onsuccess = () => {
        const db = req.result;
        // A newer version (another tab, a new deploy) wants to upgrade: let it. A deletion
        // (newVersion null): let it, then create the database again at once, with what the client holds.
        db.onversionchange = (ev) => {
          db.close();
          if (dbp === p) dbp = null;
          if (ev.newVersion === null) reopenSoon();
        };
        // Closed by the browser (site data cleared, Safari losing the connection): open again.
        db.onclose = () => {
          if (dbp === p) dbp = null;
          reopenSoon();
        };
        const again = opened;
        opened = true;
        const restore = storage.onRecreated;
        if (!again || !restore) return resolve(db);
        // Opened again: if the database is a new one (no device id: deleted, and created again by us or
        // by another tab), the client's copy goes back in before anything else runs on it.
        transact(db, 'readwrite', async (tx) => {
          if ((await tx.get('meta', 'deviceId')) === undefined) await restore(tx);
        }).then(
          () => resolve(db),
          (e) => {
            db.close();
            if (dbp === p) dbp = null;
            reject(e);
          },
        );
      };
      req.onerror = () => {
        if (dbp === p) dbp = null;
        reject(req.error);
      };
    });
    dbp = p;
    return p;
  }

  function reopenSoon(): void {
    // Queued behind the deletion by IndexedDB itself; a failure shows at the next write.
    setTimeout(() => {
      if (!closed) open().catch(() => undefined);
    }, 0);
  }

  async function attempt<T>(mode: IDBTransactionMode, fn: (tx: Tx) => Promise<T>, retried: boolean, relaxed = false): Promise<T> {
    const db = await open();
    try {
      return await transact(db, mode, fn, relaxed);
    } catch (e) {
      // Safari: "Connection to Indexed Database server lost" / "connection is
      // closing". The transaction did not commit, so reopen once and redo it.
      if (!retried && !closed && isConnectionLost(e)) {
        if (dbp) {
          const stale = dbp;
          dbp = null;
          void stale.then((d) => d.close(), () => undefined);
        }
        return attempt(mode, fn, true, relaxed);
      }
      throw e;
    }
  }

  return storage;
}

function isConnectionLost(e: unknown): boolean {
  const err = e as { name?: string; message?: string } | null;
  if (!err) return false;
  if (err.name === 'InvalidStateError' || err.name === 'UnknownError') return true;
  return /connection.*(clos|lost)/i.test(err.message ?? '');
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function transact<T>(db: IDBDatabase, mode: IDBTransactionMode, fn: (tx: Tx) => Promise<T>, relaxed = false): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t =
      mode === 'readwrite'
        ? db.transaction(STORES, mode, { durability: relaxed ? 'relaxed' : 'strict' })
        : db.transaction(STORES, mode);
    let result: T;
    let failure: unknown;
    t.oncomplete = () => resolve(result);
    t.onabort = () => reject(failure ?? t.error ?? new Error('transaction aborted'));
    const os = (s: StoreName) => t.objectStore(s);
    const tx: Tx = {
      get: <V>(s: StoreName, k: IDBValidKey) => request(os(s).get(k)) as Promise<V | undefined>,
      getAll: <V>(s: StoreName, limit?: number) => request(os(s).getAll(null, limit)) as Promise<V[]>,
      put: (s, v, k) => void (k === undefined ? os(s).put(v) : os(s).put(v, k)),
      add: (s, v) => request(os(s).add(v)) as Promise<number>,
      delete: (s, k) => void os(s).delete(k),
      clear: (s) => void os(s).clear(),
    };
    fn(tx).then(
      (r) => {
        result = r;
        // Commit now instead of waiting for the auto-commit (saves a task).
        try {
          t.commit?.();
        } catch {
          /* already finishing */
        }
      },
      (e) => {
        failure = e;
        try {
          t.abort();
        } catch {
          /* already aborted */
        }
      },
    );
  });
}
