// Shared spaces in the demo, two users in two browser contexts against the
// real server: Alice invites Bob from the Members panel; Bob's page shows the
// invitation (the stream poke) and nothing of the space until he accepts it;
// then the space arrives and he edits it; Alice makes him a viewer while he
// is offline with an edit pending, which the server refuses (a dead letter,
// rolled back to the server's state); Alice removes him and the space leaves
// his page. Every wait is bounded.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DEMO_DIST, haveChromium, launch, poll, register, serverState, setApiBlocked, startServer, type Server } from './harness.js';

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

type W = { tidesync: import('../js/src/index.js').Client };

const waitSynced = (p: Page, timeout = 20_000) =>
  poll(p, () => document.querySelector<HTMLElement>('[data-testid=sync-status]')?.dataset.state === 'synced', undefined, timeout, 'synced');

async function open(ctx: BrowserContext, email: string, mode: 'signup' | 'signin', name: string): Promise<Page> {
  const p = await ctx.newPage();
  p.on('pageerror', (e) => console.error(`pageerror (${name}):`, e.message));
  await p.goto(server.url);
  await p.click(`[data-testid=auth-${mode}]`);
  if (mode === 'signup') await p.fill('input[name=name]', name);
  await p.fill('input[name=email]', email);
  await p.fill('input[name=password]', 'password123');
  await p.click('[data-testid=auth-submit]');
  await p.waitForSelector('[data-testid=new-space]', { timeout: 15_000 });
  return p;
}

const member = (p: Page, email: string) => p.locator(`[data-testid=member][data-email="${email}"]`);
const roleOf = (p: Page, email: string, role: string, timeout = 10_000) =>
  poll(p, ([e, r]) => document.querySelector(`[data-testid=member][data-email="${e}"]`)?.getAttribute('data-role') === r, [email, role] as const, timeout, `${email} is ${role}`);
const myRole = (p: Page, role: string, timeout = 15_000) =>
  poll(p, (r) => document.querySelector<HTMLElement>('[data-testid=my-role]')?.dataset.role === r, role, timeout, `my role is ${role}`);
const checked = (p: Page, title: string, want: boolean, timeout = 15_000) =>
  poll(
    p,
    ([t, w]) => {
      const row = [...document.querySelectorAll('[data-testid=item]')].find((e) => e.querySelector('[data-testid=item-title]')?.textContent === t);
      const box = row?.querySelector<HTMLInputElement>('[data-testid=item-complete]');
      return !!box && box.checked === w && row!.getAttribute('data-pending') === 'false';
    },
    [title, want] as const,
    timeout,
    `${title} synced and ${want ? 'checked' : 'unchecked'}`,
  );

