// The demo app in real Chromium against the real server: offline (the
// network off), reload, back online, and a second device that gets the change
// through the server and the event-stream poke.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { signIn, waitControlled, waitSynced } from './demo-helpers.js';
import { DEMO_DIST, haveChromium, launch, poll, startServer, type Server } from './harness.js';

const skip = haveChromium() ? false : 'no Chromium';
let server: Server;
let browser: Browser;

before(async () => {
  if (skip) return;
  server = await startServer(DEMO_DIST);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const status = (p: Page) => p.locator('[data-testid=sync-status]');
const titlesAre = (p: Page, want: string, timeout = 10_000) =>
  poll(p, (w) => [...document.querySelectorAll('[data-testid=item-title]')].map((e) => e.textContent).join() === w, want, timeout, `titles ${want}`);


test('offline create survives a reload, syncs when the network is back, and reaches another device by the poke', { skip }, async () => {
  const email = `ada-${Date.now()}@example.com`;
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await signIn(ctxA, server.url, email, 'signup');
    await waitSynced(a);
    await waitControlled(a);

    // Offline: the network is off; the page loads from the service worker.
    await ctxA.setOffline(true);
    await a.fill('[data-testid=new-space] input', 'Japan trip');
    await a.press('[data-testid=new-space] input', 'Enter');
    await a.fill('[data-testid=new-category] input', 'Places');
    await a.press('[data-testid=new-category] input', 'Enter');
    await a.fill('[data-testid=item-title-input]', 'Visit Kyoto');
    await a.selectOption('[data-testid=item-type]', 'place');
    await a.fill('[data-testid=item-ext]', 'kyoto-jp');
    await a.press('[data-testid=item-title-input]', 'Enter');
    const item = a.locator('[data-testid=item]', { hasText: 'Visit Kyoto' });
    await item.waitFor({ timeout: 5000 });
    assert.equal(await item.getAttribute('data-pending'), 'true');
    await poll(a, () => document.querySelector<HTMLElement>('[data-testid=sync-status]')?.dataset.pending === '3', undefined, 5000, '3 pending');

    // Reload while offline: the item is still there, still pending.
    await a.reload();
    const again = a.locator('[data-testid=item]', { hasText: 'Visit Kyoto' });
    await again.waitFor({ timeout: 10_000 });
    assert.equal(await again.getAttribute('data-pending'), 'true');
    assert.equal(await status(a).getAttribute('data-pending'), '3');
    assert.match(await again.textContent() ?? '', /Place id kyoto-jp/);

    // Device B: same user, another browser profile, online and listening.
    let streams = 0;
    ctxB.on('request', (r) => void (new URL(r.url()).pathname === '/api/sync/stream' && streams++));
    const b = await signIn(ctxB, server.url, email, 'signin');
    await waitSynced(b);
    assert.equal(await b.locator('[data-testid=item]').count(), 0);
    for (let t = 0; streams === 0 && t < 100; t++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(streams, 1, 'B holds the event stream');

    // Back online: A drains its outbox…
    await ctxA.setOffline(false);
    await waitSynced(a);
    assert.equal(await status(a).getAttribute('data-pending'), '0');
    assert.equal(await a.locator('[data-testid=item]', { hasText: 'Visit Kyoto' }).getAttribute('data-pending'), 'false');

    // …and B, which polls only every 5 minutes, gets it from the stream poke.
    const onB = b.locator('[data-testid=item]', { hasText: 'Visit Kyoto' });
    await onB.waitFor({ timeout: 10_000 });
    assert.match(await onB.textContent() ?? '', /Place id kyoto-jp/);
    assert.equal(await b.locator('[data-testid=space]', { hasText: 'Japan trip' }).count(), 1);
    assert.equal(await b.locator('[data-testid=category]', { hasText: 'Places' }).count(), 1);

    // Complete it on B; A sees the check mark (poke the other way).
    await onB.locator('[data-testid=item-complete]').check();
    await poll(a, () => document.querySelector<HTMLInputElement>('[data-testid=item] [data-testid=item-complete]')?.checked === true, undefined, 10_000, 'checked on A');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('reorder and delete in the demo reach the other device', { skip }, async () => {
  const email = `bo-${Date.now()}@example.com`;
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    const a = await signIn(ctxA, server.url, email, 'signup');
    await a.fill('[data-testid=new-space] input', 'Reading');
    await a.press('[data-testid=new-space] input', 'Enter');
    for (const t of ['Dune', 'Emma', 'Ulysses']) {
      await a.fill('[data-testid=item-title-input]', t);
      await a.selectOption('[data-testid=item-type]', 'book');
      await a.press('[data-testid=item-title-input]', 'Enter');
      await a.locator('[data-testid=item]', { hasText: t }).waitFor({ timeout: 5000 });
    }
    await waitSynced(a);
    const b = await signIn(ctxB, server.url, email, 'signin');
    const titles = (p: Page) => p.locator('[data-testid=item-title]').allTextContents();
    await poll(b, () => document.querySelectorAll('[data-testid=item]').length === 3, undefined, 10_000, '3 items on B');
    assert.deepEqual(await titles(b), ['Dune', 'Emma', 'Ulysses']);

    await a.locator('[data-testid=item]', { hasText: 'Ulysses' }).locator('[data-testid=item-up]').click();
    await titlesAre(a, 'Dune,Ulysses,Emma');
    await titlesAre(b, 'Dune,Ulysses,Emma');

    await b.locator('[data-testid=item]', { hasText: 'Emma' }).locator('[data-testid=item-delete]').click();
    await titlesAre(a, 'Dune,Ulysses');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
