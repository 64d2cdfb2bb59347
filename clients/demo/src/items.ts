// A space's items: a windowed list (fixed row height, only the rows on screen
// and a few around them are in the DOM) whose rows are kept by key (an item
// that did not change keeps its row, a changed one is updated in place), the
// title edited in place in its row (Edit turns it into an input of the same
// height: Enter or leaving the field saves the title alone, Escape cancels),
// a details panel for the other fields (notes, external id, category; each
// field sent alone with client.update), and delete with undo (the delete is sent when the toast
// goes, or at once if the page is being closed).

import type { Category, Client, Item } from '@tidesync/client';
import { clear, h } from './dom.js';

export const KINDS = {
  movie: { label: 'Movie', idField: 'movieId', idLabel: 'TMDB id' },
  book: { label: 'Book', idField: 'bookId', idLabel: 'Open Library id' },
  place: { label: 'Place', idField: 'placeId', idLabel: 'Place id' },
} as const;
export type Kind = keyof typeof KINDS;

/** Row height in px: must match `.items .item` in app.css. */
export const ROW = 84;
const OVERSCAN = 6;
const UNDO_MS = 5000;

export interface ItemList {
  /** The scrolling list. */
  el: HTMLElement;
  /** The editor (hidden until an item is edited). */
  editor: HTMLElement;
  set(items: Item[], categories: Category[]): void;
  setCanEdit(on: boolean): void;
  /** Scrolls the row of `id` into view (after an add). */
  reveal(id: string): void;
  dispose(): void;
}

interface Row {
  item: Item;
  el: HTMLLIElement;
  box: HTMLInputElement;
  body: HTMLDivElement;
  title: HTMLDivElement;
  meta: HTMLDivElement;
  edit: HTMLButtonElement;
  details: HTMLButtonElement;
  up: HTMLButtonElement;
  down: HTMLButtonElement;
  del: HTMLButtonElement;
  n: number;
  len: number;
  canEdit: boolean;
}

