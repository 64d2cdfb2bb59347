// The service worker: the demo opens without a network. It precaches the app
// shell of its own version (index.html and the hashed assets, the list and the
// version written in by build.mjs) and answers from that cache: any page
// navigation gets the cached index.html, the shell's files come from the cache.
// The API (/api/**) and /health are never touched: data lives in IndexedDB and
// goes through the SDK. A new version installs next to the old one and waits
// until the page asks it to take over ("A new version is available — Reload").

declare const __SHELL__: string[];
declare const __VERSION__: string;

// The few service-worker types used (the demo's TypeScript project has the DOM
// library, not the WebWorker one).
interface ExtendableEvt extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvt extends ExtendableEvt {
  request: Request;
  respondWith(r: Response | Promise<Response>): void;
}
interface MessageEvt extends ExtendableEvt {
  data: unknown;
}
interface SwScope {
  location: Location;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  addEventListener(type: 'install' | 'activate', cb: (e: ExtendableEvt) => void): void;
  addEventListener(type: 'fetch', cb: (e: FetchEvt) => void): void;
  addEventListener(type: 'message', cb: (e: MessageEvt) => void): void;
}

const sw = self as unknown as SwScope;
const PREFIX = 'tidesync-demo-';
const CACHE = PREFIX + __VERSION__;
const SHELL = new Set(__SHELL__);

sw.addEventListener('install', (e) => {
  // `reload`: straight from the server, never from the HTTP cache.
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(__SHELL__.map((u) => new Request(u, { cache: 'reload' })))));
});

sw.addEventListener('activate', (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener('message', (e) => {
  if ((e.data as { type?: string } | null)?.type === 'skip-waiting') void sw.skipWaiting();
});

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin || url.pathname.startsWith('/api/') || url.pathname === '/health') return;
  const key = req.mode === 'navigate' ? '/' : SHELL.has(url.pathname) ? url.pathname : null;
  if (!key) return;
  e.respondWith(
    caches
      .open(CACHE)
      .then((c) => c.match(key))
      .then((hit) => hit ?? fetch(req)),
  );
});
