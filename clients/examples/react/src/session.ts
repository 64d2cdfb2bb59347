// Sign in / register against the tidesync server on the page's own origin,
// and the session kept in localStorage so the app opens signed in (and
// offline) next time. An example: a production app would weigh localStorage
// against its XSS exposure.

export interface Session {
  token: string;
  user: { id: string; email: string; name: string };
}

const KEY = 'tidesync.react-example.session';

export function loadSession(): Session | null {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    return s && typeof s.token === 'string' && typeof s.user?.id === 'string' ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

async function post(path: string, body: unknown): Promise<Session> {
  const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json().catch(() => null)) as { success?: boolean; data?: Session; error?: { message?: string } } | null;
  if (!res.ok || !json?.success || !json.data) throw new Error(json?.error?.message ?? `HTTP ${res.status}`);
  return json.data;
}

export const signIn = (email: string, password: string) => post('/api/auth/login', { email, password });

export const register = (name: string, email: string, password: string) =>
  post('/api/auth/register', { name: name || email.split('@')[0], email, password });

/** Best effort: offline, the token simply expires. */
export function signOutOnServer(token: string): void {
  void fetch('/api/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).catch(() => undefined);
}
