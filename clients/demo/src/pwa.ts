// The installable offline app: registers the service worker (sw.js, scope /)
// and shows "A new version is available — Reload" when a new version has
// installed and waits; Reload lets it take over, then reloads the page.

import { h } from './dom.js';

export function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator)) return;
  const sw = navigator.serviceWorker;
  let banner: HTMLElement | null = null;
  let reloading = false;
  const offer = (waiting: ServiceWorker) => {
    if (banner || !sw.controller) return; // the first install needs no reload
    const reload = h('button', { class: 'primary', 'data-testid': 'update-reload', onclick: () => {
      reload.setAttribute('disabled', '');
      reloading = true;
      waiting.postMessage({ type: 'skip-waiting' });
    } }, 'Reload');
    banner = h('div', { class: 'update-banner', role: 'status', 'data-testid': 'update-banner' }, h('span', {}, 'A new version is available'), reload);
    document.body.append(banner);
  };
  sw.addEventListener('controllerchange', () => {
    if (reloading) location.reload();
  });
  void sw
    .register('/sw.js', { scope: '/' })
    .then((reg) => {
      if (reg.waiting) offer(reg.waiting);
      reg.addEventListener('updatefound', () => {
        const next = reg.installing;
        next?.addEventListener('statechange', () => {
          if (next.state === 'installed') offer(next);
        });
      });
      // A tab left open finds new versions too (the browser checks on navigations).
      setInterval(() => void reg.update().catch(() => undefined), 30 * 60_000);
    })
    .catch((e: unknown) => console.warn('service worker not registered:', e));
}
