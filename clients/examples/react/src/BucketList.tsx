// The signed-in app: one list (a tidesync space) and its items. Every read is
// a hook over the local store (useQuery), every write goes to the local store
// first (the SDK syncs it in the background), so nothing here waits for the
// network.

import { memo, startTransition, useEffect, useOptimistic, useRef, useState, type FormEvent } from 'react';
import type { Client, Item } from '@tidesync/client';
import { useQuery, useSyncStatus } from '@tidesync/client/react';
import { SyncStatusLine } from './SyncStatusLine.js';

interface Props {
  client: Client;
  user: { name: string; email: string };
  onSignOut: () => void;
}

export function BucketList({ client, user, onSignOut }: Props) {
  const spaces = useQuery(client, 'space');
  const status = useSyncStatus(client);
  const [chosen, setChosen] = useState<string | null>(null);
  const space = spaces.find((s) => s.id === chosen) ?? spaces[0];
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);

  const signOut = () => {
    const n = client.status.pending;
    if (n > 0 && !confirm(`${n} ${n === 1 ? 'change is' : 'changes are'} not synced yet. They stay on this device until you sign in again. Sign out?`)) return;
    onSignOut();
  };

  // Before the first sync the user's lists may be on the server still: offer
  // a new one only once that is known (or when the server cannot be reached).
  const mayCreate = status.lastSyncedAt !== null || !status.online || status.lastError !== null;
  return (
    <div className="app">
      <header className="top">
        <h1 ref={heading} tabIndex={-1}>
          {space?.name ?? 'Bucket list'}
        </h1>
        <span className="who">
          {user.name} <button type="button" onClick={signOut}>Sign out</button>
        </span>
      </header>
      {/* Signing in again keeps this user's database, and with it the changes waiting. */}
      <SyncStatusLine client={client} onSignIn={onSignOut} />
      <main>
        {spaces.length > 1 && space && (
          <label className="pick">
            List{' '}
            <select value={space.id} onChange={(e) => setChosen(e.target.value)}>
              {spaces.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>
          </label>
        )}
        {space ? <Items client={client} spaceId={space.id} /> : mayCreate ? <NewList client={client} onCreated={setChosen} /> : <p className="muted">Looking for your lists…</p>}
      </main>
    </div>
  );
}

function NewList({ client, onCreated }: { client: Client; onCreated: (id: string) => void }) {
  const [name, setName] = useState('My bucket list');
  const [error, setError] = useState('');
  async function create(e: FormEvent) {
    e.preventDefault();
    if (!name.trim()) return;
    try {
      onCreated(await client.create('space', { name: name.trim() }));
    } catch (err) {
      setError(`Not saved: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return (
    <form className="add" onSubmit={create} aria-label="Create a list">
      <input aria-label="List name" value={name} onChange={(e) => setName(e.target.value)} maxLength={200} required />
      <button type="submit" className="primary">
        Create list
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function Items({ client, spaceId }: { client: Client; spaceId: string }) {
  const items = useQuery(client, 'item', { spaceId });
  const [title, setTitle] = useState('');
  const [error, setError] = useState('');

  async function add(e: FormEvent) {
    e.preventDefault();
    const t = title.trim();
    if (!t) return;
    try {
      await client.create('item', { spaceId, title: t });
      setTitle(''); // cleared only once the item is stored: a failed write keeps what was typed
      setError('');
    } catch (err) {
      setError(`Not saved: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const todo = items.filter((i) => !i.isCompleted).length;
  return (
    <section aria-label="Items">
      <form className="add" onSubmit={add} aria-label="Add an item">
        <input aria-label="New item" placeholder="Something to do one day…" value={title} onChange={(e) => setTitle(e.target.value)} maxLength={500} />
        <button type="submit" className="primary">
          Add
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p className="muted count">{items.length ? `${todo} of ${items.length} to do` : 'Nothing yet: add the first thing above.'}</p>
      <ul className="items">
        {items.map((i) => (
          <Row key={i.id} client={client} item={i} onError={setError} />
        ))}
      </ul>
    </section>
  );
}

/**
 * Memoised: useQuery keeps an unchanged row the same object, so only changed rows re-render. The
 * checkbox shows the new state at once (useOptimistic) for the few milliseconds the local write takes,
 * then the stored row's.
 */
const Row = memo(function Row({ client, item, onError }: { client: Client; item: Item; onError: (m: string) => void }) {
  const [done, setDone] = useOptimistic(!!item.isCompleted);
  const fail = (err: unknown) => onError(`Not saved: ${err instanceof Error ? err.message : String(err)}`);
  const toggle = () =>
    startTransition(async () => {
      setDone(!done);
      await client.update('item', item.id, { isCompleted: !done, completedAt: done ? null : new Date().toISOString() }).catch(fail);
    });
  return (
    <li className={done ? 'item done' : 'item'} data-pending={item._pending}>
      <input type="checkbox" checked={done} onChange={toggle} aria-label={`Done: ${item.title}`} />
      <span className="title">{item.title}</span>
      {item._pending && (
        <span className="badge" title="Saved on this device, not synced yet">
          pending
        </span>
      )}
      <button type="button" className="ghost" aria-label={`Delete ${item.title}`} onClick={() => client.delete('item', item.id).catch(fail)}>
        ✕
      </button>
    </li>
  );
});
