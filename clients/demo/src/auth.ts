// Sign up / sign in against the same origin, and the session kept in localStorage
// (a demo: a production app would weigh that against XSS exposure).

import { field, h } from './dom.js';

export interface Session {
  token: string;
  user: { id: string; email: string; name: string };
}

const KEY = 'tidesync.demo.session';

export function loadSession(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    return s && typeof s.token === 'string' && s.user?.id ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

async function call(path: string, body: unknown): Promise<Session> {
  const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json().catch(() => null)) as { success?: boolean; data?: Session; error?: { message?: string } } | null;
  if (!res.ok || !json?.success || !json.data) throw new Error(json?.error?.message ?? `HTTP ${res.status}`);
  return json.data;
}

export function logout(token: string): void {
  // Best effort: offline, the token simply expires.
  void fetch('/api/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(() => undefined);
}

/**
 * The sign-in / sign-up form. `dialog`: the form alone, sign-in only, for a dialog over the
 * running app (signing in again after the session ended), with a Cancel button.
 */
export function authView(onSession: (s: Session) => void, opts: { email?: string; note?: string; dialog?: { onCancel: () => void } } = {}): HTMLElement {
  let mode: 'signin' | 'signup' = 'signin';
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'auth-error' });
  const nameRow = h('label', { class: 'hidden' }, 'Name', h('input', { name: 'name', autocomplete: 'name', maxlength: 100 }));
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'auth-submit' }, 'Sign in');
  const tab = (m: typeof mode, label: string) =>
    h('button', { type: 'button', class: 'tab', role: 'tab', 'aria-selected': 'false', 'aria-controls': 'auth-form', 'data-testid': `auth-${m}`, onclick: () => setMode(m) }, label);
  const tabs = h('div', { class: 'tabs', role: 'tablist' }, tab('signin', 'Sign in'), tab('signup', 'Create account'));
  const setMode = (m: typeof mode) => {
    mode = m;
    nameRow.classList.toggle('hidden', m === 'signin');
    submit.textContent = m === 'signin' ? 'Sign in' : 'Create account';
    for (const b of tabs.children) {
      const on = b.getAttribute('data-testid') === `auth-${m}`;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', String(on));
    }
    error.textContent = '';
  };
  const form = h(
    'form',
    {
      class: 'auth-form',
      id: 'auth-form',
      role: opts.dialog ? null : 'tabpanel',
      'data-testid': 'auth-form',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        error.textContent = '';
        submit.setAttribute('disabled', '');
        try {
          const email = field(form, 'email');
          const password = (form.elements.namedItem('password') as HTMLInputElement).value;
          const s =
            mode === 'signin'
              ? await call('/api/auth/login', { email, password })
              : await call('/api/auth/register', { email, password, name: field(form, 'name') || email.split('@')[0] });
          onSession(s);
        } catch (err) {
          error.textContent = err instanceof Error ? err.message : String(err);
        } finally {
          submit.removeAttribute('disabled');
        }
      },
    },
    nameRow,
    h('label', {}, 'Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'email', value: opts.email })),
    h('label', {}, 'Password', h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'current-password' })),
    error,
    opts.dialog
      ? h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'ghost', 'data-testid': 'auth-cancel', onclick: opts.dialog.onCancel }, 'Cancel'), submit)
      : submit,
  );
  setMode('signin');
  if (opts.dialog)
    return h('div', { class: 'auth-card dialog-card' },
      h('h2', { id: 'auth-dialog-title' }, 'Sign in again'),
      opts.note ? h('p', { class: 'auth-note', 'data-testid': 'auth-note' }, opts.note) : null,
      form);
  return h(
    'main',
    { class: 'auth' },
    h('div', { class: 'auth-card' }, h('h1', { class: 'brand' }, h('span', { class: 'logo' }), 'Bucket list'), h('p', { class: 'muted' }, 'Works offline. Syncs when it can.'), opts.note ? h('p', { class: 'auth-note', role: 'status', 'data-testid': 'auth-note' }, opts.note) : null, tabs, form),
  );
}
