// The React side in real Chromium against the real server:
// - the React example app (clients/examples/react), built by its own
//   build.mjs: register, create a list, add, complete, delete, the sync status
//   line offline and back online, a second device signing in and editing; a
//   revoked token (Sign in again, then the change that waited syncs); a wrong
//   password;
// - the hooks themselves (@tidesync/client/react) in a probe page that counts
//   renders: useQuery re-renders on a local write and on a change pulled from
//   another device, only the changed rows re-render, a change elsewhere renders
//   nothing, a new filter re-subscribes, an unmounted probe stops rendering;
//   useSyncStatus follows offline, pending and back.
// The pages' own files are served to the browser by request routing on the
// server's origin (under /react-app/ and /react-hooks/); /api/** goes to the
// real server, same origin, as when the binary serves the app itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CLIENTS, DEMO_DIST, haveChromium, launch, poll, register, serverState, startServer, type Server } from './harness.js';
import type { Hooks } from './react-hooks-page.js';

const skip = haveChromium() ? false : 'no Chromium';
let server: Server;
let browser: Browser;
let tmp: string;
let appDir: string;
let hooksDir: string;

before(async () => {
  if (skip) return;
  tmp = mkdtempSync(join(tmpdir(), 'tidesync-react-'));
  appDir = join(tmp, 'app');
  const r = spawnSync(process.execPath, [join(CLIENTS, 'examples', 'react', 'build.mjs'), appDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `examples/react/build.mjs failed:\n${r.stdout}${r.stderr}`);
  hooksDir = join(tmp, 'hooks');
  await build({
    absWorkingDir: CLIENTS,
    entryPoints: [join(CLIENTS, 'e2e', 'react-hooks-page.ts')],
    outfile: join(hooksDir, 'app.js'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'warning',
  });
  writeFileSync(join(hooksDir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>hooks</title><div id="app"></div><script type="module" src="app.js"></script>');
  server = await startServer(DEMO_DIST);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
// The CSP the binary gives the demo: the example must run under it (no inline script or style).
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";

/** Serves `dir` at `<server>/<prefix>/` in this context (the page's own files only; everything else goes to the server). */
async function serveDir(ctx: BrowserContext, prefix: string, dir: string): Promise<void> {
  const origin = new URL(server.url).origin;
  await ctx.route(
    (u) => u.origin === origin && u.pathname.startsWith(`/${prefix}/`),
    async (route) => {
      const rel = decodeURIComponent(new URL(route.request().url()).pathname.slice(prefix.length + 2)) || 'index.html';
      const file = resolve(dir, rel);
      if (!file.startsWith(dir + sep) || !existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
      await route.fulfill({ path: file, headers: { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Security-Policy': CSP, 'Cache-Control': 'no-store' } });
    },
  );
}

/**
 * Page errors and console errors (React's warnings included), to assert there were none. Chromium's own
 * notes of failed requests (offline on purpose) are not the page's errors.
 */
function watch(page: Page, name: string): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`${name} pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource: net::ERR_INTERNET_DISCONNECTED/.test(m.text())) errors.push(`${name} console: ${m.text()}`);
  });
  return errors;
}

// ---------------------------------------------------------------- the app

const status = (p: Page) => p.getByRole('status');
const statusIs = (p: Page, state: string, timeout = 20_000) =>
  poll(p, (s) => document.querySelector<HTMLElement>('[role=status]')?.dataset.state === s, state, timeout, `status ${state}`);
/** The titles shown, in order, each with its checkbox state and pending flag. */
const rows = (p: Page) =>
  p.evaluate(() =>
    [...document.querySelectorAll('li.item')].map((li) => ({
      title: li.querySelector('.title')?.textContent ?? '',
      done: li.querySelector<HTMLInputElement>('input[type=checkbox]')!.checked,
      pending: li.getAttribute('data-pending') === 'true',
    })),
  );
const shows = (p: Page, want: { title: string; done: boolean }[], timeout = 20_000) =>
  poll(
    p,
    (w) => {
      const got = [...document.querySelectorAll('li.item')].map((li) => ({
        title: li.querySelector('.title')?.textContent ?? '',
        done: li.querySelector<HTMLInputElement>('input[type=checkbox]')!.checked,
      }));
      return JSON.stringify(got) === JSON.stringify(w);
    },
    want,
    timeout,
    `rows ${JSON.stringify(want)}`,
  );
const allSynced = (p: Page) =>
  poll(
    p,
    () => document.querySelector<HTMLElement>('[role=status]')?.dataset.state === 'synced' && !document.querySelector('li.item[data-pending=true]'),
    undefined,
    20_000,
    'every row synced',
  );
async function addItem(p: Page, title: string) {
  await p.getByLabel('New item', { exact: true }).fill(title);
  await p.getByRole('button', { name: 'Add', exact: true }).click();
  await p.getByText(title, { exact: true }).waitFor({ timeout: 5000 });
}

test('the React example: register, a list, add, complete, delete, offline and back, a second device', { skip }, async () => {
  const email = `react-${Date.now()}@example.com`;
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  await serveDir(ctxA, 'react-app', appDir);
  await serveDir(ctxB, 'react-app', appDir);
  try {
    const a = await ctxA.newPage();
    const errors = watch(a, 'A');
    await a.goto(`${server.url}/react-app/`);

    // Register through the app's own form.
    await a.getByRole('button', { name: 'Create account' }).click();
    await a.getByLabel('Name').fill('Ada');
    await a.getByLabel('Email').fill(email);
    await a.getByLabel('Password').fill('password123');
    await a.getByRole('form', { name: 'Create account' }).getByRole('button', { name: 'Create account' }).click();

    // A new user has no list yet: the app offers one once the first sync said so.
    await a.getByRole('button', { name: 'Create list' }).waitFor({ timeout: 15_000 });
    assert.equal(await a.evaluate(() => document.activeElement?.tagName), 'H1', 'focus is on the heading after sign-in');
    await statusIs(a, 'synced');
    await a.getByLabel('List name').fill('Before 40');
    await a.getByRole('button', { name: 'Create list' }).click();
    await a.getByRole('heading', { name: 'Before 40' }).waitFor({ timeout: 5000 });

    await addItem(a, 'Watch Inception');
    await addItem(a, 'Climb Kilimanjaro');
    await addItem(a, 'Learn the cello');
    await shows(a, [
      { title: 'Watch Inception', done: false },
      { title: 'Climb Kilimanjaro', done: false },
      { title: 'Learn the cello', done: false },
    ]);
    await a.getByRole('checkbox', { name: 'Done: Watch Inception' }).check();
    await a.getByRole('button', { name: 'Delete Learn the cello' }).click();
    await shows(a, [
      { title: 'Watch Inception', done: true },
      { title: 'Climb Kilimanjaro', done: false },
    ]);
    assert.equal(await a.getByText('1 of 2 to do').count(), 1);
    await allSynced(a);
    assert.match((await status(a).textContent()) ?? '', /^All changes synced/);

    // The server has exactly that.
    const token = await a.evaluate(() => (JSON.parse(localStorage.getItem('tidesync.react-example.session')!) as { token: string }).token);
    let st = await serverState(server.url, token);
    assert.deepEqual(st.spaces.map((s) => s.name), ['Before 40']);
    assert.deepEqual(
      st.items.map((i) => [i.title, i.isCompleted]).sort(),
      [['Climb Kilimanjaro', null], ['Watch Inception', true]].sort(),
    );

    // Offline (the network really off): writes land at once, the status line says they wait.
    await ctxA.setOffline(true);
    await statusIs(a, 'offline');
    await addItem(a, 'See the northern lights');
    await a.getByRole('checkbox', { name: 'Done: Climb Kilimanjaro' }).check();
    await poll(a, () => document.querySelector('[role=status]')?.textContent === 'Offline · 2 changes waiting', undefined, 10_000, '2 changes waiting');
    assert.deepEqual(
      (await rows(a)).map((r) => [r.title, r.done, r.pending]),
      [
        ['Watch Inception', true, false],
        ['Climb Kilimanjaro', true, true],
        ['See the northern lights', false, true],
      ],
    );
    // Back online: they sync on their own.
    await ctxA.setOffline(false);
    await allSynced(a);
    st = await serverState(server.url, token);
    assert.deepEqual(
      st.items.map((i) => [i.title, i.isCompleted]).sort(),
      [['Climb Kilimanjaro', true], ['See the northern lights', null], ['Watch Inception', true]].sort(),
    );

    // Device B signs in: the list arrives; B's edit reaches A (pulled after the stream's poke).
    const b = await ctxB.newPage();
    errors.push(...watch(b, 'B'));
    await b.goto(`${server.url}/react-app/`);
    await b.getByLabel('Email').fill(email);
    await b.getByLabel('Password').fill('password123');
    await b.getByRole('form', { name: 'Sign in' }).getByRole('button', { name: 'Sign in' }).click();
    await b.getByRole('heading', { name: 'Before 40' }).waitFor({ timeout: 15_000 });
    await shows(b, [
      { title: 'Watch Inception', done: true },
      { title: 'Climb Kilimanjaro', done: true },
      { title: 'See the northern lights', done: false },
    ]);
    await b.getByRole('checkbox', { name: 'Done: See the northern lights' }).check();
    await addItem(b, 'Run a marathon');
    await shows(a, [
      { title: 'Watch Inception', done: true },
      { title: 'Climb Kilimanjaro', done: true },
      { title: 'See the northern lights', done: true },
      { title: 'Run a marathon', done: false },
    ]);
    await a.getByRole('button', { name: 'Delete Watch Inception' }).click();
    await shows(b, [
      { title: 'Climb Kilimanjaro', done: true },
      { title: 'See the northern lights', done: true },
      { title: 'Run a marathon', done: false },
    ]);
    assert.equal(await b.getByText('1 of 3 to do').count(), 1);

    // A reload opens signed in, from the local store.
    await allSynced(a);
    await a.reload();
    await shows(a, [
      { title: 'Climb Kilimanjaro', done: true },
      { title: 'See the northern lights', done: true },
      { title: 'Run a marathon', done: false },
    ]);

    // Signing out shows the form again and forgets the session.
    await a.getByRole('button', { name: 'Sign out' }).click();
    await a.getByRole('form', { name: 'Sign in' }).waitFor({ timeout: 5000 });
    assert.equal(await a.evaluate(() => localStorage.getItem('tidesync.react-example.session')), null);

    assert.deepEqual(errors, []);
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('the React example: a wrong password is said, and nothing else happens', { skip }, async () => {
  const email = `react-wrong-${Date.now()}@example.com`;
  await register(server.url, email);
  const ctx = await browser.newContext();
  await serveDir(ctx, 'react-app', appDir);
  try {
    const p = await ctx.newPage();
    await p.goto(`${server.url}/react-app/`);
    await p.getByLabel('Email').fill(email);
    await p.getByLabel('Password').fill('not-the-password');
    await p.getByRole('form', { name: 'Sign in' }).getByRole('button', { name: 'Sign in' }).click();
    await poll(p, () => (document.querySelector('[role=alert]')?.textContent ?? '') !== '', undefined, 10_000, 'an error shown');
    assert.equal(await p.getByRole('heading', { name: 'Bucket list' }).count(), 1, 'still on the sign-in form');
    assert.equal(await p.evaluate(() => localStorage.getItem('tidesync.react-example.session')), null);
  } finally {
    await ctx.close();
  }
});

test('the React example: a token the server no longer takes; Sign in again, and the change waiting syncs', { skip }, async () => {
  const email = `react-revoked-${Date.now()}@example.com`;
  const ctx = await browser.newContext();
  await serveDir(ctx, 'react-app', appDir);
  try {
    const p = await ctx.newPage();
    const errors = watch(p, 'page');
    await p.goto(`${server.url}/react-app/`);
    await p.getByRole('button', { name: 'Create account' }).click();
    await p.getByLabel('Email').fill(email);
    await p.getByLabel('Password').fill('password123');
    await p.getByRole('form', { name: 'Create account' }).getByRole('button', { name: 'Create account' }).click();
    await p.getByRole('button', { name: 'Create list' }).click({ timeout: 15_000 });
    await addItem(p, 'Swim with whale sharks');
    await allSynced(p);

    // The session's token is revoked on the server (as a sign-out elsewhere would).
    const old = await p.evaluate(() => (JSON.parse(localStorage.getItem('tidesync.react-example.session')!) as { token: string }).token);
    const res = await fetch(`${server.url}/api/auth/logout`, { method: 'POST', headers: { Authorization: `Bearer ${old}` } });
    assert.equal(res.status, 200);

    // The next write is stored and waits; the status line says why and offers to sign in.
    await addItem(p, 'Sleep under the stars');
    await statusIs(p, 'signin');
    assert.equal(await status(p).textContent(), 'Sign in again to sync (1 change waiting on this device)');
    await p.getByRole('button', { name: 'Sign in again' }).click();
    await p.getByLabel('Email').fill(email);
    await p.getByLabel('Password').fill('password123');
    await p.getByRole('form', { name: 'Sign in' }).getByRole('button', { name: 'Sign in' }).click();

    // Same user, same database: the change that waited syncs with the new token.
    await shows(p, [
      { title: 'Swim with whale sharks', done: false },
      { title: 'Sleep under the stars', done: false },
    ]);
    await allSynced(p);
    const token = await p.evaluate(() => (JSON.parse(localStorage.getItem('tidesync.react-example.session')!) as { token: string }).token);
    assert.notEqual(token, old);
    assert.deepEqual((await serverState(server.url, token)).items.map((i) => i.title).sort(), ['Sleep under the stars', 'Swim with whale sharks']);
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), [], 'no page error (the refused requests aside)');
  } finally {
    await ctx.close();
  }
});

// ---------------------------------------------------------------- the hooks

type W = { hooks: Hooks };
const li = (p: Page) =>
  p.evaluate(() => [...document.querySelectorAll('#app li')].map((e) => ({ id: e.getAttribute('data-id')!, title: e.textContent!, done: e.getAttribute('data-done') === 'true', pending: e.getAttribute('data-pending') === 'true' })));
const titles = (p: Page, want: string[], timeout = 15_000) =>
  poll(p, (w) => JSON.stringify([...document.querySelectorAll('#app li')].map((e) => e.textContent)) === JSON.stringify(w), want, timeout, `titles ${JSON.stringify(want)}`);
const settled = (p: Page, timeout = 20_000) =>
  poll(
    p,
    () => {
      const s = document.getElementById('status');
      return s?.dataset.online === 'true' && s.dataset.pending === '0' && !document.querySelector('#app li[data-pending=true]');
    },
    undefined,
    timeout,
    'status online, 0 pending, no pending row',
  );
const counts = (p: Page) => p.evaluate(() => JSON.parse(JSON.stringify((window as unknown as W).hooks.renders)) as Hooks['renders']);
/** Lets React commit anything still scheduled (before asserting that something did not render). */
const frames = (p: Page) => p.evaluate(() => new Promise((r) => setTimeout(r, 150)));

test('useQuery and useSyncStatus: re-render on local writes and pulled changes, only what changed', { skip }, async () => {
  const u = await register(server.url, `hooks-${Date.now()}@example.com`);
  const ctx = await browser.newContext();
  await serveDir(ctx, 'react-hooks', hooksDir);
  try {
    const p = await ctx.newPage();
    const errors = watch(p, 'hooks');
    await p.goto(`${server.url}/react-hooks/`);
    await poll(p, () => !!(window as unknown as Partial<W>).hooks, undefined, 10_000, 'the hooks page');
    const ids = await p.evaluate(
      async ([token, userId]) => {
        const H = (window as unknown as W).hooks;
        const a = await H.sdk.createClient({ url: '', token, userId, storage: H.sdk.indexedDbStorage({ name: 'hooks-a' }) });
        // Device B: another client of the same user (its own store and device id); its changes reach A only through the server.
        const b = await H.sdk.createClient({ url: '', token, userId, storage: H.sdk.memoryStorage(), live: false });
        H.clients.a = a;
        H.clients.b = b;
        const s1 = await a.create('space', { name: 'One' });
        const s2 = await a.create('space', { name: 'Two' });
        const first = await a.create('item', { spaceId: s1, title: 'first' });
        const second = await a.create('item', { spaceId: s1, title: 'second' });
        const other = await a.create('item', { spaceId: s2, title: 'elsewhere' });
        H.mount(a, s1);
        return { s1, s2, first, second, other };
      },
      [u.token, u.user.id] as const,
    );
    // First render: the rows already stored, then synced.
    await titles(p, ['first', 'second']);
    await settled(p);

    // A local write: the list re-renders with the new row; the unchanged rows do not re-render.
    let before = await counts(p);
    const third = await p.evaluate((s1) => (window as unknown as W).hooks.clients.a!.create('item', { spaceId: s1, title: 'third' }), ids.s1);
    await titles(p, ['first', 'second', 'third']);
    await settled(p);
    let now = await counts(p);
    assert.ok(now.list > before.list, 'the list re-rendered');
    assert.equal(now.rows[ids.first], before.rows[ids.first], 'an unchanged row did not re-render');
    assert.equal(now.rows[ids.second], before.rows[ids.second], 'an unchanged row did not re-render');

    // A local update of one row: only that row re-renders.
    before = now;
    await p.evaluate((id) => (window as unknown as W).hooks.clients.a!.update('item', id, { isCompleted: true }), ids.second);
    await poll(p, (id) => document.querySelector(`#app li[data-id="${id}"]`)?.getAttribute('data-done') === 'true', ids.second, 5000, 'second done');
    await settled(p);
    now = await counts(p);
    assert.ok(now.rows[ids.second]! > before.rows[ids.second]!, 'the changed row re-rendered');
    assert.equal(now.rows[ids.first], before.rows[ids.first]);
    assert.equal(now.rows[third], before.rows[third]);

    // Changes from device B, pulled by A after the stream's poke: an edit, a new row, a delete.
    before = now;
    const fromB = await p.evaluate(
      async ([first, third, s1]) => {
        const b = (window as unknown as W).hooks.clients.b!;
        await b.sync(); // B's first pull: it has A's rows now
        await b.update('item', first, { title: 'first, renamed on B' });
        await b.delete('item', third);
        const id = await b.create('item', { spaceId: s1, title: 'from B' });
        await b.sync();
        return id;
      },
      [ids.first, third, ids.s1] as const,
    );
    await titles(p, ['first, renamed on B', 'second', 'from B']);
    await settled(p);
    now = await counts(p);
    assert.ok(now.rows[ids.first]! > before.rows[ids.first]!, 'the renamed row re-rendered');
    assert.equal(now.rows[ids.second], before.rows[ids.second], 'a row B did not touch did not re-render');
    assert.equal(now.rows[fromB], 1, "B's new row rendered once");

    // A change in another space (pulled into A's store) renders nothing here.
    before = now;
    await p.evaluate(async (other) => {
      const b = (window as unknown as W).hooks.clients.b!;
      await b.update('item', other, { title: 'elsewhere, renamed' });
      await b.sync();
    }, ids.other);
    await poll(
      p,
      async (other) => (await (window as unknown as W).hooks.clients.a!.get('item', other))?.title === 'elsewhere, renamed',
      ids.other,
      15_000,
      'A pulled the change in the other space',
    );
    await frames(p);
    now = await counts(p);
    assert.equal(now.list, before.list, 'the list of space One did not re-render');

    // useSyncStatus: offline (the network really off), a write pending, back online, synced.
    before = now;
    await ctx.setOffline(true);
    await poll(p, () => document.getElementById('status')?.dataset.online === 'false', undefined, 10_000, 'status offline');
    const offline = await p.evaluate((s1) => (window as unknown as W).hooks.clients.a!.create('item', { spaceId: s1, title: 'written offline' }), ids.s1);
    await poll(p, () => document.getElementById('status')?.dataset.pending === '1', undefined, 5000, 'status 1 pending');
    assert.deepEqual((await li(p)).at(-1), { id: offline, title: 'written offline', done: false, pending: true });
    await ctx.setOffline(false);
    await settled(p);
    now = await counts(p);
    assert.ok(now.status >= before.status + 3, `the status line re-rendered for offline, pending and synced (${now.status - before.status} renders)`);
    assert.ok((await serverState(server.url, u.token)).items.some((i) => i.id === offline && i.title === 'written offline'));

    // A new filter re-subscribes: the other space's rows.
    await p.evaluate((s2) => (window as unknown as W).hooks.setSpace(s2), ids.s2);
    await titles(p, ['elsewhere, renamed']);

    // Unmounted: no more renders, whatever changes.
    await p.evaluate(() => (window as unknown as W).hooks.unmount());
    before = await counts(p);
    await p.evaluate(async (s2) => {
      const a = (window as unknown as W).hooks.clients.a!;
      await a.create('item', { spaceId: s2, title: 'after unmount' });
      await a.sync();
    }, ids.s2);
    await frames(p);
    assert.deepEqual(await counts(p), before, 'nothing rendered after unmount');

    assert.deepEqual(errors, [], 'no page error and no React warning');
  } finally {
    await ctx.close();
  }
});
