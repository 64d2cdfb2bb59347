// The signed-in app: spaces (sidebar), a space's categories and items and its
// members (main), the sync indicator (top bar). Every list is a
// client.subscribe(); the items list is windowed and keyed (items.ts); forms
// are never re-rendered, so typing is never interrupted by a sync, and a form
// keeps what was typed until the write is stored. A viewer's editing controls
// are disabled (the server would refuse the writes).

import type { Category, Client, Item, Role, Space, SyncStatus } from '@tidesync/client';
import { clear, field, h } from './dom.js';
import { inbox } from './inbox.js';
import { itemList, KINDS, type Kind } from './items.js';
import { membersPanel, type Me, type MembersPanel } from './members.js';

const ROLE_LABEL: Record<Role, string> = { owner: 'Owner', editor: 'Editor', viewer: 'Viewer · read only' };

const hhmmss = (t: number) => new Date(t).toLocaleTimeString('en-GB', { hour12: false });

const RETRY_WORDS: Record<NonNullable<SyncStatus['retry']>['reason'], string> = {
  rateLimited: 'rate-limited',
  busy: 'server busy',
  unreachable: 'server unreachable',
};

/** Trouble with this device's database, in words (`status.storage`), or null. */
export function storageText(s: SyncStatus): string | null {
  const t = s.storage;
  if (!t) return null;
  if (t.reason === 'quota') return 'This device is full: new changes are not saved until space is freed';
  if (t.reason === 'closed') return 'This device\'s database was closed or deleted: reopening it (changes held in memory are written back)';
  return `This device's storage failed: ${t.message}`;
}

/**
 * The sync indicator's state and words, from the SDK's `status.state` (idle shows as "synced"),
 * `status.retry` and `status.progress`.
 */
export function statusText(s: SyncStatus): { state: string; text: string } {
  const n = s.pending;
  const pending = n ? `${n} pending` : '';
  switch (s.state) {
    case 'needsSignIn':
      return { state: 'needsSignIn', text: n ? `Signed out · ${pending}` : 'Signed out' };
    case 'offline':
      return { state: 'offline', text: n ? `Offline · ${pending}` : 'Offline' };
    case 'syncing': {
      const p = s.progress;
      if (p) return { state: 'syncing', text: `Syncing · ${p.applied.toLocaleString('en-GB')} of ${p.received.toLocaleString('en-GB')} received${n ? ` · ${pending}` : ''}` };
      return { state: 'syncing', text: n ? `Syncing ${n}…` : 'Syncing…' };
    }
    case 'retrying': {
      const r = s.retry!;
      return { state: 'retrying', text: `${n ? `${pending} · ` : ''}retrying at ${hhmmss(r.at)} (${RETRY_WORDS[r.reason]})` };
    }
    case 'pending':
      return { state: 'pending', text: pending };
    default:
      return { state: 'synced', text: 'Synced' };
  }
}

