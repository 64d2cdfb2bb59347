// The Members panel of a space: who is in it with which role; the owner
// invites people by email (they join when they accept), sees and withdraws the
// pending invitations, changes roles and removes members; anyone else may
// leave. The members calls need the network (they are not queued like record
// writes), so the last list seen is kept in localStorage and shown offline.

import { SyncError, type Client, type Member, type Role, type SentInvitation, type Space } from '@tidesync/client';
import { clear, field, h } from './dom.js';

export interface Me {
  id: string;
  name: string;
  email: string;
}

export interface MembersPanel {
  el: HTMLElement;
  /** The user's role here: known from the server (or the last list seen), else a guess from who created the space; null = unknown. */
  role(): Role | null;
  /** Asks the server again (after a sync round: a role may have changed). */
  refresh(): void;
  /** The space record changed (e.g. it reached the server). */
  update(space: Space): void;
}

const ROLE_TEXT: Record<Role, string> = { owner: 'Owner', editor: 'Editor', viewer: 'Viewer' };

function message(e: unknown): string {
  if (e instanceof SyncError && (e.code === 'network' || e.code === 'timeout')) return 'You are offline: sharing needs the network.';
  if (e instanceof SyncError && e.code === 'rate_limited') return 'Too many invitations for now: try again later.';
  return e instanceof Error ? e.message : String(e);
}

