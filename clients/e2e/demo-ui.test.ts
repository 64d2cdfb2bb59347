// The demo's UI in real Chromium against the real server (issue 20.3–20.7,
// the demo side): items edited in place one field at a time, a windowed list
// whose rows are kept by key, a form that keeps what was typed when storage
// fails, accessible names and roles (and axe-core: no serious or critical
// violation), delete with undo, long words that wrap, the sync state in words
// from the SDK's status (retrying and why, server unreachable, sign in again
// with setToken, the progress of a big first sync, refused changes kept and
// dismissed), storage trouble (a full disk; the database deleted under the app).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page, Request } from 'playwright-core';
import { addItem, addSpace, axeSerious, signIn, titles, waitControlled, waitPending, waitSynced } from './demo-helpers.js';
import { DEMO_DIST, haveChromium, launch, poll, register, serverState, startServer, type Server } from './harness.js';

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
const row = (p: Page, title: string) => p.locator('[data-testid=item]', { hasText: title });
const noSerious = async (p: Page, screen: string) => assert.deepEqual(await axeSerious(p), [], `axe on ${screen}`);

/** The update operations pushed for `id`, each as the list of its fields. */
function pushedUpdates(reqs: Request[], id: string): string[][] {
  const out: string[][] = [];
  for (const r of reqs) {
    if (new URL(r.url()).pathname !== '/api/sync' || r.method() !== 'POST') continue;
    const body = r.postDataJSON() as { changes?: { id: string; operation: string; data: Record<string, unknown> | null }[] };
    for (const c of body.changes ?? []) if (c.id === id && c.operation === 'update') out.push(Object.keys(c.data ?? {}).sort());
  }
  return out;
}

