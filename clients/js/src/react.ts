// React bindings on useSyncExternalStore. A row that did not change keeps its
// object identity, and an unchanged result keeps its array identity, so
// memoised children do not re-render.

import { useMemo, useSyncExternalStore } from 'react';
import type { Client } from './client.js';
import type { EntityType, Filter, RecordOf, SyncStatus } from './types.js';

/** The live rows of `type` matching `filter` (same order as `client.list`). */
export function useQuery<T extends EntityType>(client: Client, type: T, filter?: Filter): RecordOf<T>[] {
  const spaceId = filter?.spaceId;
  const categoryId = filter?.categoryId;
  const store = useMemo(() => {
    const f: Filter = {};
    if (spaceId !== undefined) f.spaceId = spaceId;
    if (categoryId !== undefined) f.categoryId = categoryId;
    let current: RecordOf<T>[] | null = null;
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
  }, [client, type, spaceId, categoryId]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

/** The client's sync status; a new object only when something in it changed. */
export function useSyncStatus(client: Client): SyncStatus {
  const store = useMemo(
    () => ({ subscribe: (cb: () => void) => client.onStatus(cb), get: () => client.status }),
    [client],
  );
  return useSyncExternalStore(store.subscribe, store.get, store.get);
}

function sameRows(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}