export function membersPanel(client: Client, initial: Space, me: Me, onRole: (role: Role | null) => void): MembersPanel {
  let space = initial;
  const key = `tidesync.demo.members.${me.id}.${space.id}`;
  let members: Member[] | null = null;
  try {
    members = JSON.parse(localStorage.getItem(key) ?? 'null') as Member[] | null;
  } catch {
    members = null;
  }
  let note = '';
  let sentTo = ''; // the last invitation's email, until the next action
  let busy = false;
  let pending: SentInvitation[] = [];
  let asked = 0; // answers to older requests are ignored

  const list = h('ul', { class: 'member-list', 'data-testid': 'member-list' });
  const info = h('p', { class: 'muted small', 'data-testid': 'members-note' });
  const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'members-error' });
  const roleSel = h('select', { name: 'role', 'aria-label': 'Role', 'data-testid': 'share-role' }, h('option', { value: 'editor' }, 'Editor'), h('option', { value: 'viewer' }, 'Viewer'));
  const shareForm = h(
    'form',
    {
      class: 'share-form',
      'data-testid': 'share-form',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const email = field(shareForm, 'email');
        if (!email) return;
        void act(async () => {
          const sent = await client.invite(space.id, email, roleSel.value as 'editor' | 'viewer');
          shareForm.reset();
          // Said the same whether or not the email has an account: the server does not tell.
          sentTo = sent.email;
          refreshPending();
        });
      },
    },
    h('input', { name: 'email', type: 'email', required: true, placeholder: 'Email', 'aria-label': 'Email to share with', 'data-testid': 'share-email', autocomplete: 'off' }),
    roleSel,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'share-submit' }, 'Invite'),
  );
  const invited = h('ul', { class: 'member-list invited', 'data-testid': 'pending-invitations' });
  const leave = h('button', { class: 'ghost danger', 'data-testid': 'leave-space', onclick: () => {
    if (confirm(`Leave “${space.name}”? It disappears from your devices.`)) void act(() => client.leave(space.id));
  } }, 'Leave space');
  const el = h('aside', { class: 'panel members', 'data-testid': 'members' }, h('h3', {}, 'Members'), list, info, shareForm, invited, leave, error);

  const role = (): Role | null => {
    const mine = members?.find((m) => m.userId === me.id)?.role;
    if (mine) return mine;
    // Not fetched yet (offline since sign-in): the creator of a space is its owner until it is handed over.
    return !space.userId || space.userId === me.id ? 'owner' : null;
  };

  /** Runs a members call; its answer (the members after it) is shown at once, then the list is asked again. */
  async function act(call: () => Promise<unknown>) {
    if (busy) return;
    busy = true;
    error.textContent = '';
    sentTo = '';
    render();
    try {
      const got = await call();
      if (Array.isArray(got)) set(got as Member[]);
    } catch (e) {
      error.textContent = message(e);
    } finally {
      busy = false;
      render();
    }
  }

  function set(m: Member[]) {
    const before = role();
    members = m;
    note = '';
    localStorage.setItem(key, JSON.stringify(m));
    render();
    if (role() !== before) onRole(role());
  }

  function render() {
    const r = role();
    const owner = r === 'owner';
    const unsynced = space._pending && !members;
    const row = (m: Member) => {
      const you = m.userId === me.id;
      const who = h('div', { class: 'member-who' }, h('span', { class: 'member-name' }, m.name || m.email, you ? ' (you)' : ''), h('span', { class: 'muted small member-email', title: m.email }, m.email));
      const control =
        owner && m.role !== 'owner'
          ? [
              h('select', { 'aria-label': `Role of ${m.email}`, 'data-testid': 'member-role', disabled: busy, onchange: (e: Event) => {
                const to = (e.target as HTMLSelectElement).value as 'editor' | 'viewer';
                void act(() => client.setRole(space.id, m.userId, to));
              } }, (['editor', 'viewer'] as const).map((x) => h('option', { value: x, selected: m.role === x }, ROLE_TEXT[x]))),
              h('button', { class: 'icon danger', title: 'Remove', 'aria-label': `Remove ${m.email}`, 'data-testid': 'member-remove', disabled: busy, onclick: () => {
                if (confirm(`Remove ${m.email} from “${space.name}”?`)) void act(() => client.removeMember(space.id, m.userId));
              } }, '✕'),
            ]
          : h('span', { class: `role-badge ${m.role}` }, ROLE_TEXT[m.role]);
      return h('li', { class: 'member', 'data-testid': 'member', 'data-email': m.email, 'data-role': m.role }, who, h('div', { class: 'member-actions' }, control));
    };
    clear(
      list,
      members
        ? members.map(row)
        : h('li', { class: 'member' }, h('div', { class: 'member-who' }, h('span', { class: 'member-name' }, `${me.name || me.email} (you)`)), r ? h('span', { class: `role-badge ${r}` }, ROLE_TEXT[r]) : null),
    );
    info.textContent = unsynced ? 'Share this space once it has synced.' : sentTo ? `Invitation sent to ${sentTo}.` : note;
    shareForm.classList.toggle('hidden', !owner);
    clear(
      invited,
      owner
        ? pending.map((i) =>
            h('li', { class: 'member', 'data-testid': 'pending-invitation', 'data-email': i.email },
              h('div', { class: 'member-who' }, h('span', { class: 'member-name' }, i.email), h('span', { class: 'muted small' }, `invited as ${ROLE_TEXT[i.role].toLowerCase()}`)),
              h('div', { class: 'member-actions' }, h('button', { class: 'icon danger', title: 'Withdraw', 'aria-label': `Withdraw the invitation to ${i.email}`, 'data-testid': 'invitation-revoke', disabled: busy, onclick: () =>
                void act(async () => {
                  await client.revokeInvitation(space.id, i.id);
                  refreshPending();
                }) }, '✕'))),
          )
        : [],
    );
    for (const c of shareForm.elements) (c as HTMLInputElement).disabled = busy || unsynced;
    leave.classList.toggle('hidden', owner || !members);
    leave.disabled = busy;
  }

  /** The owner's pending invitations (others may not list them). */
  const refreshPending = () => {
    if (role() !== 'owner' || space._pending) return;
    client.spaceInvitations(space.id).then(
      (list) => {
        pending = list;
        render();
      },
      () => undefined, // offline, or no longer the owner: the list stays as it was
    );
  };

  const refresh = () => {
    if (space._pending && !members) return render(); // the server does not know the space yet
    refreshPending();
    const n = ++asked;
    client.members(space.id).then(
      (m) => n === asked && set(m),
      (e: unknown) => {
        if (n !== asked) return;
        // Offline: the last list seen stays. 404: removed meanwhile (the sync drops the space) or not synced yet.
        note = members ? '' : e instanceof SyncError && e.status === 404 ? '' : 'Members show when you are online.';
        render();
      },
    );
  };

  render();
  refresh();
  return {
    el,
    role,
    refresh,
    update(s: Space) {
      const was = space._pending;
      space = s;
      if (was && !s._pending) refresh();
      else render();
    },
  };
}
