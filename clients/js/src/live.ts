// Pokes from `GET /api/sync/stream`. EventSource cannot send an Authorization
// header, so every connection starts with a single-use ticket from
// `POST /api/sync/stream-ticket`. A spent ticket cannot reconnect, so the
// browser's own reconnect is never used: on any error the stream is closed and
// reopened here, with a fresh ticket, after a backoff. The client pulls after
// every poke and after every (re)connect, so a poke missed while disconnected
// costs nothing.

import { backoffDelay } from './errors.js';
import type { Clock } from './types.js';

type ES = {
  close(): void;
  addEventListener(type: string, cb: (e: MessageEvent) => void): void;
  onopen: ((e: Event) => void) | null;
  onerror: ((e: Event) => void) | null;
};
export type EventSourceCtor = new (url: string) => ES;

export class Live {
  private es: ES | null = null;
  private timer: unknown = null;
  private attempts = 0;
  private running = false;
  connected = false;

  constructor(
    private readonly opts: {
      url: string;
      deviceId: string;
      ticket: () => Promise<string>;
      poke: () => void;
      onState: (connected: boolean) => void;
      clock: Clock;
      random: () => number;
      EventSource: EventSourceCtor;
    },
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.attempts = 0;
    void this.connect();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) this.opts.clock.clearTimeout(this.timer);
    this.timer = null;
    this.es?.close();
    this.es = null;
    this.setConnected(false);
  }

  /** Reconnect now (the network came back). */
  nudge(): void {
    if (!this.running || this.connected) return;
    if (this.timer !== null) this.opts.clock.clearTimeout(this.timer);
    this.timer = null;
    this.attempts = 0;
    void this.connect();
  }

  private setConnected(c: boolean) {
    if (this.connected === c) return;
    this.connected = c;
    this.opts.onState(c);
  }

  private async connect(): Promise<void> {
    if (!this.running || this.es) return;
    let ticket: string;
    try {
      ticket = await this.opts.ticket();
    } catch {
      return this.retry();
    }
    if (!this.running) return;
    const q = `deviceId=${encodeURIComponent(this.opts.deviceId)}&ticket=${encodeURIComponent(ticket)}`;
    const es = new this.opts.EventSource(`${this.opts.url}/api/sync/stream?${q}`);
    this.es = es;
    es.onopen = () => {
      this.attempts = 0;
      this.setConnected(true);
      this.opts.poke(); // whatever happened while we were away
    };
    es.addEventListener('change', () => this.opts.poke());
    es.onerror = () => {
      if (this.es !== es) return;
      es.close();
      this.es = null;
      this.setConnected(false);
      this.retry();
    };
  }

  private retry(): void {
    if (!this.running || this.timer !== null) return;
    this.attempts++;
    const d = backoffDelay(this.attempts, this.opts.random);
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, d);
  }
}
