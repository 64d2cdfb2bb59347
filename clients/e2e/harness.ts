// Shared by the browser tests and the bench: the real tidesync binary on a
// random port with a fresh SQLite database, and Debian's Chromium through
// playwright-core (never a downloaded browser).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from clients/e2e/ or clients/.build/e2e/). */
export const REPO = resolve(here, existsSync(join(here, '..', '..', 'Cargo.toml')) ? '../..' : '../../..');
export const CLIENTS = join(REPO, 'clients');
export const BIN = process.env.TIDESYNC_BIN || join(REPO, 'target', 'release', 'tidesync');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export interface Server {
  url: string;
  stop(): Promise<void>;
  log(): string;
}

/** Starts the binary; `demoDir` is served at / (TIDESYNC_DEMO_DIR); `env` overrides its settings; `args` go on its command line. */
export async function startServer(demoDir: string, env: Record<string, string> = {}, args: string[] = []): Promise<Server> {
  if (!existsSync(BIN)) throw new Error(`no tidesync binary at ${BIN} (cargo build --release, or set TIDESYNC_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'tidesync-e2e-'));
  const child: ChildProcess = spawn(BIN, args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite://${dir}/tidesync.db`,
      JWT_SECRET: 'e2e-secret-e2e-secret-e2e-secret-0123456789',
      RATE_LIMIT_PER_MINUTE: '1000000',
      AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
      LOG_FORMAT: 'json',
      RUST_LOG: 'info',
      TIDESYNC_DEMO_DIR: demoDir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`tidesync did not start within 20 s:\n${log}`)), 20_000);
    const onData = (b: Buffer) => {
      log += b.toString();
      for (const line of log.split('\n')) {
        try {
          const j = JSON.parse(line) as { fields?: { message?: string; address?: string } };
          if (j.fields?.message === 'tidesync listening' && j.fields.address) {
            clearTimeout(timer);
            res(`http://${j.fields.address}`);
          }
        } catch {
          /* not a JSON line (yet) */
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`tidesync exited with ${code}:\n${log}`));
    });
  });
  if (log.length > 1e6) log = log.slice(-1e5);
  return {
    url,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM'); // our own child, by its pid
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function haveChromium(): boolean {
  return existsSync(CHROMIUM);
}

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000 });
}

/** A browser with a profile on disk (`userDataDir`): closing and launching it again is a browser restart. */
export function launchPersistent(userDataDir: string, opts: { offline?: boolean } = {}): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000, offline: opts.offline ?? false });
}

/** Blocks (or unblocks) this context's API calls: "offline" by request routing. The page itself stays loadable. */
export async function setApiBlocked(ctx: BrowserContext, blocked: boolean): Promise<void> {
  if (blocked) await ctx.route('**/api/**', (route) => route.abort('internetdisconnected'));
  else await ctx.unroute('**/api/**');
}

/** Registers a user through the API (from Node). */
export async function register(url: string, email: string): Promise<{ token: string; user: { id: string; email: string; name: string } }> {
  const res = await fetch(`${url}/api/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: 'password123', name: email.split('@')[0] }),
  });
  const j = (await res.json()) as { data: { token: string; user: { id: string; email: string; name: string } } };
  if (!res.ok) throw new Error(`register: ${res.status} ${JSON.stringify(j)}`);
  return j.data;
}

/** Everything the server holds for the user, live records only (a fresh device's initial sync). */
export async function serverState(url: string, token: string): Promise<{ spaces: Rec[]; categories: Rec[]; items: Rec[] }> {
  const out = { spaces: [] as Rec[], categories: [] as Rec[], items: [] as Rec[] };
  let cursor: string | null = null;
  for (let n = 0; n < 1000; n++) {
    const q: string = cursor ? `?lastSyncTimestamp=${encodeURIComponent(cursor)}&limit=5000` : '?limit=5000';
    const res = await fetch(`${url}/api/sync/initial${q}`, { headers: { Authorization: `Bearer ${token}` } });
    const j = (await res.json()) as { data: { spaces: Rec[]; categories: Rec[]; items: Rec[]; syncTimestamp: string; hasMore: boolean } };
    for (const k of ['spaces', 'categories', 'items'] as const)
      for (const r of j.data[k]) {
        out[k] = out[k].filter((x) => x.id !== r.id);
        if (!r.deletedAt) out[k].push(r);
      }
    cursor = j.data.syncTimestamp;
    if (!j.data.hasMore) break;
  }
  return out;
}
export type Rec = Record<string, unknown> & { id: string; deletedAt: string | null };

/**
 * Polls `fn` in the page until it returns something truthy (bounded). Each
 * call is a page.evaluate of a function, which the page's CSP allows (a
 * polling waitForFunction would evaluate strings, which it forbids).
 */
export async function poll<A>(page: Page, fn: (arg: A) => unknown, arg?: A, timeout = 15_000, what = fn.toString()): Promise<void> {
  const end = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn as (a: unknown) => unknown, arg as unknown)) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const DEMO_DIST = join(CLIENTS, 'demo', 'dist');
export const SDK_PAGE = join(CLIENTS, '.build', 'sdk-page');
