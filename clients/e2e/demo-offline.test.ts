// The demo as an installable offline app (issue 20.1), in real Chromium with
// the network really off (context.setOffline): a reload and a browser restart
// with the same profile open the app from its service worker with every record
// and pending change; writes made offline sync when the network returns; a new
// version waits until the user clicks Reload.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { addItem, addSpace, axeSerious, signIn, titles, waitControlled, waitPending, waitSynced } from './demo-helpers.js';
import { DEMO_DIST, haveChromium, launch, launchPersistent, poll, serverState, startServer, type Server } from './harness.js';

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

const token = (p: Page) => p.evaluate(() => (JSON.parse(localStorage.getItem('tidesync.demo.session') ?? '{}') as { token: string }).token);
const serverTitles = async (t: string) => (await serverState(server.url, t)).items.map((i) => i.title).sort();
const pendingOf = (p: Page, title: string) => p.locator('[data-testid=item]', { hasText: title }).getAttribute('data-pending');

test('offline reload: the app opens from the service worker with every record and the pending change, writes, and syncs when online', { skip }, async () => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, server.url, `off-${Date.now()}@example.com`, 'signup');
    await waitControlled(p);
    await addSpace(p, 'Home');
    await addItem(p, 'Paint the door');
    await waitSynced(p);

    await ctx.setOffline(true);
    await addItem(p, 'Fix the tap');
    await waitPending(p, 1);

    await p.reload();
    await p.locator('[data-testid=item]', { hasText: 'Fix the tap' }).waitFor({ timeout: 10_000 });
    assert.deepEqual(await titles(p), ['Paint the door', 'Fix the tap']);
    assert.equal(await pendingOf(p, 'Fix the tap'), 'true');
    assert.equal(await pendingOf(p, 'Paint the door'), 'false');
    await waitPending(p, 1);
    assert.equal(await p.locator('[data-testid=sync-status]').getAttribute('data-state'), 'offline');

    await addItem(p, 'Oil the hinges');
    await waitPending(p, 2);

    await ctx.setOffline(false);
    await waitSynced(p);
    assert.deepEqual(await serverTitles(await token(p)), ['Fix the tap', 'Oil the hinges', 'Paint the door']);
  } finally {
    await ctx.close();
  }
});

test('offline browser restart with the same profile: the app opens with its data, writes, and syncs when online', { skip }, async () => {
  const profile = mkdtempSync(join(tmpdir(), 'tidesync-profile-'));
  try {
    let ctx = await launchPersistent(profile);
    let p = await signIn(ctx, server.url, `restart-${Date.now()}@example.com`, 'signup', ctx.pages()[0]);
    await waitControlled(p);
    // Installable: Chromium finds the manifest, its icons and the service worker in order.
    const cdp = await ctx.newCDPSession(p);
    const manifest = (await cdp.send('Page.getAppManifest')) as { errors: unknown[]; url: string };
    assert.deepEqual(manifest.errors, []);
    assert.match(manifest.url, /\/manifest\.webmanifest$/);
    const { installabilityErrors } = (await cdp.send('Page.getInstallabilityErrors')) as { installabilityErrors: { errorId: string }[] };
    assert.deepEqual(installabilityErrors.map((e) => e.errorId), []);
    await cdp.detach();
    await addSpace(p, 'Garden');
    await addItem(p, 'Plant tulips');
    await waitSynced(p);
    await ctx.setOffline(true);
    await addItem(p, 'Prune the roses');
    await waitPending(p, 1);
    const t = await token(p);
    await ctx.close();

    // Launched again without a network.
    ctx = await launchPersistent(profile, { offline: true });
    try {
      p = ctx.pages()[0] ?? (await ctx.newPage());
      p.on('pageerror', (e) => console.error('pageerror:', e.message));
      await p.goto(server.url);
      await p.locator('[data-testid=item]', { hasText: 'Prune the roses' }).waitFor({ timeout: 10_000 });
      assert.deepEqual(await titles(p), ['Plant tulips', 'Prune the roses']);
      assert.equal(await pendingOf(p, 'Prune the roses'), 'true');
      await waitPending(p, 1);
      assert.deepEqual(await axeSerious(p), [], 'axe, offline');
      await addItem(p, 'Mow the lawn');
      await waitPending(p, 2);
      assert.deepEqual(await serverTitles(t), ['Plant tulips'], 'nothing sent while offline');

      await ctx.setOffline(false);
      await waitSynced(p);
      assert.deepEqual(await serverTitles(t), ['Mow the lawn', 'Plant tulips', 'Prune the roses']);
    } finally {
      await ctx.close();
    }
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});

test('a new version waits for the user: "A new version is available — Reload" activates it', { skip }, async () => {
  // A server of its own on a copy of the build, so the copy's sw.js can change.
  const dir = mkdtempSync(join(tmpdir(), 'tidesync-demo-v2-'));
  cpSync(DEMO_DIST, dir, { recursive: true });
  const own = await startServer(dir);
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, own.url, `v2-${Date.now()}@example.com`, 'signup');
    await waitControlled(p);
    const cacheNames = () => p.evaluate(() => caches.keys());
    const [v1] = await cacheNames();
    assert.match(v1 ?? '', /^tidesync-demo-[0-9a-f]{16}$/);
    assert.equal(await p.locator('[data-testid=update-banner]').count(), 0, 'no banner for the first install');

    // Deploy "version 2": a service worker with another version.
    const sw = readFileSync(join(dir, 'sw.js'), 'utf8');
    const next = sw.replace(v1!.slice('tidesync-demo-'.length), '0123456789abcdef');
    assert.notEqual(next, sw);
    writeFileSync(join(dir, 'sw.js'), next);

    await p.reload(); // a navigation: the browser checks sw.js
    const banner = p.locator('[data-testid=update-banner]');
    await banner.waitFor({ timeout: 15_000 });
    assert.match((await banner.textContent()) ?? '', /A new version is available/);
    assert.ok((await cacheNames()).includes(v1!), 'the old version still runs');
    assert.deepEqual(await axeSerious(p), [], 'axe with the banner shown');

    await Promise.all([p.waitForEvent('load', { timeout: 15_000 }), p.click('[data-testid=update-reload]')]);
    await poll(p, () => caches.keys().then((k) => k.join() === 'tidesync-demo-0123456789abcdef'), undefined, 10_000, 'only the new cache');
    await p.waitForSelector('[data-testid=new-space]', { timeout: 10_000 });
    assert.equal(await p.locator('[data-testid=update-banner]').count(), 0);
  } finally {
    await ctx.close();
    await own.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