test('an item is edited in place, each field sent alone; other rows keep their elements', { skip }, async () => {
  const ctx = await browser.newContext();
  const reqs: Request[] = [];
  ctx.on('request', (r) => reqs.push(r));
  try {
    const p = await signIn(ctx, server.url, `edit-${Date.now()}@example.com`, 'signup');
    await addSpace(p, 'Films');
    await p.fill('[data-testid=new-category] input', 'Sci-fi');
    await p.press('[data-testid=new-category] input', 'Enter');
    await p.locator('[data-testid=category][aria-selected=true]', { hasText: 'Sci-fi' }).waitFor({ timeout: 5000 });
    await p.click('[data-testid=category][data-id=""]'); // back to All
    await addItem(p, 'Read Dune', { type: 'book', ext: 'OL893415W' });
    await addItem(p, 'Watch Inception', { type: 'movie', ext: '27205' });
    await waitSynced(p);
    const id = (await row(p, 'Watch Inception').getAttribute('data-id'))!;
    // Mark Dune's row element: editing another item must not rebuild it.
    await row(p, 'Read Dune').evaluate((el) => ((el as HTMLElement & { mark?: number }).mark = 1));

    // The title, in its row: Edit turns it into an input; the row keeps its height.
    const height = () => row(p, 'Watch Inception').first().evaluate((el) => (el as HTMLElement).offsetHeight);
    const h0 = await height();
    const inRow = p.locator(`[data-testid=item][data-id="${id}"] [data-testid=item-title-edit]`);
    await p.getByRole('button', { name: 'Edit Watch Inception' }).click();
    await inRow.waitFor();
    assert.equal(await inRow.evaluate((el) => el === document.activeElement), true, 'the input has the focus');
    assert.equal(await inRow.inputValue(), 'Watch Inception');
    assert.equal(await p.locator(`[data-testid=item][data-id="${id}"]`).evaluate((el) => (el as HTMLElement).offsetHeight), h0, 'the same row height');
    await noSerious(p, 'a title edited in its row');
    // Escape cancels: nothing sent, the title back, the focus on the row's Edit button.
    await inRow.fill('Not this');
    await inRow.press('Escape');
    await inRow.waitFor({ state: 'detached' });
    assert.equal(await row(p, 'Watch Inception').locator('[data-testid=item-title]').textContent(), 'Watch Inception');
    assert.equal(await p.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Edit Watch Inception');
    // Enter saves the title alone.
    await p.keyboard.press('Enter'); // the focused Edit button
    await inRow.fill('Watch Inception again');
    await inRow.press('Enter');
    await inRow.waitFor({ state: 'detached' });
    assert.equal(await p.locator(`[data-testid=item][data-id="${id}"] [data-testid=item-title]`).textContent(), 'Watch Inception again');
    await waitSynced(p);

    // The other fields, in the details panel, each saved when it changes.
    await p.getByRole('button', { name: 'Details of Watch Inception again' }).click();
    const editor = p.locator('[data-testid=item-editor]');
    await editor.waitFor();
    await noSerious(p, 'the item details');
    const edit = async (sel: string, value: string, select = false) => {
      if (select) await p.selectOption(sel, { label: value });
      else {
        await p.fill(sel, value);
        await p.press(sel, 'Tab'); // the change event: the field is saved
      }
      await poll(p, () => document.querySelector('[data-testid=editor-note]')?.textContent === 'Saved', undefined, 5000, 'saved');
      await p.evaluate(() => (document.querySelector('[data-testid=editor-note]')!.textContent = ''));
      await waitSynced(p);
    };
    await edit('[data-testid=edit-notes]', 'with the kids');
    await edit('[data-testid=edit-ext]', '27206');
    await edit('[data-testid=edit-category]', 'Sci-fi', true);
    assert.deepEqual(pushedUpdates(reqs, id), [['title'], ['notes'], ['movieId'], ['categoryId']]);

    const onServer = (await serverState(server.url, await token(p))).items.find((i) => i.id === id)!;
    assert.equal(onServer.title, 'Watch Inception again');
    assert.equal(onServer.notes, 'with the kids');
    assert.equal(onServer.movieId, '27206');
    assert.ok(onServer.categoryId);
    await p.click('[data-testid=edit-close]');
    assert.match((await row(p, 'Watch Inception again').textContent()) ?? '', /TMDB id 27206.*with the kids/);
    assert.equal(await row(p, 'Read Dune').evaluate((el) => (el as HTMLElement & { mark?: number }).mark), 1, 'the unchanged row kept its element');

    // Leaving the input saves too (a double click on a title also starts the edit).
    const dune = (await row(p, 'Read Dune').getAttribute('data-id'))!;
    await row(p, 'Read Dune').locator('[data-testid=item-title]').dblclick();
    const duneInput = p.locator(`[data-testid=item][data-id="${dune}"] [data-testid=item-title-edit]`);
    await duneInput.fill('Read Dune Messiah');
    await p.click('[data-testid=space-title]');
    await duneInput.waitFor({ state: 'detached' });
    assert.equal(await row(p, 'Read Dune Messiah').count(), 1);
    const duneOnServer = async () => (await serverState(server.url, await token(p))).items.find((i) => i.id === dune)!.title;
    for (let t = 0; t < 100 && (await duneOnServer()) !== 'Read Dune Messiah'; t++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await duneOnServer(), 'Read Dune Messiah');
    assert.deepEqual(pushedUpdates(reqs, dune), [['title']]);
    // The category tab shows it.
    await p.getByRole('tab', { name: 'Sci-fi' }).click();
    await poll(p, () => [...document.querySelectorAll('[data-testid=item-title]')].map((e) => e.textContent).join() === 'Watch Inception again', undefined, 5000, 'the Sci-fi tab');
  } finally {
    await ctx.close();
  }
});

test('2,000 items: only the rows on screen are in the DOM, scrolling shows the rest', { skip }, async () => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, server.url, `many-${Date.now()}@example.com`, 'signup');
    await addSpace(p, 'Many');
    const spaceId = await p.locator('[data-testid=space].active').getAttribute('data-id');
    await p.evaluate(async (sid) => {
      const c = (window as unknown as { tidesync: { create(t: string, d: object): Promise<string> } }).tidesync;
      for (let i = 0; i < 2000; i++) await c.create('item', { spaceId: sid, title: `Item ${i}`, order: i, isCompleted: false });
    }, spaceId);
    await poll(p, () => document.querySelector('[data-testid=item]')?.getAttribute('aria-setsize') === '2000', undefined, 30_000, '2000 items');
    const rendered = await p.locator('[data-testid=item]').count();
    assert.ok(rendered > 3 && rendered < 60, `${rendered} rows in the DOM`);
    const nodes = await p.evaluate(() => document.getElementsByTagName('*').length);
    assert.ok(nodes < 2000, `${nodes} elements`);
    await p.locator('[data-testid=item-list]').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await row(p, 'Item 1999').waitFor({ timeout: 5000 });
    assert.equal(await row(p, 'Item 0').count(), 0);
    // Complete the last one: its row updates.
    await p.getByRole('checkbox', { name: 'Done: Item 1999' }).check();
    await p.locator('[data-testid=item].done', { hasText: 'Item 1999' }).waitFor({ timeout: 5000 });
    await waitSynced(p, 60_000);
  } finally {
    await ctx.close();
  }
});

