// The sync state in words, from useSyncStatus (re-rendered only when the
// status changes), a button to sign in again when the server no longer takes
// the session's token (the changes waiting stay on this device and sync
// after), and the changes the server refused, with its reasons.

import type { Client, SyncStatus } from '@tidesync/client';
import { useSyncStatus } from '@tidesync/client/react';

export function SyncStatusLine({ client, onSignIn }: { client: Client; onSignIn: () => void }) {
  const status = useSyncStatus(client);
  const { state, text } = describe(status);
  return (
    <div className="status-bar">
      <p className={`status ${state}`} role="status" data-state={state}>
        {text}
      </p>
      {state === 'signin' && (
        <button type="button" className="primary" onClick={onSignIn}>
          Sign in again
        </button>
      )}
      {status.rejected.length > 0 && (
        <details className="rejected">
          <summary>
            {status.rejected.length} {status.rejected.length === 1 ? 'change was' : 'changes were'} refused by the server
          </summary>
          <ul>
            {status.rejected.map((r) => (
              <li key={r.operationId}>
                {r.operation} {r.entityType}: {r.error.message}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

export function describe(s: SyncStatus): { state: string; text: string } {
  const n = s.pending;
  const waiting = n === 1 ? '1 change waiting' : `${n} changes waiting`;
  if (s.lastError?.code === 'unauthorized' || s.lastError?.status === 401) return { state: 'signin', text: `Sign in again to sync${n ? ` (${waiting} on this device)` : ''}` };
  if (!s.online) return { state: 'offline', text: n ? `Offline · ${waiting}` : 'Offline' };
  if (s.lastError) {
    const at = s.lastError.retryAt ? ` · retrying at ${new Date(s.lastError.retryAt).toLocaleTimeString()}` : '';
    return { state: 'error', text: `Sync problem: ${s.lastError.message}${at}${n ? ` · ${waiting}` : ''}` };
  }
  if (s.syncing) return { state: 'syncing', text: n ? `Syncing · ${waiting}` : 'Syncing…' };
  if (n) return { state: 'pending', text: waiting };
  if (s.lastSyncedAt !== null) return { state: 'synced', text: `All changes synced · ${new Date(s.lastSyncedAt).toLocaleTimeString()}` };
  return { state: 'idle', text: 'Not synced yet' };
}
