// Helpers for driving the SDK inside a real page.
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { CLIENTS, poll, SDK_PAGE } from './harness.js';

/** Builds the SDK test page (index.html, app.js, app.css) into clients/.build/sdk-page. */
export async function buildSdkPage(): Promise<string> {
  mkdirSync(SDK_PAGE, { recursive: true });
  await build({
    absWorkingDir: CLIENTS,
    entryPoints: [join(CLIENTS, 'e2e', 'sdk-page.ts')],
    outfile: join(SDK_PAGE, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    logLevel: 'warning',
  });
  writeFileSync(join(SDK_PAGE, 'index.html'), '<!doctype html><meta charset="utf-8"><title>sdk</title><link rel="stylesheet" href="/app.css"><div id="app"></div><script type="module" src="/app.js"></script>');
  writeFileSync(join(SDK_PAGE, 'app.css'), '');
  return SDK_PAGE;
}

/** Opens the SDK page and a client in it as `window.c` (rejections collected in `window.rejected`). */
export async function sdkPage(ctx: BrowserContext, url: string, token: string, db = 'e2e'): Promise<Page> {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  await page.goto(url);
  await poll(page, () => !!(window as unknown as { tidesyncSdk?: unknown }).tidesyncSdk, undefined, 10_000, 'the SDK page');
  await page.evaluate(
    async ([token, db]) => {
      const w = window as unknown as { tidesyncSdk: typeof import('../js/src/index.js'); c: unknown; rejected: unknown[] };
      const sdk = w.tidesyncSdk;
      const c = await sdk.createClient({ url: '', token, storage: sdk.indexedDbStorage({ name: db }) });
      w.rejected = [];
      c.onRejected((r) => w.rejected.push(...r));
      w.c = c;
    },
    [token, db] as const,
  );
  return page;
}

type C = import('../js/src/index.js').Client;
/** Runs `fn(client)` in the page. */
export function inPage<T>(page: Page, fn: (c: C, arg: never) => Promise<T> | T, arg?: unknown): Promise<T> {
  return page.evaluate(
    ([src, a]) => {
      const f = new Function(`return (${src})`)() as (c: unknown, a: unknown) => unknown;
      return f((window as unknown as { c: unknown }).c, a);
    },
    [fn.toString(), arg] as const,
  ) as Promise<T>;
}

/** Waits until the client in the page has an empty outbox. */
export async function drained(page: Page, timeout = 20_000): Promise<void> {
  await poll(page, () => {
    const c = (window as unknown as { c?: C }).c;
    return !!c && c.status.pending === 0 && !c.status.syncing;
  }, undefined, timeout, 'an empty outbox');
}

/** Tells the page the network is back (what the browser does when it reconnects). */
export async function online(page: Page): Promise<void> {
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
}
