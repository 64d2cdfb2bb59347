import { IDBFactory } from 'fake-indexeddb';
import { createClient, indexedDbStorage, type Client, type ClientOptions, type Schema, type Storage } from '../src/index.js';
import type { BucketListCollections, Clock, Collections } from '../src/types.js';
import { FakeServer, type SchemaDoc } from './fake-server.js';

/** A clock whose timers fire only when the test advances it. */
export class ManualClock implements Clock {
  t = Date.parse('2026-01-01T00:00:00.000Z');
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => void this.timers.delete(h as number);
  /** Delays (from now) of the pending timers, shortest first. */
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.t).sort((a, b) => a - b);
  }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
    }
    this.t = end;
  }
}

/** Waits (real time, bounded) until `cond` holds. */
export async function until(cond: () => boolean | Promise<boolean>, what = 'condition', ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets queued promise work and fake-indexeddb callbacks run. */
export const settle = () => new Promise((r) => setTimeout(r, 5));

export interface Env {
  server: FakeServer;
  clock: ManualClock;
  idb: IDBFactory;
  storage: (name?: string) => Storage;
  /** A client of this env's server (on its schema, unless `o.schema` says otherwise). */
  client: <C extends Collections = BucketListCollections>(o?: Partial<ClientOptions>) => Promise<Client<C>>;
  clients: { close(): Promise<void> }[];
}

/** A fake server and clients; `schema`: the data model of both (default: the built-in bucket list). */
export function env(schema?: SchemaDoc): Env {
  const server = new FakeServer(schema);
  const clock = new ManualClock();
  const idb = new IDBFactory();
  const clients: Env['clients'] = [];
  const e: Env = {
    server,
    clock,
    idb,
    clients,
    storage: (name = 'db') => indexedDbStorage({ name, indexedDB: idb }),
    client: async <C extends Collections>(o: Partial<ClientOptions> = {}) => {
      const c = await createClient<C>({
        url: 'http://tidesync.test',
        token: 't1',
        fetch: server.fetch as typeof fetch,
        storage: e.storage(),
        clock,
        random: () => 0.5,
        live: false,
        ...(schema ? { schema: schema as unknown as Schema } : {}),
        ...o,
      });
      clients.push(c);
      return c;
    },
  };
  return e;
}

export async function closeAll(e: Env) {
  for (const c of e.clients) await c.close();
}