test('invite by email, accepted, edit as editor, refused as viewer, removed', { skip }, async () => {
  const stamp = Date.now();
  const aliceEmail = `alice-${stamp}@example.com`;
  const bobEmail = `bob-${stamp}@example.com`;
  await register(server.url, bobEmail); // Bob has an account of his own
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  try {
    // Alice: a space with a category and an item.
    const a = await open(ctxA, aliceEmail, 'signup', 'Alice');
    await a.fill('[data-testid=new-space] input', 'Movie night');
    await a.press('[data-testid=new-space] input', 'Enter');
    await a.fill('[data-testid=new-category] input', 'Sci-fi');
    await a.press('[data-testid=new-category] input', 'Enter');
    await a.fill('[data-testid=item-title-input]', 'Watch Arrival');
    await a.selectOption('[data-testid=item-type]', 'movie');
    await a.fill('[data-testid=item-ext]', '329865');
    await a.press('[data-testid=item-title-input]', 'Enter');
    await a.locator('[data-testid=item]', { hasText: 'Watch Arrival' }).waitFor({ timeout: 5000 });
    await waitSynced(a);
    await myRole(a, 'owner');
    assert.equal(await a.locator('[data-testid=member]').count(), 1, 'an unshared space lists its owner alone');

    // Bob, signed in on his own browser, has nothing yet.
    const b = await open(ctxB, bobEmail, 'signin', 'Bob');
    await waitSynced(b);
    assert.equal(await b.locator('[data-testid=space]').count(), 0);

    // An email without an account is invited like any other: the panel cannot tell.
    const sent = (to: string) => poll(a, (t) => document.querySelector('[data-testid=members-note]')?.textContent === `Invitation sent to ${t}.`, to, 10_000, `sent to ${to}`);
    const nobody = `nobody-${stamp}@example.com`;
    await a.fill('[data-testid=share-email]', nobody);
    await a.click('[data-testid=share-submit]');
    await sent(nobody);

    // Alice invites Bob as an editor: an invitation, not a member yet.
    await a.fill('[data-testid=share-email]', bobEmail);
    await a.selectOption('[data-testid=share-role]', 'editor');
    await a.click('[data-testid=share-submit]');
    await sent(bobEmail);
    assert.equal(await a.locator('[data-testid=members-error]').textContent(), '');
    assert.equal(await a.locator('[data-testid=member]').count(), 1, 'Bob is not a member before he accepts');
    await a.locator(`[data-testid=pending-invitation][data-email="${bobEmail}"]`).waitFor({ timeout: 10_000 });

    // Bob's page shows the invitation (the server pokes his stream), and nothing of the space.
    const invitation = b.locator('[data-testid=invitation]');
    await invitation.waitFor({ timeout: 15_000 });
    assert.equal(await invitation.locator('[data-testid=invitation-space]').textContent(), 'Movie night');
    assert.ok(((await invitation.textContent()) ?? '').includes(`from Alice (${aliceEmail}), as editor`), 'who invites, and the role');
    assert.equal(await b.locator('[data-testid=space]').count(), 0, 'nothing of the space before Accept');
    const beforeAccept = await b.evaluate(async () => (await (window as unknown as W).tidesync.list('item')).length);
    assert.equal(beforeAccept, 0);

    // He accepts: the invitation goes, the space arrives whole and is shown.
    await invitation.locator('[data-testid=invitation-accept]').click();
    await poll(b, () => !document.querySelector('[data-testid=invitation]'), undefined, 10_000, 'the invitation answered');
    const itemOnB = b.locator('[data-testid=item]', { hasText: 'Watch Arrival' });
    await itemOnB.waitFor({ timeout: 15_000 });
    await roleOf(a, bobEmail, 'editor', 15_000);
    await poll(a, (e) => !document.querySelector(`[data-testid=pending-invitation][data-email="${e}"]`), bobEmail, 10_000, 'no invitation pending for Bob');
    assert.equal(await b.locator('[data-testid=space]', { hasText: 'Movie night' }).count(), 1);
    assert.equal(await b.locator('[data-testid=category]', { hasText: 'Sci-fi' }).count(), 1);
    assert.match((await itemOnB.textContent()) ?? '', /TMDB id 329865/);
    await myRole(b, 'editor');
    assert.equal(await b.locator('[data-testid=share-form]').isHidden(), true, 'only the owner shares');
    assert.equal(await b.locator('[data-testid=leave-space]').isVisible(), true, 'a member may leave');
    assert.equal(await b.locator('[data-testid=delete-space]').isHidden(), true, 'only the owner deletes a shared space');

    // Bob edits the item; Alice sees it.
    await itemOnB.locator('[data-testid=item-complete]').check();
    await checked(b, 'Watch Arrival', true);
    await checked(a, 'Watch Arrival', true);

    // Bob goes offline and unchecks it; meanwhile Alice makes him a viewer.
    await setApiBlocked(ctxB, true);
    await itemOnB.locator('[data-testid=item-complete]').uncheck();
    await poll(b, () => document.querySelector('[data-testid=item]')?.getAttribute('data-pending') === 'true', undefined, 5000, 'the edit pending on B');
    await a.selectOption(`[data-testid=member][data-email="${bobEmail}"] [data-testid=member-role]`, 'viewer');
    await roleOf(a, bobEmail, 'viewer');

    // Bob is back: his edit is refused (forbidden), dropped and rolled back to the server's state.
    await setApiBlocked(ctxB, false);
    await b.evaluate(() => window.dispatchEvent(new Event('online')));
    await b.locator('[data-testid=rejected]').first().waitFor({ timeout: 15_000 }); // the toast (shown for 8 s)
    await checked(b, 'Watch Arrival', true);
    const dead = await b.evaluate(() => (window as unknown as W).tidesync.status.rejected.map((r) => [r.operation, r.entityType, r.error.code]));
    assert.deepEqual(dead, [['update', 'item', 'forbidden']]);
    assert.equal(await b.evaluate(() => (window as unknown as W).tidesync.status.pending), 0, 'nothing is left pending');
    const token = await a.evaluate(() => (JSON.parse(localStorage.getItem('tidesync.demo.session')!) as { token: string }).token);
    assert.deepEqual((await serverState(server.url, token)).items.map((i) => [i.title, i.isCompleted]), [['Watch Arrival', true]]);
    // …and his page now shows him as a viewer, with the editing controls off.
    await myRole(b, 'viewer');
    await poll(b, () => document.querySelector<HTMLInputElement>('[data-testid=item-complete]')?.disabled === true, undefined, 5000, 'the checkbox disabled');
    assert.equal(await b.locator('[data-testid=item-title-input]').isDisabled(), true);
    assert.equal(await b.locator('[data-testid=item-delete]').isDisabled(), true);
    assert.equal(await b.locator('[data-testid=read-only]').isVisible(), true);

    // Alice removes Bob: the space leaves Bob's page (and his local database).
    a.once('dialog', (d) => void d.accept());
    await member(a, bobEmail).locator('[data-testid=member-remove]').click();
    await poll(a, () => document.querySelectorAll('[data-testid=member]').length === 1, undefined, 10_000, 'Alice alone again');
    await poll(b, () => document.querySelectorAll('[data-testid=space]').length === 0 && !document.querySelector('[data-testid=item]'), undefined, 15_000, 'the space gone from B');
    const left = await b.evaluate(async () => {
      const c = (window as unknown as W).tidesync;
      return { spaces: (await c.list('space')).length, categories: (await c.list('category')).length, items: (await c.list('item')).length, pending: c.status.pending };
    });
    assert.deepEqual(left, { spaces: 0, categories: 0, items: 0, pending: 0 });
    // Alice still has it all.
    assert.equal(await a.locator('[data-testid=item]', { hasText: 'Watch Arrival' }).count(), 1);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});