test('a full disk: the write fails, the form keeps what was typed, the indicator says why', { skip }, async () => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, server.url, `quota-${Date.now()}@example.com`, 'signup');
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await addSpace(p, 'Full disk');
    await waitSynced(p);
    const storageNote = p.locator('[data-testid=storage-status]');
    assert.equal(await storageNote.isVisible(), false);
    // IndexedDB refuses every write with QuotaExceededError, as when the disk is full. (Chromium's
    // quota override through DevTools did not make a write fail in a test context here.)
    await p.evaluate(() => {
      const fail = function (): never {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      };
      const proto = IDBObjectStore.prototype as unknown as Record<string, unknown>;
      (window as unknown as { idbSaved: unknown[] }).idbSaved = [proto.put, proto.add];
      proto.put = fail;
      proto.add = fail;
    });
    await p.fill('[data-testid=item-title-input]', 'Do not lose me');
    await p.fill('[data-testid=new-item] input[name=notes]', 'typed with care');
    await p.press('[data-testid=item-title-input]', 'Enter');
    const error = p.locator('[data-testid=item-error]');
    await poll(p, () => !!document.querySelector('[data-testid=item-error]')?.textContent, undefined, 10_000, 'an error');
    assert.match((await error.textContent()) ?? '', /Not saved: .*quota.*What you typed is still here/is);
    assert.equal(await p.inputValue('[data-testid=item-title-input]'), 'Do not lose me');
    assert.equal(await p.inputValue('[data-testid=new-item] input[name=notes]'), 'typed with care');
    assert.equal(await row(p, 'Do not lose me').count(), 0);
    // The indicator says it in words (status.storage), and nothing is counted as pending.
    await storageNote.waitFor({ timeout: 5000 });
    assert.equal(await storageNote.getAttribute('data-reason'), 'quota');
    assert.match((await storageNote.textContent()) ?? '', /This device is full/);
    assert.equal(await p.locator('[data-testid=sync-status]').getAttribute('data-pending'), '0');
    await noSerious(p, 'the storage trouble');

    // Space again: the same submit stores it, clears the form, and the storage words go.
    await p.evaluate(() => {
      const proto = IDBObjectStore.prototype as unknown as Record<string, unknown>;
      [proto.put, proto.add] = (window as unknown as { idbSaved: unknown[] }).idbSaved;
    });
    await p.press('[data-testid=item-title-input]', 'Enter');
    await row(p, 'Do not lose me').waitFor({ timeout: 5000 });
    assert.equal(await p.inputValue('[data-testid=item-title-input]'), '');
    assert.equal(await error.textContent(), '');
    await storageNote.waitFor({ state: 'hidden', timeout: 5000 });
    await waitSynced(p);
    assert.deepEqual((await serverState(server.url, await token(p))).items.map((i) => [i.title, i.notes]), [['Do not lose me', 'typed with care']]);
    assert.deepEqual(errors, [], 'no uncaught page error');
  } finally {
    await ctx.close();
  }
});

