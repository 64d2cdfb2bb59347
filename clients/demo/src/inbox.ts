// The invitations you received: each names the space and who invites, with
// Accept, Decline and "Decline and block". Nothing of a space reaches this
// device before Accept. The space's name is the inviter's text, shown as
// text only (never a link). The list follows client.onInvitations (the
// server pokes this device when an invitation arrives).

import { SyncError, type Client, type Invitation } from '@tidesync/client';
import { clear, h } from './dom.js';

function message(e: unknown): string {
  if (e instanceof SyncError && (e.code === 'network' || e.code === 'timeout')) return 'You are offline: answering needs the network.';
  if (e instanceof SyncError && e.status === 404) return 'This invitation is no longer valid.';
  return e instanceof Error ? e.message : String(e);
}

export function inbox(client: Client, onAccepted: (spaceId: string) => void): { el: HTMLElement; dispose: () => void } {
  const list = h('ul', { class: 'invitations', 'data-testid': 'invitation-list' });
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'invitation-error' });
  const el = h('section', { class: 'inbox hidden', 'data-testid': 'invitations' }, h('h2', {}, 'Invitations'), list, error);
  let busy = false;

  async function answer(run: () => Promise<unknown>) {
    if (busy) return;
    busy = true;
    error.textContent = '';
    for (const b of list.querySelectorAll('button')) b.disabled = true;
    try {
      await run();
    } catch (e) {
      error.textContent = message(e);
    } finally {
      busy = false;
      for (const b of list.querySelectorAll('button')) b.disabled = false;
    }
  }

  const row = (inv: Invitation) =>
    h(
      'li',
      { class: 'invitation', 'data-testid': 'invitation', 'data-space-id': inv.spaceId },
      h('div', { class: 'invitation-what' },
        h('span', { class: 'invitation-space', 'data-testid': 'invitation-space' }, inv.spaceName || 'A space'),
        h('span', { class: 'muted small' }, `from ${inv.inviter.name} (${inv.inviter.email}), as ${inv.role}`)),
      h('div', { class: 'invitation-actions' },
        h('button', { class: 'primary', 'data-testid': 'invitation-accept', onclick: () => void answer(async () => {
          await client.acceptInvitation(inv.id);
          onAccepted(inv.spaceId);
        }) }, 'Accept'),
        h('button', { 'data-testid': 'invitation-decline', onclick: () => void answer(() => client.declineInvitation(inv.id)) }, 'Decline'),
        h('button', { class: 'ghost danger', 'data-testid': 'invitation-block', title: 'Decline, and never show invitations to this space again', onclick: () => void answer(() => client.declineInvitation(inv.id, { block: true })) }, 'Decline and block')),
    );

  const off = client.onInvitations((invitations) => {
    clear(list, invitations.map(row));
    el.classList.toggle('hidden', invitations.length === 0);
  });
  return { el, dispose: off };
}
