// React bindings on useSyncExternalStore. A row that did not change keeps its
// object identity, and an unchanged result keeps its array identity, so
// memoised children do not re-render.

import { useMemo, useSyncExternalStore } from 'react';
import type { Client } from './client.js';
import type { BucketListCollections, Collections, SyncStatus } from './types.js';

/**
 * The live rows of `type` matching `filter` (same order as `client.list`). Both type arguments are
 * inferred; the collection comes first so that `useQuery<'item'>(client, 'item')`, as written before
 * schemas, still means the bucket list's items.
 */
export function useQuery<T extends keyof C & string, C extends Collections = BucketListCollections>(client: Client<C>, type: T, filter?: C[T]['filter']): C[T]['record'][] {
  // The filter by value: a new object with the same fields is the same query.
  const key = JSON.stringify(Object.entries(filter ?? {}).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)));
  const store = useMemo(() => {
    const f = Object.fromEntries(JSON.parse(key) as [string, unknown][]) as C[T]['filter'];
    type Row = C[T]['record'];
    let current: Row[] | null = null;
    // subscribe() delivers the current rows synchronously, so a snapshot can
    // be read before React subscribes (first render) without a second query.
    const read = () => {
      if (current === null) client.subscribe(type, f, (rows) => void (current = rows))();
      return current!;
    };
    return {
      subscribe(onChange: () => void) {
        return client.subscribe(type, f, (rows) => {
          if (current && sameRows(current, rows)) return;
          current = rows;
          onChange();
        });
      },
      getSnapshot: read,
    };
  }, [client, type, key]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

/** The client's sync status; a new object only when something in it changed. */
export function useSyncStatus<C extends Collections>(client: Client<C>): SyncStatus {
  const store = useMemo(
    () => ({ subscribe: (cb: () => void) => client.onStatus(cb), get: () => client.status }),
    [client],
  );
  return useSyncExternalStore(store.subscribe, store.get, store.get);
}

function sameRows(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}
