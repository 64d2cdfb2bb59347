import { useState, type FormEvent } from 'react';
import { register, signIn, type Session } from './session.js';

export function SignIn({ onSession }: { onSession: (s: Session) => void }) {
  const [mode, setMode] = useState<'signin' | 'register'>('signin');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const get = (k: string) => String(f.get(k) ?? '').trim();
    setError('');
    setBusy(true);
    try {
      const password = String(f.get('password') ?? '');
      onSession(mode === 'signin' ? await signIn(get('email'), password) : await register(get('name'), get('email'), password));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  }

  return (
    <main className="auth">
      <h1>Bucket list</h1>
      <p className="muted">React + tidesync: works offline, syncs when it can.</p>
      <div className="tabs">
        <button type="button" aria-pressed={mode === 'signin'} onClick={() => setMode('signin')}>
          Sign in
        </button>
        <button type="button" aria-pressed={mode === 'register'} onClick={() => setMode('register')}>
          Create account
        </button>
      </div>
      <form onSubmit={submit} aria-label={mode === 'signin' ? 'Sign in' : 'Create account'}>
        {mode === 'register' && (
          <label>
            Name <input name="name" autoComplete="name" maxLength={100} />
          </label>
        )}
        <label>
          Email <input name="email" type="email" required autoComplete="email" />
        </label>
        <label>
          Password <input name="password" type="password" required minLength={8} autoComplete={mode === 'signin' ? 'current-password' : 'new-password'} />
        </label>
        <p className="error" role="alert">
          {error}
        </p>
        <button type="submit" className="primary" disabled={busy}>
          {mode === 'signin' ? 'Sign in' : 'Create account'}
        </button>
      </form>
    </main>
  );
}
