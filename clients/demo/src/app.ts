// The signed-in app: spaces (sidebar), a space's categories and items and its
// members (main), the sync indicator (top bar). Every list is a
// client.subscribe(); forms are never re-rendered, so typing is never
// interrupted by a sync. A viewer's editing controls are disabled (the server
// would refuse the writes).

import type { Category, Client, Item, Role, Space, SyncStatus } from '@tidesync/client';
import { clear, field, h } from './dom.js';
import { inbox } from './inbox.js';
import { membersPanel, type Me, type MembersPanel } from './members.js';

const KINDS = {
  movie: { label: 'Movie', idField: 'movieId', idLabel: 'TMDB id' },
  book: { label: 'Book', idField: 'bookId', idLabel: 'Open Library id' },
  place: { label: 'Place', idField: 'placeId', idLabel: 'Place id' },
} as const;
type Kind = keyof typeof KINDS;
const ROLE_LABEL: Record<Role, string> = { owner: 'Owner', editor: 'Editor', viewer: 'Viewer · read only' };

export function statusText(s: SyncStatus): { state: string; text: string } {
  if (s.lastError?.code === 'unauthorized') return { state: 'error', text: 'Sign in again to sync' };
  if (!s.online) return { state: 'offline', text: s.pending ? `Offline · ${s.pending} pending` : 'Offline' };
  if (s.pending) return { state: 'pending', text: s.syncing ? `Syncing ${s.pending}…` : `${s.pending} pending` };
  return { state: 'synced', text: 'Synced' };
}