/** A write's failure in words (a storage error keeps its message: quota, database closed). */
const why = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function appView(client: Client, user: Me, onSignOut: () => void, onReauth: () => void): HTMLElement {
  let spaceId: string | null = localStorage.getItem('tidesync.demo.space');
  let categoryId: string | null = null; // null = all items of the space
  const unsubs: (() => void)[] = [];
  let panel: MembersPanel | null = null;
  let focusHeading = true; // once, after sign-in: focus goes to the main heading
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

  // --- toasts -------------------------------------------------------------------------
  const toasts = h('div', { class: 'toasts', 'data-testid': 'toasts' });
  /** Shows a toast for `ms`; returns a function that removes it sooner. */
  const toast = (el: HTMLElement, ms: number) => {
    toasts.append(el);
    const t = setTimeout(() => el.remove(), ms);
    return () => {
      clearTimeout(t);
      el.remove();
    };
  };

  // --- top bar: the sync state in words ---------------------------------------------------
  const indicator = h('span', { class: 'sync', 'data-testid': 'sync-status', role: 'status', 'aria-live': 'polite' });
  const reauth = h('button', { class: 'primary small-btn hidden', 'data-testid': 'sign-in-again', onclick: onReauth }, 'Sign in again');
  const rejectedBtn = h('button', { class: 'ghost small-btn hidden', 'data-testid': 'rejected-open', 'aria-expanded': 'false', 'aria-controls': 'rejected-list' });
  const storageNote = h('span', { class: 'storage-trouble hidden', 'data-testid': 'storage-status', role: 'alert' });
  const rejectedList = h('section', { class: 'rejected panel hidden', id: 'rejected-list', 'data-testid': 'rejected-list', 'aria-label': 'Changes the server refused' });
  const rejectedItems = h('ul', {});
  const dismissError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'rejected-error' });
  const dismiss = h('button', { class: 'ghost small-btn', 'data-testid': 'rejected-dismiss', onclick: async () => {
    dismissError.textContent = '';
    try {
      await client.clearRejected(); // every tab, and after a reload
      rejectedBtn.focus();
    } catch (err) {
      dismissError.textContent = `Could not dismiss: ${why(err)}`;
    }
  } }, 'Dismiss all');
  rejectedList.append(h('div', { class: 'rejected-head' }, h('h2', {}, 'Changes the server refused'), dismiss), rejectedItems, dismissError);
  rejectedBtn.addEventListener('click', () => {
    const open = rejectedList.classList.toggle('hidden') === false;
    rejectedBtn.setAttribute('aria-expanded', String(open));
  });
  let rejectedShown: SyncStatus['rejected'] | null = null;
  const showStatus = (s: SyncStatus) => {
    const { state, text } = statusText(s);
    indicator.dataset.state = state;
    indicator.dataset.pending = String(s.pending);
    indicator.title = s.lastSyncedAt ? `Last synced ${new Date(s.lastSyncedAt).toLocaleTimeString()}` : 'Not synced yet';
    if (indicator.textContent !== text) clear(indicator, h('span', { class: 'dot' }), text);
    const trouble = storageText(s);
    storageNote.classList.toggle('hidden', !trouble);
    storageNote.dataset.reason = s.storage?.reason ?? '';
    if (storageNote.textContent !== (trouble ?? '')) storageNote.textContent = trouble ?? '';
    reauth.classList.toggle('hidden', s.state !== 'needsSignIn');
    if (s.rejected !== rejectedShown) {
      rejectedShown = s.rejected;
      const n = s.rejected.length;
      rejectedBtn.classList.toggle('hidden', n === 0);
      rejectedBtn.textContent = `${n} not saved`;
      if (!n) {
        if (rejectedList.contains(document.activeElement)) rejectedBtn.focus();
        rejectedList.classList.add('hidden');
        rejectedBtn.setAttribute('aria-expanded', 'false');
      }
      clear(
        rejectedItems,
        [...s.rejected].reverse().map((op) =>
          h('li', { 'data-testid': 'rejected-item' },
            h('strong', {}, `${op.operation} ${op.entityType}`),
            op.data && typeof op.data.title === 'string' ? ` “${op.data.title}”` : op.data && typeof op.data.name === 'string' ? ` “${op.data.name}”` : '',
            h('span', { class: 'muted' }, ` — ${op.error.message} (${op.error.code}) at ${hhmmss(op.rejectedAt)}`))),
      );
    }
  };
  showStatus(client.status);
  unsubs.push(client.onStatus(showStatus));
  unsubs.push(
    client.onRejected((ops) => {
      for (const op of ops)
        toast(h('div', { class: 'toast', 'data-testid': 'rejected', role: 'alert' }, `Not saved: ${op.operation} ${op.entityType} — ${op.error.message}`), 8000);
    }),
  );
  const top = h(
    'header',
    { class: 'topbar' },
    h('div', { class: 'brand' }, h('span', { class: 'logo' }), 'Bucket list'),
    h('div', { class: 'sync-box' }, indicator, storageNote, reauth, rejectedBtn),
    h('div', { class: 'who' }, h('span', { class: 'muted' }, user.name || user.email), h('button', { class: 'ghost', 'data-testid': 'sign-out', onclick: onSignOut }, 'Sign out')),
  );

  // --- sidebar: spaces ------------------------------------------------------------
  const spaceList = h('ul', { class: 'spaces', 'data-testid': 'space-list', 'aria-label': 'Spaces' });
  const spaceError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'space-error' });
  const spaceForm = h(
    'form',
    {
      class: 'inline-form',
      'data-testid': 'new-space',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const name = field(spaceForm, 'name');
        if (!name) return;
        spaceError.textContent = '';
        let id: string;
        try {
          id = await client.create('space', { name, order: Date.now() });
        } catch (err) {
          spaceError.textContent = `Not saved: ${why(err)}`;
          return;
        }
        spaceForm.reset();
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
  const side = h('nav', { class: 'sidebar', 'aria-label': 'Spaces' }, invitations.el, h('h2', {}, 'Spaces'), spaceList, spaceForm, spaceError);
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
        h('li', {}, h('button', { class: `space${s.id === spaceId ? ' active' : ''}`, 'data-testid': 'space', 'data-id': s.id, 'aria-current': s.id === spaceId ? 'true' : null, onclick: () => select(s.id) }, h('span', { class: 'space-name' }, s.name),
          s.userId && s.userId !== user.id ? h('span', { class: 'shared-tag', title: 'Shared with you' }, 'shared') : null,
          s._pending ? h('span', { class: 'pending-dot', title: 'Not synced yet' }) : null)),
      ),
    );
    renderMain();
  };

  // --- main: the selected space ------------------------------------------------------
  const main = h('main', { class: 'content' });
  let subMain: (() => void)[] = [];
  let mainFor: string | null | undefined;
  const select = (id: string) => {
    spaceId = id;
    categoryId = null;
    localStorage.setItem('tidesync.demo.space', id);
    renderSpaces();
  };
  /** Focuses the new heading after sign-in, or when what had the focus was replaced. */
  const heading = (el: HTMLElement, refocus: boolean) => {
    if (!focusHeading && !refocus) return;
    focusHeading = false;
    // After the view is in the document (the first render happens before).
    queueMicrotask(() => el.isConnected && el.focus());
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
    const refocus = main.contains(document.activeElement) || document.activeElement === document.body;
    if (!space) {
      main.classList.remove('read-only');
      const h1 = h('h1', { tabindex: -1 }, 'Start a list');
      clear(main, h('div', { class: 'empty' }, h1, h('p', { class: 'muted' }, 'Create a space on the left — “Personal”, “Travel”, “Work”.')));
      heading(h1, refocus);
      return;
    }
    // The user's role in this space, from the Members panel (null = not known yet: editing stays on).
    let role: Role | null = null;
    const canEdit = () => role !== 'viewer';
    const cats = h('div', { class: 'categories', role: 'tablist', 'aria-label': 'Categories', 'data-testid': 'category-list' });
    const list = itemList(client, toast);
    subMain.push(list.dispose);
    let categories: Category[] = [];
    let allItems: Item[] = [];
    const renderCats = () => {
      if (categoryId && !categories.some((c) => c.id === categoryId)) categoryId = null;
      const tab = (id: string | null, label: string) =>
        h('button', { class: `chip${categoryId === id ? ' active' : ''}`, role: 'tab', 'aria-selected': String(categoryId === id), 'aria-controls': 'items-panel', tabindex: categoryId === id ? 0 : -1, 'data-testid': 'category', 'data-id': id ?? '', onclick: () => pick(id) }, label);
      clear(cats, tab(null, 'All'), categories.map((c) => tab(c.id, c.name)));
    };
    const pick = (id: string | null) => {
      categoryId = id;
      renderCats();
      renderItems();
      cats.querySelector<HTMLElement>('[aria-selected=true]')?.focus();
    };
    // Arrow keys move between the tabs (the tablist pattern).
    cats.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
      const ids = [null, ...categories.map((c) => c.id)];
      const n = ids.indexOf(categoryId);
      pick(ids[(n + (e.key === 'ArrowRight' ? 1 : ids.length - 1)) % ids.length] ?? null);
    });
    let shownFor: [Item[], string | null] | null = null;
    let shownList: Item[] = [];
    const renderItems = () => {
      if (!shownFor || shownFor[0] !== allItems || shownFor[1] !== categoryId) {
        shownFor = [allItems, categoryId];
        shownList = categoryId ? allItems.filter((i) => i.categoryId === categoryId) : allItems;
      }
      list.set(shownList, categories);
    };
    subMain.push(client.subscribe('category', { spaceId: space.id }, (rows) => ((categories = rows), renderCats(), renderItems())));
    subMain.push(client.subscribe('item', { spaceId: space.id }, (rows) => ((allItems = rows), renderItems())));

    const catError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'category-error' });
    const catForm = h('form', { class: 'inline-form', 'data-testid': 'new-category', onsubmit: async (e: Event) => {
      e.preventDefault();
      const name = field(catForm, 'name');
      if (!name) return;
      catError.textContent = '';
      try {
        categoryId = await client.create('category', { spaceId: space.id, name, order: categories.length });
      } catch (err) {
        catError.textContent = `Not saved: ${why(err)}`;
        return;
      }
      catForm.reset();
      renderCats();
      renderItems();
    } }, h('input', { name: 'name', placeholder: 'New category', maxlength: 200, 'aria-label': 'New category name' }), h('button', { type: 'submit' }, 'Add'));

    const typeSel = h('select', { name: 'type', 'aria-label': 'Type', 'data-testid': 'item-type', onchange: () => {
      const k = KINDS[typeSel.value as Kind];
      const ext = itemForm.elements.namedItem('ext') as HTMLInputElement;
      ext.placeholder = k ? k.idLabel : 'External id';
      ext.disabled = !k || !canEdit();
    } }, h('option', { value: '' }, 'Goal'), Object.entries(KINDS).map(([k, v]) => h('option', { value: k }, v.label)));
    const itemError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'item-error' });
    let adding = false;
    const itemForm = h('form', { class: 'item-form', 'data-testid': 'new-item', onsubmit: async (e: Event) => {
      e.preventDefault();
      const title = field(itemForm, 'title');
      if (!title || adding) return;
      const type = field(itemForm, 'type') as Kind | '';
      let max = -1;
      for (const i of allItems) if ((i.order ?? 0) > max) max = i.order ?? 0;
      const data: Partial<Item> & { title: string } = { title, spaceId: space.id, isCompleted: false, order: max + 1 };
      if (categoryId) data.categoryId = categoryId;
      if (type) {
        data.type = type;
        const ext = field(itemForm, 'ext');
        if (ext) (data as Record<string, unknown>)[KINDS[type].idField] = ext;
      }
      const notes = field(itemForm, 'notes');
      if (notes) data.notes = notes;
      // The input stays until the item is stored: a failed write loses nothing typed.
      itemError.textContent = '';
      adding = true;
      let id: string;
      try {
        id = await client.create('item', data);
      } catch (err) {
        itemError.textContent = `Not saved: ${why(err)}. What you typed is still here.`;
        return;
      } finally {
        adding = false;
      }
      itemForm.reset();
      typeSel.dispatchEvent(new Event('change'));
      list.reveal(id);
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
      list.setCanEdit(canEdit());
    };
    const members = (mine = panel = membersPanel(client, space, user, applyRole));

    const h1 = h('h1', { 'data-testid': 'space-title', tabindex: -1 }, space.name);
    clear(
      main,
      h('div', { class: 'space-head' },
        h1,
        roleBadge,
        deleteBtn),
      readOnly,
      h('div', { class: 'space-grid' },
        h('div', { class: 'space-main' }, h('div', { class: 'cat-bar' }, cats, catForm), catError, itemForm, itemError, list.editor,
          h('div', { id: 'items-panel', role: 'tabpanel', 'aria-label': 'Items' }, list.el)),
        members.el),
    );
    applyRole(members.role());
    renderCats();
    renderItems();
    heading(h1, refocus);
  }

  // Subscribed last: the first call renders at once, so everything above must exist.
  unsubs.push(client.subscribe('space', undefined, (rows) => ((spaces = rows), renderSpaces())));
  const root = h('div', { class: 'app' }, top, rejectedList, h('div', { class: 'layout' }, side, main), toasts);
  (root as HTMLElement & { dispose?: () => void }).dispose = () => {
    clearTimeout(refreshTimer);
    for (const u of [...unsubs, ...subMain]) u();
  };
  return root;
}
