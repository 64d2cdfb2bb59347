// The demo app with 10,000 items in one space, in Chromium against the real
// server (random port, fresh database, the demo from clients/demo/dist). Run
// by hand, not part of the suite:
//
//   node clients/demo/build.mjs
//   TIDESYNC_BIN=target/debug/tidesync CHROMIUM=/usr/bin/chromium node clients/e2e/demo-bench.mjs
//
// (DEMO_DIR=<a built demo folder> measures another build, DEMO_BENCH_RUNS=N
// changes the 30 runs per action.)
//
// Measures: sign-in (submit) to the first rows painted (and to the whole
// initial sync listed, aria-setsize 10000); the DOM's element
// count; and for add / edit (the title, in its row: Edit, type, Enter) / complete (checkbox) of
// an item, the time from the action to the row painted (the first animation
// frame after the row shows the change), p50/p95 over 30 of each.
import { execFileSync } from 'node:child_process';
import type { Page } from 'playwright-core';
import { pct, seedItems } from './bench-data.js';
import { BIN, CHROMIUM, DEMO_DIST, haveChromium, launch, register, startServer } from './harness.js';

const N = 10_000;
/** Runs of each action (DEMO_BENCH_RUNS); DEMO_DIR measures another build of the demo (e.g. an older one). */
const RUNS = Number(process.env.DEMO_BENCH_RUNS ?? 30);
const DIR = process.env.DEMO_DIR ?? DEMO_DIST;

const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms  p95 ${pct(xs, 95).toFixed(1)} ms  max ${Math.max(...xs).toFixed(1)} ms  (n=${xs.length})`;

/** In the page: runs `act`, then waits (frame by frame) until `done`; the time to the frame after it holds. */
async function timed(p: Page, kind: 'add' | 'edit' | 'complete', i: number): Promise<number> {
  return p.evaluate(
    async ([kind, i]) => {
      const frame = () => new Promise<number>((r) => requestAnimationFrame(() => r(performance.now())));
      const rows = () => [...document.querySelectorAll<HTMLElement>('[data-testid=item]')];
      let done: () => boolean;
      const t0 = performance.now();
      if (kind === 'add') {
        const title = `Bench add ${i} ${Math.random()}`;
        const input = document.querySelector<HTMLInputElement>('[data-testid=item-title-input]')!;
        input.value = title;
        document.querySelector<HTMLFormElement>('[data-testid=new-item]')!.requestSubmit();
        done = () => rows().some((r) => r.querySelector('[data-testid=item-title]')?.textContent === title);
      } else if (kind === 'edit') {
        const row = rows()[i % Math.max(1, rows().length - 4)]!;
        row.querySelector<HTMLButtonElement>('[data-testid=item-edit]')!.click();
        const title = `Edited ${i} ${Math.random()}`;
        // The title in its row (this build), or in the editor panel (an older build).
        const inRow = row.querySelector<HTMLInputElement>('[data-testid=item-title-edit]');
        const input = inRow ?? document.querySelector<HTMLInputElement>('[data-testid=edit-title]')!;
        input.value = title;
        if (inRow) inRow.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
        else input.dispatchEvent(new Event('change'));
        const id = row.dataset.id;
        done = () => document.querySelector(`[data-testid=item][data-id="${id}"] [data-testid=item-title]`)?.textContent === title;
      } else {
        const row = rows()[i % Math.max(1, rows().length - 4)]!;
        const id = row.dataset.id;
        const was = row.classList.contains('done');
        row.querySelector<HTMLInputElement>('[data-testid=item-complete]')!.click();
        done = () => document.querySelector(`[data-testid=item][data-id="${id}"]`)?.classList.contains('done') === !was;
      }
      for (;;) {
        const t = await frame();
        if (done()) return t - t0;
        if (t - t0 > 30_000) throw new Error(`${kind} ${i}: not painted within 30 s`);
      }
    },
    [kind, i] as const,
  );
}

export async function main(): Promise<void> {
  if (!haveChromium()) throw new Error(`no Chromium at ${CHROMIUM}`);
  console.log(`server: ${BIN}\nbrowser: ${execFileSync(CHROMIUM, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()}`);
  const server = await startServer(DIR);
  console.log(`demo: ${DIR}`);
  const browser = await launch();
  try {
    const email = `bench-${Date.now()}@example.com`;
    const u = await register(server.url, email);
    await seedItems(server.url, u.token, N);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const p = await ctx.newPage();
    p.on('pageerror', (e) => console.error('pageerror:', e.message));
    await p.goto(server.url);
    await p.fill('input[name=email]', email);
    await p.fill('input[name=password]', 'password123');
    // Sign-in to the first rows, timed in the page from the submit.
    await p.evaluate(() => {
      const w = window as unknown as { firstRows: Promise<number>; allRows: Promise<number> };
      let t0 = 0;
      document.addEventListener('submit', () => (t0 = performance.now()), true);
      const when = (ok: () => boolean) =>
        new Promise<number>((resolve) => {
          const check = () => (t0 && ok() ? resolve(performance.now() - t0) : requestAnimationFrame(check));
          requestAnimationFrame(check);
        });
      w.firstRows = when(() => !!document.querySelector('[data-testid=item]'));
      // aria-setsize: the windowed list; a count of rows: a build that renders them all.
      w.allRows = when(() => document.querySelector('[data-testid=item]')?.getAttribute('aria-setsize') === '10000' || document.querySelectorAll('[data-testid=item]').length >= 10000);
    });
    await p.click('[data-testid=auth-submit]');
    const firstRows = await p.evaluate(() => (window as unknown as { firstRows: Promise<number> }).firstRows);
    const allRows = await p.evaluate(() => (window as unknown as { allRows: Promise<number> }).allRows);
    const setsize = (await p.locator('[data-testid=item]').first().getAttribute('aria-setsize')) ?? String(await p.locator('[data-testid=item]').count());
    const nodes = await p.evaluate(() => document.getElementsByTagName('*').length);
    console.log(`\n10,000 items in one space (list shows ${setsize}):`);
    console.log(`  sign-in (submit) to the first rows painted: ${firstRows.toFixed(0)} ms; to all 10,000 listed: ${allRows.toFixed(0)} ms`);
    console.log(`  DOM elements: ${nodes} (rows in the DOM: ${await p.locator('[data-testid=item]').count()})`);
    const canEdit = (await p.locator('[data-testid=item-edit]').count()) > 0;
    for (const kind of ['add', 'edit', 'complete'] as const) {
      if (kind === 'edit' && !canEdit) {
        console.log('  edit     → (this build of the demo cannot edit an item)');
        continue;
      }
      const xs: number[] = [];
      for (let i = 0; i < RUNS; i++) xs.push(await timed(p, kind, i));
      console.log(`  ${kind.padEnd(8)} → row painted: ${fmt(xs)}`);
    }
    console.log(`  DOM elements after: ${await p.evaluate(() => document.getElementsByTagName('*').length)}`);
    await ctx.close();
  } finally {
    await browser.close();
    await server.stop();
  }
}