export function appView(client: Client, user: Me, onSignOut: () => void): HTMLElement {
  let spaceId: string | null = localStorage.getItem('tidesync.demo.space');
  let categoryId: string | null = null; // null = all items of the space
  const unsubs: (() => void)[] = [];
  let panel: MembersPanel | null = null;
  // After every sync round (a poke may have been a membership change), ask for the members again.
  let lastSynced = client.status.lastSyncedAt;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  unsubs.push(
    client.onStatus((s) => {
      if (s.lastSyncedAt === lastSynced) return;
      lastSynced = s.lastSyncedAt;
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => panel?.refresh(), 150);
    }),
  );

  // --- top bar ----------------------------------------------------------------
  const indicator = h('span', { class: 'sync', 'data-testid': 'sync-status', role: 'status', 'aria-live': 'polite' });
  const showStatus = (s: SyncStatus) => {
    const { state, text } = statusText(s);
    indicator.dataset.state = state;
    indicator.dataset.pending = String(s.pending);
    indicator.title = s.lastSyncedAt ? `Last synced ${new Date(s.lastSyncedAt).toLocaleTimeString()}` : 'Not synced yet';
    clear(indicator, h('span', { class: 'dot' }), text);
  };
  showStatus(client.status);
  unsubs.push(client.onStatus(showStatus));
  const toasts = h('div', { class: 'toasts', 'data-testid': 'toasts' });
  unsubs.push(
    client.onRejected((ops) => {
      for (const op of ops) {
        const t = h('div', { class: 'toast', 'data-testid': 'rejected' }, `Not saved: ${op.operation} ${op.entityType} — ${op.error.message}`);
        toasts.append(t);
        setTimeout(() => t.remove(), 8000);
      }
    }),
  );
  const top = h(
    'header',
    { class: 'topbar' },
    h('div', { class: 'brand' }, h('span', { class: 'logo' }), 'Bucket list'),
    indicator,
    h('div', { class: 'who' }, h('span', { class: 'muted' }, user.name || user.email), h('button', { class: 'ghost', 'data-testid': 'sign-out', onclick: onSignOut }, 'Sign out')),
  );

  // --- sidebar: spaces ------------------------------------------------------------
  const spaceList = h('ul', { class: 'spaces', 'data-testid': 'space-list' });
  const spaceForm = h(
    'form',
    {
      class: 'inline-form',
      'data-testid': 'new-space',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const name = field(spaceForm, 'name');
        if (!name) return;
        spaceForm.reset();
        const id = await client.create('space', { name, order: Date.now() });
        select(id);
      },
    },
    h('input', { name: 'name', placeholder: 'New space', maxlength: 200, 'aria-label': 'New space name' }),
    h('button', { type: 'submit' }, 'Add'),
  );
  // An accepted invitation's space is shown as soon as it arrives (the sync round that follows).
  let arriving: string | null = null;
  const invitations = inbox(client, (id) => {
    arriving = id;
    renderSpaces();
  });
  unsubs.push(invitations.dispose);
  const side = h('aside', { class: 'sidebar' }, invitations.el, h('h2', {}, 'Spaces'), spaceList, spaceForm);
  let spaces: Space[] = [];
  const renderSpaces = () => {
    if (arriving && spaces.some((s) => s.id === arriving)) {
      spaceId = arriving;
      arriving = null;
      localStorage.setItem('tidesync.demo.space', spaceId);
    }
    if (spaceId && !spaces.some((s) => s.id === spaceId)) spaceId = null;
    if (!spaceId && spaces[0]) spaceId = spaces[0].id;
    clear(
      spaceList,
      spaces.map((s) =>
        h('li', {}, h('button', { class: `space${s.id === spaceId ? ' active' : ''}`, 'data-testid': 'space', 'data-id': s.id, onclick: () => select(s.id) }, s.name,
          s.userId && s.userId !== user.id ? h('span', { class: 'shared-tag', title: 'Shared with you' }, 'shared') : null,
          s._pending ? h('span', { class: 'pending-dot', title: 'Not synced yet' }) : null)),
      ),
    );
    renderMain();
  };

  // --- main: the selected space ------------------------------------------------------
  const main = h('section', { class: 'content' });
  let subMain: (() => void)[] = [];
  let mainFor: string | null | undefined;
  const select = (id: string) => {
    spaceId = id;
    categoryId = null;
    localStorage.setItem('tidesync.demo.space', id);
    renderSpaces();
  };

  function renderMain() {
    const space = spaces.find((s) => s.id === spaceId);
    if (mainFor === (space?.id ?? null) && main.firstChild) {
      const title = main.querySelector('[data-testid=space-title]');
      if (space && title && title.textContent !== space.name) title.textContent = space.name;
      if (space) panel?.update(space);
      return;
    }
    for (const u of subMain) u();
    subMain = [];
    panel = null;
    mainFor = space?.id ?? null;
    if (!space) {
      main.classList.remove('read-only');
      clear(main, h('div', { class: 'empty' }, h('h1', {}, 'Start a list'), h('p', { class: 'muted' }, 'Create a space on the left — “Personal”, “Travel”, “Work”.')));
      return;
    }
    // The user's role in this space, from the Members panel (null = not known yet: editing stays on).
    let role: Role | null = null;
    const canEdit = () => role !== 'viewer';
    const cats = h('div', { class: 'categories', role: 'tablist', 'data-testid': 'category-list' });
    const items = h('ul', { class: 'items', 'data-testid': 'item-list' });
    let categories: Category[] = [];
    let allItems: Item[] = [];
    const renderCats = () => {
      if (categoryId && !categories.some((c) => c.id === categoryId)) categoryId = null;
      const tab = (id: string | null, label: string) =>
        h('button', { class: `chip${categoryId === id ? ' active' : ''}`, 'data-testid': 'category', 'data-id': id ?? '', onclick: () => ((categoryId = id), renderCats(), renderItems()) }, label);
      clear(cats, tab(null, 'All'), categories.map((c) => tab(c.id, c.name)));
    };
    const shown = () => (categoryId ? allItems.filter((i) => i.categoryId === categoryId) : allItems);
    const renderItems = () => {
      const list = shown();
      clear(items, list.length ? list.map((it, n) => itemRow(it, n, list)) : h('li', { class: 'empty-items muted' }, 'Nothing here yet.'));
    };
    const itemRow = (it: Item, n: number, list: Item[]) => {
      const kind = KINDS[it.type as Kind];
      const extId = kind ? (it[kind.idField] as string | null) : null;
      return h(
        'li',
        { class: `item${it.isCompleted ? ' done' : ''}`, 'data-testid': 'item', 'data-id': it.id, 'data-pending': String(it._pending) },
        h('input', { type: 'checkbox', checked: !!it.isCompleted, disabled: !canEdit(), 'data-testid': 'item-complete', 'aria-label': 'Done', onchange: (e: Event) => {
          const done = (e.target as HTMLInputElement).checked;
          void client.update('item', it.id, { isCompleted: done, completedAt: done ? new Date().toISOString() : null });
        } }),
        h('div', { class: 'item-body' },
          h('div', { class: 'item-title', 'data-testid': 'item-title' }, it.title),
          h('div', { class: 'item-meta' },
            kind ? h('span', { class: `badge ${it.type}` }, kind.label) : null,
            extId ? h('span', { class: 'ext', title: `${kind!.idLabel}: only the id is stored` }, `${kind!.idLabel} ${extId}`) : null,
            it.notes ? h('span', { class: 'notes' }, it.notes) : null,
            it._pending ? h('span', { class: 'pending-dot', 'data-testid': 'item-pending', title: 'Not synced yet' }) : null)),
        h('div', { class: 'item-actions' },
          h('button', { class: 'icon', title: 'Move up', 'aria-label': 'Move up', 'data-testid': 'item-up', disabled: !canEdit() || n === 0, onclick: () => move(list, n, -1) }, '↑'),
          h('button', { class: 'icon', title: 'Move down', 'aria-label': 'Move down', 'data-testid': 'item-down', disabled: !canEdit() || n === list.length - 1, onclick: () => move(list, n, 1) }, '↓'),
          h('button', { class: 'icon danger', title: 'Delete', 'aria-label': 'Delete', 'data-testid': 'item-delete', disabled: !canEdit(), onclick: () => void client.delete('item', it.id) }, '✕')),
      );
    };
    const move = async (list: Item[], n: number, by: number) => {
      // Renumber the visible order and swap; update() sends only the items whose order changed.
      const ids = list.map((i) => i.id);
      [ids[n], ids[n + by]] = [ids[n + by]!, ids[n]!];
      await Promise.all(ids.map((id, k) => client.update('item', id, { order: k })));
    };
    subMain.push(client.subscribe('category', { spaceId: space.id }, (rows) => ((categories = rows), renderCats(), renderItems())));
    subMain.push(client.subscribe('item', { spaceId: space.id }, (rows) => ((allItems = rows), renderItems())));

    const catForm = h('form', { class: 'inline-form', 'data-testid': 'new-category', onsubmit: async (e: Event) => {
      e.preventDefault();
      const name = field(catForm, 'name');
      if (!name) return;
      catForm.reset();
      categoryId = await client.create('category', { spaceId: space.id, name, order: categories.length });
      renderCats();
      renderItems();
    } }, h('input', { name: 'name', placeholder: 'New category', maxlength: 200, 'aria-label': 'New category name' }), h('button', { type: 'submit' }, 'Add'));

    const typeSel = h('select', { name: 'type', 'aria-label': 'Type', 'data-testid': 'item-type', onchange: () => {
      const k = KINDS[typeSel.value as Kind];
      const ext = itemForm.elements.namedItem('ext') as HTMLInputElement;
      ext.placeholder = k ? k.idLabel : 'External id';
      ext.disabled = !k;
    } }, h('option', { value: '' }, 'Goal'), Object.entries(KINDS).map(([k, v]) => h('option', { value: k }, v.label)));
    const itemForm = h('form', { class: 'item-form', 'data-testid': 'new-item', onsubmit: async (e: Event) => {
      e.preventDefault();
      const title = field(itemForm, 'title');
      if (!title) return;
      const type = field(itemForm, 'type') as Kind | '';
      const data: Partial<Item> & { title: string } = { title, spaceId: space.id, isCompleted: false, order: allItems.length ? Math.max(...allItems.map((i) => i.order ?? 0)) + 1 : 0 };
      if (categoryId) data.categoryId = categoryId;
      if (type) {
        data.type = type;
        const ext = field(itemForm, 'ext');
        if (ext) (data as Record<string, unknown>)[KINDS[type].idField] = ext;
      }
      const notes = field(itemForm, 'notes');
      if (notes) data.notes = notes;
      itemForm.reset();
      typeSel.dispatchEvent(new Event('change'));
      await client.create('item', data);
    } },
      h('input', { name: 'title', placeholder: 'Add to the list…', maxlength: 500, required: true, 'aria-label': 'Title', 'data-testid': 'item-title-input' }),
      typeSel,
      h('input', { name: 'ext', placeholder: 'External id', maxlength: 128, disabled: true, 'aria-label': 'External id', 'data-testid': 'item-ext' }),
      h('input', { name: 'notes', placeholder: 'Your notes', maxlength: 5000, 'aria-label': 'Notes' }),
      h('button', { type: 'submit', class: 'primary' }, 'Add'));

    const roleBadge = h('span', { class: 'role-badge', 'data-testid': 'my-role' });
    const deleteBtn = h('button', { class: 'ghost danger', 'data-testid': 'delete-space', onclick: () => {
      if (confirm(`Delete “${space.name}” with all its categories and items?`)) void client.delete('space', space.id);
    } }, 'Delete space');
    const readOnly = h('p', { class: 'read-only-note muted small', 'data-testid': 'read-only' }, 'You can view this space; only its editors and owner can change it.');
    /** Shows the role and turns the editing controls off for a viewer, on otherwise. */
    let mine: MembersPanel | null = null;
    const applyRole = (r: Role | null) => {
      if (mine && panel !== mine) return; // an answer for a space no longer shown
      role = r;
      roleBadge.textContent = r ? ROLE_LABEL[r] : '';
      roleBadge.dataset.role = r ?? '';
      roleBadge.classList.toggle('hidden', !r);
      // Only the owner deletes a shared space (the server refuses it from anyone else).
      deleteBtn.classList.toggle('hidden', r !== 'owner');
      readOnly.classList.toggle('hidden', canEdit());
      main.classList.toggle('read-only', !canEdit());
      for (const form of [catForm, itemForm]) for (const c of form.elements) (c as HTMLInputElement).disabled = !canEdit();
      if (canEdit()) typeSel.dispatchEvent(new Event('change')); // the external id field follows the type
      renderItems();
    };
    const members = (mine = panel = membersPanel(client, space, user, applyRole));

    clear(
      main,
      h('div', { class: 'space-head' },
        h('h1', { 'data-testid': 'space-title' }, space.name),
        roleBadge,
        deleteBtn),
      readOnly,
      h('div', { class: 'space-grid' },
        h('div', { class: 'space-main' }, h('div', { class: 'cat-bar' }, cats, catForm), itemForm, items),
        members.el),
    );
    applyRole(members.role());
    renderCats();
    renderItems();
  }

  // Subscribed last: the first call renders at once, so everything above must exist.
  unsubs.push(client.subscribe('space', undefined, (rows) => ((spaces = rows), renderSpaces())));
  const root = h('div', { class: 'app' }, top, h('div', { class: 'layout' }, side, main), toasts);
  (root as HTMLElement & { dispose?: () => void }).dispose = () => {
    clearTimeout(refreshTimer);
    for (const u of [...unsubs, ...subMain]) u();
  };
  return root;
}
