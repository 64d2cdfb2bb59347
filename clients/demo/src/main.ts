// Entry: sign in (or reuse the saved session, which works offline), then one
// client per user, each on its own IndexedDB database.

import { createClient, indexedDbStorage, type Client } from '@tidesync/client';
import { appView } from './app.js';
import { authView, loadSession, logout, saveSession, type Session } from './auth.js';
import { registerServiceWorker } from './pwa.js';

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
  show(appView(client, session.user, signOut, signInAgain));
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

/**
 * The session ran out (`status.state === 'needsSignIn'`): sign in again in a dialog over the app. The
 * open client keeps running with its outbox; the new token goes to it (and to every tab) with
 * `setToken`, and the changes made meanwhile are sent at once. Another account: that user's own client.
 */
let reauthOpen: HTMLDialogElement | null = null;
function signInAgain() {
  if (reauthOpen) return reauthOpen.focus();
  const s = loadSession();
  const pending = client?.status.pending ?? 0;
  const note = pending ? `Your session has ended. ${pending} unsynced change${pending === 1 ? '' : 's'} will stay on this device and sync after you sign in.` : 'Your session has ended. Sign in to sync again.';
  const dialog = document.createElement('dialog');
  dialog.className = 'reauth';
  dialog.setAttribute('aria-labelledby', 'auth-dialog-title');
  dialog.dataset.testid = 'reauth-dialog';
  const done = () => {
    dialog.close();
    dialog.remove();
    reauthOpen = null;
  };
  dialog.addEventListener('cancel', () => queueMicrotask(done));
  dialog.append(
    authView(
      (next) => {
        done();
        if (client && s && next.user.id === s.user.id) {
          saveSession(next);
          client.setToken(next.token);
        } else {
          void (async () => {
            await client?.close();
            client = null;
            await start(next);
          })();
        }
      },
      { email: s?.user.email, note, dialog: { onCancel: done } },
    ),
  );
  reauthOpen = dialog;
  document.body.append(dialog);
  dialog.showModal();
  dialog.querySelector<HTMLInputElement>('input[name=password]')?.focus();
}

registerServiceWorker();
const saved = loadSession();
if (saved) void start(saved);
else show(authView((s) => void start(s)));