test('accessible names, roles and focus; delete with undo; long words wrap; axe finds nothing serious', { skip }, async () => {
  const ctx = await browser.newContext();
  try {
    const p0 = await ctx.newPage();
    await p0.goto(server.url);
    await p0.locator('[data-testid=auth-form]').waitFor();
    await noSerious(p0, 'the sign-in screen');
    await p0.close();

    const p = await signIn(ctx, server.url, `a11y-${Date.now()}@example.com`, 'signup');
    // Focus on the main heading after sign-in.
    await poll(p, () => document.activeElement?.tagName === 'H1', undefined, 5000, 'focus on the heading');
    await noSerious(p, 'the empty app');
    await addSpace(p, 'Weekend');
    await addSpace(p, 'Travel');
    assert.equal(await p.locator('[data-testid=space][aria-current=true]').textContent(), 'Travel');
    await p.fill('[data-testid=new-category] input', 'Films');
    await p.press('[data-testid=new-category] input', 'Enter');
    await p.getByRole('tab', { name: 'Films', selected: true }).waitFor({ timeout: 5000 });
    assert.equal(await p.getByRole('tab', { name: 'All' }).getAttribute('aria-selected'), 'false');
    await p.getByRole('tab', { name: 'All' }).click();
    await addItem(p, 'Watch Inception', { type: 'movie', ext: '27205' });
    await addItem(p, 'Visit Rome');
    await p.getByRole('checkbox', { name: 'Done: Watch Inception' }).check();
    for (const name of ['Delete Watch Inception', 'Edit Watch Inception', 'Move Visit Rome up', 'Delete Visit Rome'])
      assert.equal(await p.getByRole('button', { name, exact: true }).count(), 1, name);

    // A 300-character word wraps: the page stays as wide as the viewport.
    const long = 'W'.repeat(300);
    await addItem(p, long);
    const longName = 'S'.repeat(200); // a space name's limit
    await p.fill('[data-testid=new-space] input', longName);
    await p.press('[data-testid=new-space] input', 'Enter');
    await p.locator('[data-testid=space-title]', { hasText: longName }).waitFor();
    const widths = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(widths[0]! <= widths[1]!, `page ${widths[0]} px wide, viewport ${widths[1]} px`);
    await p.locator('[data-testid=space]', { hasText: 'Travel' }).click();
    await waitSynced(p);
    await noSerious(p, 'a space with items');

    // Delete, then undo: the item stays, on the server too.
    await p.getByRole('button', { name: 'Delete Visit Rome' }).click();
    await poll(p, () => ![...document.querySelectorAll('[data-testid=item-title]')].some((e) => e.textContent === 'Visit Rome'), undefined, 3000, 'hidden');
    await p.locator('[data-testid=deleted-toast]').waitFor();
    await noSerious(p, 'the undo toast');
    await p.click('[data-testid=undo-delete]');
    await row(p, 'Visit Rome').waitFor({ timeout: 3000 });
    await new Promise((r) => setTimeout(r, 5500));
    await waitSynced(p);
    const items = async () => (await serverState(server.url, await token(p))).items.map((i) => i.title).sort();
    assert.deepEqual(await items(), [long, 'Visit Rome', 'Watch Inception'].sort());
    // Delete without undo: sent when the toast goes.
    await p.getByRole('button', { name: 'Delete Visit Rome' }).click();
    await p.locator('[data-testid=deleted-toast]').waitFor({ state: 'detached', timeout: 10_000 });
    for (let t = 0; t < 100 && (await items()).length !== 2; t++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await items(), [long, 'Watch Inception'].sort());
    assert.deepEqual((await titles(p)).sort(), [long, 'Watch Inception'].sort());
  } finally {
    await ctx.close();
  }
});

