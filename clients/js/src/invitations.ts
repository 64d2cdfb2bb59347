// Invitations to shared spaces, for an app that shows them: the list is kept
// fresh while anyone subscribes (`onInvitations`). The server pokes the
// invitee's event stream when an invitation arrives or is withdrawn (a poke
// that brings no data), so the list is read again after a poke, at most once
// per MIN_GAP_MS (the last poke of a burst is always followed by a read); and
// at subscription, on the poll timer, when the network comes back and after
// an answer. Nobody subscribed: no request at all.

import type { Clock, Invitation } from './types.js';

const MIN_GAP_MS = 10_000;

export class InvitationWatch {
  private readonly subs = new Set<(list: Invitation[]) => void>();
  private last: Invitation[] | null = null;
  private lastText = '';
  private lastRead = -Infinity;
  private timer: unknown = null;
  private reading = false;
  private again = false;

  constructor(private readonly o: { list: () => Promise<Invitation[]>; clock: Clock }) {}

  subscribe(cb: (list: Invitation[]) => void): () => void {
    this.subs.add(cb);
    if (this.last) cb(this.last);
    void this.refresh();
    return () => {
      this.subs.delete(cb);
      if (!this.subs.size) this.cancel();
    };
  }

  /** Invitations may have changed: read now, or once the gap since the last read has passed. */
  poked(): void {
    if (!this.subs.size || this.timer !== null) return;
    const wait = this.lastRead + MIN_GAP_MS - this.o.clock.now();
    if (wait <= 0) return void this.refresh();
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = null;
      void this.refresh();
    }, wait);
  }

  /** Reads the list now (once more after a read in flight); subscribers hear it if it changed. */
  async refresh(): Promise<void> {
    if (!this.subs.size) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        this.lastRead = this.o.clock.now();
        try {
          const list = await this.o.list();
          const text = JSON.stringify(list);
          if (this.last && text === this.lastText) continue;
          this.last = list;
          this.lastText = text;
          for (const cb of this.subs) cb(list);
        } catch {
          // Offline or signed out: keep the last list; the next poke or poll reads again.
        }
      } while (this.again && this.subs.size);
    } finally {
      this.reading = false;
    }
  }

  private cancel(): void {
    if (this.timer !== null) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  stop(): void {
    this.cancel();
    this.subs.clear();
  }
}
