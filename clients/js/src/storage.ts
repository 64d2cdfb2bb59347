// The storage contract the client runs on, and the in-memory implementation.
//
// Every change the client makes is ONE `run('readwrite', fn)`: fn reads what it
// needs and queues writes; all of it commits together or not at all. fn may
// only await the Tx's own methods (an IndexedDB transaction commits as soon as
// it has nothing left to do).

export type StoreName = 'records' | 'outbox' | 'meta' | 'rejected';

export interface Tx {
  get<T>(store: StoreName, key: IDBValidKey): Promise<T | undefined>;
  /** Every value in key order (the first `limit` if given). */
  getAll<T>(store: StoreName, limit?: number): Promise<T[]>;
  /** `records` are keyed by their `id`; `meta` needs an explicit key. */
  put(store: StoreName, value: unknown, key?: IDBValidKey): void;
  /** Appends to an auto-numbered store (`outbox`, `rejected`); resolves with the new `seq`. */
  add(store: StoreName, value: object): Promise<number>;
  delete(store: StoreName, key: IDBValidKey): void;
  clear(store: StoreName): void;
}

export interface Storage {
  /** Names the database; tabs sharing a name share data, a sender lock and a broadcast channel. */
  readonly name: string;
  /**
   * `relaxed`: the write need not be on disk when the promise resolves (IndexedDB `durability: 'relaxed'`).
   * Only for what the server can send again: the middle slices of a pulled page, whose cursor is stored
   * by a later strict transaction.
   */
  run<T>(mode: 'readonly' | 'readwrite', fn: (tx: Tx) => Promise<T>, opts?: { relaxed?: boolean }): Promise<T>;
  /** Releases the connection (page hidden into the back/forward cache); the next `run` reopens it. */
  suspend(): void;
  close(): void;
  /** Set by the client: told when an upgrade waits for another tab (`blocked`). */
  onBlocked?: () => void;
  /**
   * Set by the client: the database had to be created again (deleted under an open app, site data
   * cleared). Runs in the first transaction of the new database, before any other: the client writes
   * back what it holds in memory (records, outbox, cursor, device id, dead letters).
   */
  onRecreated?: (tx: Tx) => Promise<void>;
}

type Table = Map<IDBValidKey, unknown>;
const STORES: StoreName[] = ['records', 'outbox', 'meta', 'rejected'];

/** Keeps everything in memory (lost on reload). Clients created on the same instance share its data, like tabs on one IndexedDB. */
export function memoryStorage(name = 'tidesync-memory'): Storage {
  const tables = new Map<StoreName, Table>(STORES.map((s) => [s, new Map()]));
  let seq = 0;
  let chain: Promise<unknown> = Promise.resolve();
  const keyOf = (store: StoreName, value: unknown, key?: IDBValidKey): IDBValidKey => {
    if (key !== undefined) return key;
    const v = value as { id?: string; seq?: number };
    return (store === 'records' ? v.id : v.seq) as IDBValidKey;
  };
  const sortKeys = (keys: IDBValidKey[]) =>
    keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  return {
    name,
    suspend() {},
    close() {},
    run<T>(mode: 'readonly' | 'readwrite', fn: (tx: Tx) => Promise<T>): Promise<T> {
      // Transactions run one at a time; writes are buffered and applied on
      // success only, so a throwing fn leaves nothing behind (like an abort).
      const go = async (): Promise<T> => {
        const pending = new Map<StoreName, Map<IDBValidKey, unknown | typeof GONE>>();
        const cleared = new Set<StoreName>();
        const view = (s: StoreName) => {
          let m = pending.get(s);
          if (!m) pending.set(s, (m = new Map()));
          return m;
        };
        const write = () => {
          if (mode !== 'readwrite') throw new Error('readonly transaction');
        };
        const read = (s: StoreName, k: IDBValidKey) => {
          const p = pending.get(s);
          if (p?.has(k)) {
            const v = p.get(k);
            return v === GONE ? undefined : v;
          }
          return cleared.has(s) ? undefined : tables.get(s)!.get(k);
        };
        const keys = (s: StoreName) => {
          const all = new Set<IDBValidKey>(cleared.has(s) ? [] : tables.get(s)!.keys());
          for (const [k, v] of pending.get(s) ?? []) v === GONE ? all.delete(k) : all.add(k);
          return sortKeys([...all]);
        };
        const tx: Tx = {
          get: async <V>(s: StoreName, k: IDBValidKey) => clone(read(s, k)) as V | undefined,
          getAll: async <V>(s: StoreName, limit?: number) =>
            keys(s).slice(0, limit ?? Infinity).map((k) => clone(read(s, k))) as V[],
          put(s, value, key) {
            write();
            view(s).set(keyOf(s, value, key), clone(value));
          },
          add: async (s, value) => {
            write();
            const n = ++seq;
            view(s).set(n, { ...clone(value), seq: n });
            return n;
          },
          delete(s, k) {
            write();
            view(s).set(k, GONE);
          },
          clear(s) {
            write();
            cleared.add(s);
            pending.delete(s);
          },
        };
        const result = await fn(tx);
        for (const s of cleared) tables.get(s)!.clear();
        for (const [s, m] of pending)
          for (const [k, v] of m) v === GONE ? tables.get(s)!.delete(k) : tables.get(s)!.set(k, v);
        return result;
      };
      const p = chain.then(go, go);
      chain = p.catch(() => undefined);
      return p;
    },
  };
}

const GONE = Symbol('deleted');
const clone = <T>(v: T): T => (v === undefined ? v : structuredClone(v));