export function itemList(client: Client, toast: (el: HTMLElement, ms: number) => () => void): ItemList {
  let items: Item[] = [];
  let categories: Category[] = [];
  let canEdit = true;
  const hiddenIds = new Set<string>(); // deleted, waiting for the undo toast to go
  const rows = new Map<string, Row>();
  const inner = h('ul', { class: 'items-inner', role: 'list', 'aria-label': 'Items' });
  const empty = h('p', { class: 'empty-items muted hidden' }, 'Nothing here yet.');
  const el = h('div', { class: 'items', 'data-testid': 'item-list' }, inner, empty);
  let shown: Item[] = [];

  // --- rows ---------------------------------------------------------------------------
  /** A row's elements; its handlers act on the row's current item. */
  const makeRow = (it: Item): Row => {
    const r = {} as Row;
    r.box = h('input', { type: 'checkbox', 'data-testid': 'item-complete', onchange: () => {
      const done = r.box.checked;
      void client.update('item', r.item.id, { isCompleted: done, completedAt: done ? new Date().toISOString() : null });
    } });
    r.title = h('div', { class: 'item-title', 'data-testid': 'item-title' });
    r.meta = h('div', { class: 'item-meta' });
    r.body = h('div', { class: 'item-body' }, r.title, r.meta);
    r.title.addEventListener('dblclick', () => r.canEdit && startInline(r.item.id));
    r.edit = h('button', { class: 'icon', title: 'Edit the title', 'data-testid': 'item-edit', onclick: () => (inline?.id === r.item.id ? inline.commit(true) : startInline(r.item.id)) }, '✎');
    // A press on Edit while the title is being edited saves it (the input keeps the focus until then).
    r.edit.addEventListener('mousedown', (e) => inline?.id === r.item.id && e.preventDefault());
    r.details = h('button', { class: 'icon', title: 'Notes, external id, category', 'data-testid': 'item-details', onclick: () => edit(r.item.id) }, '⋯');
    r.up = h('button', { class: 'icon', title: 'Move up', 'data-testid': 'item-up', onclick: () => void move(r.item.id, -1) }, '↑');
    r.down = h('button', { class: 'icon', title: 'Move down', 'data-testid': 'item-down', onclick: () => void move(r.item.id, 1) }, '↓');
    r.del = h('button', { class: 'icon danger', title: 'Delete', 'data-testid': 'item-delete', onclick: () => remove(r.item) }, '✕');
    r.el = h('li', { class: 'item', 'data-testid': 'item', 'data-id': it.id }, r.box, r.body, h('div', { class: 'item-actions' }, r.edit, r.details, r.up, r.down, r.del));
    r.n = -1;
    r.len = -1;
    return r;
  };
  /** Brings a row up to date in place: the interactive elements stay (a click is never lost to a sync). */
  const fill = (r: Row, it: Item, n: number, len: number) => {
    const old = r.item as Item | undefined;
    r.item = it;
    r.canEdit = canEdit;
    const t = it.title;
    r.el.className = `item${it.isCompleted ? ' done' : ''}`;
    r.el.dataset.pending = String(it._pending);
    if (r.box.checked !== !!it.isCompleted) r.box.checked = !!it.isCompleted;
    r.box.disabled = !canEdit;
    if (!old || old.title !== t) {
      r.box.setAttribute('aria-label', `Done: ${t}`);
      r.edit.setAttribute('aria-label', `Edit ${t}`);
      r.details.setAttribute('aria-label', `Details of ${t}`);
      r.up.setAttribute('aria-label', `Move ${t} up`);
      r.down.setAttribute('aria-label', `Move ${t} down`);
      r.del.setAttribute('aria-label', `Delete ${t}`);
    }
    r.edit.disabled = r.details.disabled = r.del.disabled = !canEdit;
    r.up.disabled = !canEdit || n === 0;
    r.down.disabled = !canEdit || n === len - 1;
    if (!old || old.title !== t || old.type !== it.type || old.notes !== it.notes || old._pending !== it._pending || old.movieId !== it.movieId || old.bookId !== it.bookId || old.placeId !== it.placeId) {
      const kind = KINDS[it.type as Kind];
      const extId = kind ? (it[kind.idField] as string | null | undefined) : null;
      // While the title is being edited in the row, its input stays (and keeps what is typed).
      if (r.title.textContent !== t) r.title.textContent = t;
      clear(
          r.meta,
          kind ? h('span', { class: `badge ${it.type}` }, kind.label) : null,
          extId ? h('span', { class: 'ext', title: `${kind!.idLabel}: only the id is stored` }, `${kind!.idLabel} ${extId}`) : null,
          it.notes ? h('span', { class: 'notes' }, it.notes) : null,
          it._pending ? h('span', { class: 'pending-dot', 'data-testid': 'item-pending', title: 'Not synced yet' }) : null,
      );
    }
  };

  /** Puts the rows of the visible window in place; rows of unchanged items are not touched. */
  let frame = 0;
  const paint = () => {
    frame = 0;
    const len = shown.length;
    inner.style.height = `${len * ROW}px`;
    empty.classList.toggle('hidden', len > 0);
    const top = el.scrollTop;
    const height = el.clientHeight || 600;
    const from = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const to = Math.min(len, Math.ceil((top + height) / ROW) + OVERSCAN);
    const keep = new Set<string>();
    // n and len matter to the up/down buttons only at the ends.
    const ends = (x: number, l: number) => `${x === 0}${x === l - 1}`;
    for (let n = from; n < to; n++) {
      const it = shown[n]!;
      keep.add(it.id);
      let r = rows.get(it.id);
      if (!r) {
        r = makeRow(it);
        rows.set(it.id, r);
        inner.append(r.el);
      }
      if (r.item !== it || r.canEdit !== canEdit || ends(r.n, r.len) !== ends(n, len)) fill(r, it, n, len);
      if (r.n !== n) {
        r.el.style.transform = `translateY(${n * ROW}px)`;
        r.el.setAttribute('aria-posinset', String(n + 1));
      }
      if (r.len !== len) r.el.setAttribute('aria-setsize', String(len));
      r.n = n;
      r.len = len;
    }
    // The row whose title is being edited stays (with its input and focus), at its place.
    if (inline && !keep.has(inline.id) && rows.has(inline.id)) {
      const n = shown.findIndex((i) => i.id === inline!.id);
      if (n >= 0) {
        keep.add(inline.id);
        const r = rows.get(inline.id)!;
        if (r.item !== shown[n]) fill(r, shown[n]!, n, len);
        if (r.n !== n) r.el.style.transform = `translateY(${n * ROW}px)`;
        r.n = n;
        r.len = len;
      } else inline.cancel(false);
    }
    for (const [id, r] of rows)
      if (!keep.has(id)) {
        r.el.remove();
        rows.delete(id);
      }
    // Keep the DOM order the visual order (screen readers and tab order follow it).
    let prev: Element | null = null;
    for (let n = from; n < to; n++) {
      const e = rows.get(shown[n]!.id)!.el;
      if (prev ? prev.nextElementSibling !== e : inner.firstElementChild !== e) {
        if (prev) prev.after(e);
        else inner.prepend(e);
      }
      prev = e;
    }
  };
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(paint);
  };
  el.addEventListener('scroll', schedule, { passive: true });
  window.addEventListener('resize', schedule);

  const move = async (id: string, by: number) => {
    // Renumber the visible order and swap; update() sends only the items whose order changed.
    const ids = shown.map((i) => i.id);
    const n = ids.indexOf(id);
    if (n < 0 || !ids[n + by]) return;
    [ids[n], ids[n + by]] = [ids[n + by]!, ids[n]!];
    await Promise.all(ids.map((x, k) => (shown.find((i) => i.id === x)?.order === k ? null : client.update('item', x, { order: k }))));
  };

  // --- delete with undo -----------------------------------------------------------------
  const flushes = new Map<string, () => void>();
  const remove = (it: Item) => {
    hiddenIds.add(it.id);
    refresh();
    let done = false;
    const send = () => {
      if (done) return;
      done = true;
      flushes.delete(it.id);
      hiddenIds.delete(it.id);
      void client.delete('item', it.id);
    };
    flushes.set(it.id, send);
    const undo = h('button', { class: 'ghost undo', 'data-testid': 'undo-delete', onclick: () => {
      done = true;
      flushes.delete(it.id);
      hiddenIds.delete(it.id);
      closeToast();
      refresh();
      rows.get(it.id)?.del.focus();
    } }, 'Undo');
    const closeToast = toast(h('div', { class: 'toast', 'data-testid': 'deleted-toast', role: 'status' }, h('span', {}, `Deleted “${it.title}”`), undo), UNDO_MS);
    setTimeout(send, UNDO_MS);
    undo.focus(); // the row's button is gone: the focus goes to what undoes it
  };
  const flushAll = () => {
    for (const f of [...flushes.values()]) f();
  };
  window.addEventListener('pagehide', flushAll);

  // --- the title, edited in place in its row --------------------------------------------
  let inline: { id: string; commit(refocus: boolean): void; cancel(refocus: boolean): void } | null = null;
  const startInline = (id: string) => {
    if (inline?.id === id) return;
    inline?.commit(false);
    const r = rows.get(id);
    if (!r || !canEdit) return;
    const input = h('input', { class: 'item-title-input', value: r.item.title, maxlength: 500, 'aria-label': `Title of ${r.item.title}`, 'data-testid': 'item-title-edit' });
    let over = false;
    /** Puts the title back in the row; the focus to the row's Edit button when asked. */
    const end = (refocus: boolean) => {
      over = true;
      if (inline?.id === id) inline = null;
      const row = rows.get(id);
      if (input.isConnected) input.replaceWith(row?.title ?? r.title);
      if (refocus) row?.edit.focus();
      schedule(); // the row may be outside the window now
    };
    const commit = (refocus: boolean) => {
      if (over) return;
      const it = rows.get(id)?.item ?? r.item;
      const v = input.value.trim();
      end(refocus);
      if (!v || v === it.title) return;
      const row = rows.get(id);
      if (row) row.title.textContent = v; // painted now; the stored copy follows
      client.update('item', id, { title: v }).catch((e: unknown) => {
        // Not stored: the row shows the stored title again, and the input comes back with what was typed.
        const back = rows.get(id);
        if (back) back.title.textContent = back.item.title;
        toast(h('div', { class: 'toast', role: 'alert', 'data-testid': 'title-error' }, `Title not saved: ${e instanceof Error ? e.message : String(e)}`), 8000);
        if (back && !inline) {
          startInline(id);
          const again = back.body.querySelector<HTMLInputElement>('[data-testid=item-title-edit]');
          if (again) again.value = v;
        }
      });
    };
    const cancel = (refocus: boolean) => {
      if (!over) end(refocus);
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        commit(true);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        cancel(true);
      }
    });
    input.addEventListener('blur', () => commit(false));
    inline = { id, commit, cancel };
    r.title.replaceWith(input);
    input.focus();
    input.select();
  };

  // --- details: the other fields, one at a time -----------------------------------------
  let editing: string | null = null;
  const note = h('p', { class: 'form-error', role: 'status', 'data-testid': 'editor-note' });
  const notes = h('textarea', { name: 'notes', maxlength: 5000, rows: 2, 'data-testid': 'edit-notes' });
  const ext = h('input', { name: 'ext', maxlength: 128, 'data-testid': 'edit-ext' });
  const extLabel = h('span', {}, 'External id');
  const cat = h('select', { name: 'category', 'data-testid': 'edit-category' });
  const heading = h('h2', { id: 'editor-heading', tabindex: -1 }, 'Details');
  const editor = h(
    'section',
    { class: 'item-editor panel hidden', 'data-testid': 'item-editor', 'aria-labelledby': 'editor-heading' },
    h('div', { class: 'editor-head' }, heading, h('button', { type: 'button', class: 'ghost', 'data-testid': 'edit-close', onclick: () => close() }, 'Done')),
    h('div', { class: 'editor-grid' },
      h('label', {}, extLabel, ext),
      h('label', {}, 'Category', cat),
      h('label', { class: 'wide' }, 'Notes', notes)),
    note,
  );
  const current = () => items.find((i) => i.id === editing);
  /** Sends one field alone; says why if it could not be saved. */
  const save = async (patch: Record<string, unknown>) => {
    const id = editing;
    if (!id) return;
    note.textContent = '';
    try {
      await client.update('item', id, patch as Partial<Item>);
      note.textContent = 'Saved';
    } catch (e) {
      note.textContent = `Not saved: ${e instanceof Error ? e.message : String(e)}`;
    }
  };
  notes.addEventListener('change', () => {
    const v = notes.value.trim();
    if (v !== (current()?.notes ?? '')) void save({ notes: v || null });
  });
  ext.addEventListener('change', () => {
    const it = current();
    const kind = it && KINDS[it.type as Kind];
    if (!kind) return;
    const v = ext.value.trim();
    if (v !== ((it[kind.idField] as string | null | undefined) ?? '')) void save({ [kind.idField]: v || null });
  });
  cat.addEventListener('change', () => void save({ categoryId: cat.value || null }));
  /** Fills the fields that are not being typed into. */
  const fillEditor = (force: boolean) => {
    const it = current();
    if (!it) return close();
    heading.textContent = `Details of ${it.title}`;
    const kind = KINDS[it.type as Kind];
    const set = (input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, v: string) => {
      if (force || document.activeElement !== input) input.value = v;
    };
    set(notes, it.notes ?? '');
    extLabel.textContent = kind ? kind.idLabel : 'External id (goals have none)';
    ext.disabled = !kind;
    set(ext, kind ? ((it[kind.idField] as string | null | undefined) ?? '') : '');
    if (force || document.activeElement !== cat) {
      cat.replaceChildren(h('option', { value: '' }, 'No category'), ...categories.map((c) => h('option', { value: c.id }, c.name)));
      cat.value = it.categoryId ?? '';
    }
  };
  const edit = (id: string) => {
    editing = id;
    note.textContent = '';
    editor.classList.remove('hidden');
    fillEditor(true);
    (ext.disabled ? cat : ext).focus();
  };
  const close = () => {
    const id = editing;
    editing = null;
    editor.classList.add('hidden');
    if (id) rows.get(id)?.details.focus();
  };

  const refresh = () => {
    shown = hiddenIds.size ? items.filter((i) => !hiddenIds.has(i.id)) : items;
    schedule();
  };
  return {
    el,
    editor,
    set(next, cats) {
      items = next;
      categories = cats;
      refresh();
      if (editing) fillEditor(false);
    },
    setCanEdit(on) {
      if (on === canEdit) return;
      canEdit = on;
      if (!on) {
        close();
        inline?.cancel(false);
      }
      schedule();
    },
    reveal(id) {
      const n = shown.findIndex((i) => i.id === id);
      if (n < 0) return;
      const top = n * ROW;
      if (top < el.scrollTop || top + ROW > el.scrollTop + el.clientHeight) el.scrollTop = Math.max(0, top - el.clientHeight + ROW);
      schedule();
    },
    dispose() {
      cancelAnimationFrame(frame);
      window.removeEventListener('resize', schedule);
      window.removeEventListener('pagehide', flushAll);
      flushAll();
    },
  };
}
