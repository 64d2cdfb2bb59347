// Entry: sign in (or reuse the saved session, which works offline), then one
// client per user, each on its own IndexedDB database.

import { createClient, indexedDbStorage, type Client } from '@tidesync/client';
import { appView } from './app.js';
import { authView, loadSession, logout, saveSession, type Session } from './auth.js';

const root = document.getElementById('app')!;
let client: Client | null = null;
let view: (HTMLElement & { dispose?: () => void }) | null = null;

function show(el: HTMLElement) {
  view?.dispose?.();
  view = el;
  root.replaceChildren(el);
}

async function start(session: Session) {
  saveSession(session);
  client = await createClient({
    url: '',
    token: session.token,
    userId: session.user.id,
    storage: indexedDbStorage({ name: `tidesync-${session.user.id}` }),
  });
  // For the browser tests and the curious: the live client.
  (window as unknown as { tidesync?: Client }).tidesync = client;
  show(appView(client, session.user, signOut));
}

async function signOut() {
  const s = loadSession();
  if (client && client.status.pending > 0 && !confirm(`${client.status.pending} changes are not synced yet. They stay on this device until you sign in again. Sign out?`)) return;
  await client?.close();
  client = null;
  if (s) logout(s.token);
  saveSession(null);
  show(authView((s) => void start(s)));
}

const saved = loadSession();
if (saved) void start(saved);
else show(authView((s) => void start(s)));