test('the sync state in words: retrying and why, sign in again (the outbox kept), refused changes listed', { skip }, async () => {
  // A server with a small request budget, so it answers 429.
  const tight = await startServer(DEMO_DIST, { RATE_LIMIT_PER_MINUTE: '30' });
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, tight.url, `words-${Date.now()}@example.com`, 'signup');
    await addSpace(p, 'Busy');
    const state = () => p.locator('[data-testid=sync-status]').getAttribute('data-state');
    for (let i = 0; i < 60 && (await state()) !== 'retrying'; i++) {
      await addItem(p, `Item ${i}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.equal(await state(), 'retrying');
    assert.match((await p.locator('[data-testid=sync-status]').textContent()) ?? '', /^\d+ pending · retrying at \d\d:\d\d:\d\d \(rate-limited\)$/);
    await noSerious(p, 'the retrying indicator');
  } finally {
    await ctx.close();
    await tight.stop();
  }

  const ctx2 = await browser.newContext();
  try {
    const email = `again-${Date.now()}@example.com`;
    const p = await signIn(ctx2, server.url, email, 'signup');
    await addSpace(p, 'Later');
    await waitSynced(p);
    // The session ends on the server while the device is offline with a change.
    await ctx2.setOffline(true);
    await addItem(p, 'Written before the session ended');
    await waitPending(p, 1);
    await fetch(`${server.url}/api/auth/logout`, { method: 'POST', headers: { Authorization: `Bearer ${await token(p)}` } });
    await ctx2.setOffline(false);
    const again = p.getByRole('button', { name: 'Sign in again' });
    await again.waitFor({ timeout: 20_000 });
    assert.equal(await p.locator('[data-testid=sync-status]').getAttribute('data-state'), 'needsSignIn');
    assert.match((await p.locator('[data-testid=sync-status]').textContent()) ?? '', /Signed out · 1 pending/);
    // The open app and its client stay: marked here, checked after the sign-in.
    await p.evaluate(() => ((window as unknown as { tidesync: { mark?: number } }).tidesync.mark = 7));
    await again.click();
    const dialog = p.getByRole('dialog', { name: 'Sign in again' });
    await dialog.waitFor();
    assert.match((await dialog.locator('[data-testid=auth-note]').textContent()) ?? '', /1 unsynced change will stay on this device/);
    assert.equal(await dialog.locator('input[name=email]').inputValue(), email);
    await noSerious(p, 'the sign-in-again dialog');
    await dialog.locator('input[name=password]').fill('password123');
    await dialog.locator('[data-testid=auth-submit]').click();
    await dialog.waitFor({ state: 'detached', timeout: 10_000 });
    await waitSynced(p);
    assert.equal(await p.evaluate(() => (window as unknown as { tidesync: { mark?: number } }).tidesync.mark), 7, 'the same client: setToken, no reopen, no reload');
    assert.equal(await again.isVisible(), false);
    assert.deepEqual((await serverState(server.url, await token(p))).items.map((i) => i.title), ['Written before the session ended']);

    // A change the server refuses: listed with its reason, on demand.
    await p.evaluate(() => {
      const c = (window as unknown as { tidesync: { create(t: string, d: object): Promise<string> } }).tidesync;
      return c.create('item', { spaceId: '00000000-0000-4000-8000-000000000000', title: 'Nowhere', isCompleted: false });
    });
    const open = p.locator('[data-testid=rejected-open]');
    await open.waitFor({ timeout: 20_000 });
    assert.equal(await open.textContent(), '1 not saved');
    await open.click();
    const listed = p.locator('[data-testid=rejected-item]');
    await listed.waitFor();
    assert.match((await listed.textContent()) ?? '', /create item “Nowhere” — .+ \(\w+\)/);
    await noSerious(p, 'the refused changes');
    // Kept across a reload (status.rejected is persisted), then dismissed: gone, after a reload too.
    await p.reload();
    await open.waitFor({ timeout: 10_000 });
    await open.click();
    assert.match((await listed.textContent()) ?? '', /create item “Nowhere”/);
    await p.getByRole('button', { name: 'Dismiss all' }).click();
    await open.waitFor({ state: 'hidden', timeout: 5000 });
    assert.equal(await p.locator('[data-testid=rejected-list]').isVisible(), false);
    assert.equal(await listed.count(), 0);
    await p.reload();
    await waitSynced(p);
    assert.equal(await p.evaluate(() => (window as unknown as { tidesync: { status: { rejected: unknown[] } } }).tidesync.status.rejected.length), 0);
    assert.equal(await open.isVisible(), false);
  } finally {
    await ctx2.close();
  }
});

test('the sync state in words: a big first sync shows its progress, then synced; a stopped server is "server unreachable"', { skip }, async () => {
  const own = await startServer(DEMO_DIST);
  let stopped = false;
  const ctx = await browser.newContext();
  try {
    // 3,000 items on the server, made by another device.
    const email = `first-sync-${Date.now()}@example.com`;
    const u = await register(own.url, email);
    const space = '00000000-0000-4000-8000-0000000000aa';
    let changes: unknown[] = [{ operationId: 'seed-s', id: space, entityType: 'space', operation: 'create', data: { name: 'Big' } }];
    for (let i = 0; i < 3000; i++) {
      changes.push({ operationId: `seed-${i}`, id: `00000000-0000-4000-a000-${String(i).padStart(12, '0')}`, entityType: 'item', operation: 'create', data: { spaceId: space, title: `Seeded ${i}`, order: i, isCompleted: false } });
      if (changes.length === 500 || i === 2999) {
        const res = await fetch(`${own.url}/api/sync`, { method: 'POST', headers: { Authorization: `Bearer ${u.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ deviceId: 'seeder', lastSyncTimestamp: null, changes, limit: 1 }) });
        assert.ok(res.ok, `seed: ${res.status}`);
        changes = [];
      }
    }
    // Every text the indicator shows, recorded in the page from its first paint.
    await ctx.addInitScript(() => {
      const seen: string[] = ((window as unknown as { seen: string[] }).seen = []);
      new MutationObserver(() => {
        const t = document.querySelector('[data-testid=sync-status]')?.textContent ?? '';
        if (t && seen[seen.length - 1] !== t) seen.push(t);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    const p = await signIn(ctx, own.url, email, 'signin');
    await poll(p, () => document.querySelector('[data-testid=item]')?.getAttribute('aria-setsize') === '3000', undefined, 30_000, '3000 items listed');
    await waitSynced(p);
    const seen = await p.evaluate(() => (window as unknown as { seen: string[] }).seen);
    const progress = seen.filter((t) => /^Syncing · [\d,]+ of [\d,]+ received$/.test(t));
    assert.ok(progress.length > 0, `progress shown: ${JSON.stringify(seen.slice(0, 12))}`);
    for (const t of progress) {
      const [applied, received] = t.match(/[\d,]+/g)!.map((x) => Number(x.replace(/,/g, '')));
      assert.ok(applied! <= received! && received! <= 3001, t);
    }
    assert.equal(seen[seen.length - 1], 'Synced');

    // The server goes away while the browser is online: a write waits, "server unreachable".
    await own.stop();
    stopped = true;
    await addItem(p, 'Made while the server is down');
    await poll(p, () => document.querySelector<HTMLElement>('[data-testid=sync-status]')?.dataset.state === 'retrying', undefined, 30_000, 'retrying');
    assert.match((await p.locator('[data-testid=sync-status]').textContent()) ?? '', /^1 pending · retrying at \d\d:\d\d:\d\d \(server unreachable\)$/);
  } finally {
    await ctx.close();
    if (!stopped) await own.stop();
  }
});

test('the database deleted under the open app: "N pending" stays true, the changes survive a reload offline and sync', { skip }, async () => {
  const ctx = await browser.newContext();
  try {
    const p = await signIn(ctx, server.url, `deleted-${Date.now()}@example.com`, 'signup');
    await waitControlled(p);
    await addSpace(p, 'Kept');
    await waitSynced(p);
    await ctx.setOffline(true);
    await addItem(p, 'Offline one');
    await addItem(p, 'Offline two');
    await waitPending(p, 2);
    // Another tool (or the user clearing site data) deletes the app's database while it is open.
    const outcome = await p.evaluate(async () => {
      const names = (await indexedDB.databases()).map((d) => d.name!).filter((n) => n.startsWith('tidesync-'));
      return Promise.all(names.map((n) => new Promise<string>((resolve) => {
        const r = indexedDB.deleteDatabase(n);
        r.onsuccess = () => resolve(`${n} deleted`);
        r.onerror = () => resolve(`${n} error`);
        r.onblocked = () => resolve(`${n} blocked`);
      })));
    });
    assert.ok(outcome.length > 0 && outcome.every((o) => o.endsWith('deleted')), JSON.stringify(outcome));
    // A write after it: the client re-creates the database (writing back what it holds in memory).
    await addItem(p, 'Offline three');
    await waitPending(p, 3);
    await p.reload();
    await p.locator('[data-testid=item]', { hasText: 'Offline three' }).waitFor({ timeout: 10_000 });
    assert.deepEqual((await titles(p)).sort(), ['Offline one', 'Offline three', 'Offline two']);
    await waitPending(p, 3);
    await ctx.setOffline(false);
    await waitSynced(p);
    assert.deepEqual((await serverState(server.url, await token(p))).items.map((i) => i.title).sort(), ['Offline one', 'Offline three', 'Offline two']);
  } finally {
    await ctx.close();
  }
});
