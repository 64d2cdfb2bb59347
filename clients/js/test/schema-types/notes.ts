// Generated from notes.json by `npm run schema-types` (@tidesync/client): do not edit, regenerate.

/** Set by the server on every record (until the server's copy arrives, the device's best guess). */
export interface RecordMeta {
  id: string;
  userId: string | null;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  deviceId: string | null;
  /** true while local operations on this record are not yet acknowledged by the server. */
  _pending: boolean;
}

/** `notebook`: what a create sets (required: title); any other property may be left out, `null` clears it. */
export interface NotebookFields {
  title: string;
  color?: "red" | "green" | "blue" | null;
}

/** A `notebook` as read: every property present, `null` when unset; shareable (a sharing root). */
export interface Notebook extends RecordMeta {
  title: string;
  color: "red" | "green" | "blue" | null;
}

/** `note`: what a create sets (required: notebookId); any other property may be left out, `null` clears it. */
export interface NoteFields {
  /** The id of a `notebook` (its parent: deleting that record deletes this one). */
  notebookId: string;
  body?: string | null;
  pinned?: boolean | null;
  /** ISO-8601 date-time. */
  dueAt?: string | null;
  rank?: number | null;
  labels?: string[] | null;
}

/** A `note` as read: every property present, `null` when unset. */
export interface Note extends RecordMeta {
  /** The id of a `notebook` (its parent: deleting that record deletes this one). */
  notebookId: string;
  body: string | null;
  pinned: boolean | null;
  /** ISO-8601 date-time. */
  dueAt: string | null;
  rank: number | null;
  labels: string[] | null;
}

/** `checkItem`: what a create sets (required: noteId, text); any other property may be left out, `null` clears it. */
export interface CheckItemFields {
  /** The id of a `note` (its parent: deleting that record deletes this one). */
  noteId: string;
  text: string;
  done?: boolean | null;
}

/** A `checkItem` as read: every property present, `null` when unset. */
export interface CheckItem extends RecordMeta {
  /** The id of a `note` (its parent: deleting that record deletes this one). */
  noteId: string;
  text: string;
  done: boolean | null;
}

/** The collections of notes.json: `createClient<NotesCollections>({ schema })`; a list filters by parent. */
export type NotesCollections = {
  notebook: { record: Notebook; create: NotebookFields; patch: Partial<NotebookFields>; filter: { [key: string]: never } };
  note: { record: Note; create: NoteFields; patch: Partial<NoteFields>; filter: { notebookId?: string } };
  checkItem: { record: CheckItem; create: CheckItemFields; patch: Partial<CheckItemFields>; filter: { noteId?: string } };
};
