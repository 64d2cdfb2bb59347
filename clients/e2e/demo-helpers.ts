// Driving the demo app in the browser tests and the demo bench.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { BrowserContext, Page } from 'playwright-core';
import { poll } from './harness.js';

export const waitSynced = (p: Page, timeout = 20_000) =>
  poll(p, () => document.querySelector<HTMLElement>('[data-testid=sync-status]')?.dataset.state === 'synced', undefined, timeout, 'synced');

export const waitPending = (p: Page, n: number, timeout = 10_000) =>
  poll(p, (want) => document.querySelector<HTMLElement>('[data-testid=sync-status]')?.dataset.pending === String(want), n, timeout, `${n} pending`);

/** The visible rows' titles, in order. */
export const titles = (p: Page) => p.locator('[data-testid=item-title]').allTextContents();

/** Opens the demo in a new page of `ctx` and signs up or in. */
export async function signIn(ctx: BrowserContext, url: string, email: string, mode: 'signup' | 'signin', page?: Page): Promise<Page> {
  const p = page ?? (await ctx.newPage());
  p.on('pageerror', (e) => console.error('pageerror:', e.message));
  await p.goto(url);
  await p.click(`[data-testid=auth-${mode}]`);
  if (mode === 'signup') await p.fill('input[name=name]', 'Ada');
  await p.fill('input[name=email]', email);
  await p.fill('input[name=password]', 'password123');
  await p.click('[data-testid=auth-submit]');
  await p.waitForSelector('[data-testid=new-space]', { timeout: 15_000 });
  return p;
}

export async function addSpace(p: Page, name: string): Promise<void> {
  await p.fill('[data-testid=new-space] input', name);
  await p.press('[data-testid=new-space] input', 'Enter');
  await p.locator('[data-testid=space-title]', { hasText: name }).waitFor({ timeout: 5000 });
}

export async function addItem(p: Page, title: string, opts: { type?: string; ext?: string } = {}): Promise<void> {
  await p.fill('[data-testid=item-title-input]', title);
  if (opts.type) await p.selectOption('[data-testid=item-type]', opts.type);
  if (opts.ext) await p.fill('[data-testid=item-ext]', opts.ext);
  await p.press('[data-testid=item-title-input]', 'Enter');
  await p.locator('[data-testid=item]', { hasText: title }).first().waitFor({ timeout: 5000 });
}

/** Waits until the page is controlled by the demo's service worker (the shell is precached). */
export const waitControlled = (p: Page, timeout = 15_000) =>
  poll(p, () => !!navigator.serviceWorker?.controller, undefined, timeout, 'a controlling service worker');

// --- accessibility: axe-core (npm dev dependency), injected into the page ------------------

let axeSource: string | null = null;
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}
/** Runs axe-core on the page; returns the serious and critical violations, described. */
export async function axeSerious(p: Page): Promise<string[]> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, which the page's CSP does not restrict.
  if (!(await p.evaluate(() => 'axe' in window))) await p.evaluate(`${axeSource};0`);
  const violations = await p.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => `${JSON.stringify(n.target)} ${n.failureSummary ?? ''}`).join('; ')}`);
}
