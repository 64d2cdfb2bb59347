// Several tabs on one database. Every tab writes; one tab, holding a Web Lock,
// sends and holds the event stream. Correctness never depends on that: the
// server dedupes by operationId, and a page is applied only over the cursor it
// was asked with. Change notices travel over a BroadcastChannel.
//
// A leader that closes releases the lock and the next tab in the lock's queue
// takes over. A leader that is frozen (page lifecycle "freeze", a hung tab)
// stops sending heartbeats: a visible follower, or one with operations waiting,
// then steals the lock. A tab going into the back/forward cache or frozen
// gives the lock up itself.

export type TabMessage =
  | { k: 'changed'; ids: string[]; outbox: boolean; all?: boolean }
  | { k: 'kick' } // a follower wrote: the sender should send
  | { k: 'poked' } // the stream poked the sender, or an invitation was answered: invitations may have changed
  | { k: 'hb'; status: unknown } // leader heartbeat, with its sync status
  | { k: 'token'; token: string | null }; // the app signed in again in one tab: every tab's sender uses the new token

interface LockManagerLike {
  request(name: string, opts: { steal?: boolean; signal?: AbortSignal }, cb: () => Promise<void>): Promise<unknown>;
}

const HEARTBEAT_MS = 2000;
const STALE_MS = 7000;

export class Tabs {
  leader = false;
  private channel: BroadcastChannel | null = null;
  private release: (() => void) | null = null;
  private abort: AbortController | null = null;
  private lastHeartbeat = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  private readonly locks: LockManagerLike | undefined;

  constructor(
    private readonly name: string,
    private readonly hooks: {
      onLeader(leader: boolean): void;
      onMessage(m: TabMessage): void;
      heartbeat(): unknown;
      wantsToSend(): boolean;
      now(): number;
    },
  ) {
    this.locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  }

  /** Without Web Locks (Node, old browsers) every tab is its own sender. */
  get solo(): boolean {
    return !this.locks;
  }

  start(): void {
    this.stopped = false;
    if (typeof BroadcastChannel !== 'undefined') {
      this.channel = new BroadcastChannel(`tidesync:${this.name}`);
      // Node: a channel must not keep the process alive.
      (this.channel as { unref?: () => void }).unref?.();
      this.channel.onmessage = (e: MessageEvent) => {
        const m = e.data as TabMessage;
        if (m?.k === 'hb') this.lastHeartbeat = this.hooks.now();
        this.hooks.onMessage(m);
      };
    }
    if (!this.locks) return this.become(true);
    this.lastHeartbeat = this.hooks.now();
    this.requestLock(false);
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
  }

  private requestLock(steal: boolean): void {
    if (!this.locks || this.stopped) return;
    this.abort?.abort();
    const abort = (this.abort = new AbortController());
    const opts = steal ? { steal: true } : { signal: abort.signal };
    this.locks
      .request(`tidesync:${this.name}:sender`, opts, () =>
        new Promise<void>((resolve) => {
          if (this.stopped || abort.signal.aborted) return resolve();
          this.release = resolve;
          this.become(true);
        }),
      )
      .catch(() => undefined) // aborted, or stolen from us
      .finally(() => {
        if (this.abort !== abort) return;
        this.release = null;
        if (this.leader) this.become(false);
        // Stolen or released: queue up again, unless we are going away.
        if (!this.stopped && !abort.signal.aborted) this.requestLock(false);
      });
  }

  private become(leader: boolean): void {
    if (this.leader === leader) return;
    this.leader = leader;
    this.hooks.onLeader(leader);
    if (leader) this.post({ k: 'hb', status: this.hooks.heartbeat() });
  }

  private tick(): void {
    if (this.leader) return this.post({ k: 'hb', status: this.hooks.heartbeat() });
    const visible = (globalThis as { document?: Document }).document?.visibilityState !== 'hidden';
    if (this.hooks.now() - this.lastHeartbeat > STALE_MS && (visible || this.hooks.wantsToSend())) {
      // The leader has gone quiet (frozen, hung): take over.
      this.lastHeartbeat = this.hooks.now();
      this.requestLock(true);
    }
  }

  post(m: TabMessage): void {
    try {
      this.channel?.postMessage(m);
    } catch {
      /* channel closed */
    }
  }

  /** Gives up the lock and the channel (close, freeze, bfcache). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.abort = null;
    this.release?.();
    this.release = null;
    if (this.leader) this.become(false);
    this.channel?.close();
    this.channel = null;
  }
}
