// Signed out: the sign-in form. Signed in: one client per user (its own
// IndexedDB database), created once and closed when the user signs out.

import { useEffect, useState } from 'react';
import { createClient, indexedDbStorage, type Client } from '@tidesync/client';
import { BucketList } from './BucketList.js';
import { loadSession, saveSession, signOutOnServer, type Session } from './session.js';
import { SignIn } from './SignIn.js';

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  if (!session)
    return (
      <SignIn
        onSession={(s) => {
          saveSession(s);
          setSession(s);
        }}
      />
    );
  return (
    <SignedIn
      key={session.user.id}
      session={session}
      onSignOut={() => {
        signOutOnServer(session.token);
        saveSession(null);
        setSession(null);
      }}
    />
  );
}

function SignedIn({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const client = useClient(session);
  if (!client) return <p className="loading">Opening your list…</p>;
  return <BucketList client={client} user={session.user} onSignOut={onSignOut} />;
}

/** The session's client, or null while it opens. Works offline: the data is read from IndexedDB. */
function useClient(session: Session): Client | null {
  const [client, setClient] = useState<Client | null>(null);
  useEffect(() => {
    let live = true;
    let opened: Client | null = null;
    void createClient({
      url: '', // the page's own origin
      token: session.token,
      userId: session.user.id,
      storage: indexedDbStorage({ name: `tidesync-react-${session.user.id}` }),
    }).then((c) => {
      opened = c;
      if (live) setClient(c);
      else void c.close();
    });
    return () => {
      live = false;
      setClient(null);
      void opened?.close();
    };
  }, [session.token, session.user.id]);
  return client;
}
