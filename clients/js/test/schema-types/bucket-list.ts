// Generated from bucket-list.json by `npm run schema-types` (@tidesync/client): do not edit, regenerate.

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

/** `space`: what a create sets (required: name); any other property may be left out, `null` clears it. An organisational container ("Personal", "Work"); the unit of sharing. */
export interface SpaceFields {
  name: string;
  description?: string | null;
  color?: string | null;
  icon?: string | null;
  order?: number | null;
}

/** A `space` as read: every property present, `null` when unset; shareable (a sharing root). */
export interface Space extends RecordMeta {
  name: string;
  description: string | null;
  color: string | null;
  icon: string | null;
  order: number | null;
}

/** `category`: what a create sets (required: spaceId, name); any other property may be left out, `null` clears it. A group of items inside a space ("Movies", "Books"). */
export interface CategoryFields {
  /** The id of a `space` (its parent: deleting that record deletes this one). */
  spaceId: string;
  name: string;
  description?: string | null;
  color?: string | null;
  icon?: string | null;
  order?: number | null;
}

/** A `category` as read: every property present, `null` when unset. */
export interface Category extends RecordMeta {
  /** The id of a `space` (its parent: deleting that record deletes this one). */
  spaceId: string;
  name: string;
  description: string | null;
  color: string | null;
  icon: string | null;
  order: number | null;
}

/** `item`: what a create sets (required: title); any other property may be left out, `null` clears it. A bucket-list entry. Without spaceId and categoryId it stays in its author's personal scope. */
export interface ItemFields {
  /** The id of a `space` (its parent: deleting that record deletes this one). */
  spaceId?: string | null;
  /** The id of a `category` (its parent: deleting that record deletes this one). */
  categoryId?: string | null;
  title: string;
  description?: string | null;
  notes?: string | null;
  /** Free text such as "movie"; a closed vocabulary in the original, so never cast. */
  type?: string | null;
  /** An external catalogue's id; the record never holds the catalogue's data. */
  movieId?: string | null;
  bookId?: string | null;
  placeId?: string | null;
  isCompleted?: boolean | null;
  /** ISO-8601 date-time. */
  completedAt?: string | null;
  /** A number or a label such as "high". */
  priority?: number | string | null;
  order?: number | null;
  tags?: string[] | null;
}

/** A `item` as read: every property present, `null` when unset. */
export interface Item extends RecordMeta {
  /** The id of a `space` (its parent: deleting that record deletes this one). */
  spaceId: string | null;
  /** The id of a `category` (its parent: deleting that record deletes this one). */
  categoryId: string | null;
  title: string;
  description: string | null;
  notes: string | null;
  /** Free text such as "movie"; a closed vocabulary in the original, so never cast. */
  type: string | null;
  /** An external catalogue's id; the record never holds the catalogue's data. */
  movieId: string | null;
  bookId: string | null;
  placeId: string | null;
  isCompleted: boolean | null;
  /** ISO-8601 date-time. */
  completedAt: string | null;
  /** A number or a label such as "high". */
  priority: number | string | null;
  order: number | null;
  tags: string[] | null;
}

/** The collections of bucket-list.json: `createClient<BucketListCollections>({ schema })`; a list filters by parent. */
export type BucketListCollections = {
  space: { record: Space; create: SpaceFields; patch: Partial<SpaceFields>; filter: { [key: string]: never } };
  category: { record: Category; create: CategoryFields; patch: Partial<CategoryFields>; filter: { spaceId?: string } };
  item: { record: Item; create: ItemFields; patch: Partial<ItemFields>; filter: { spaceId?: string; categoryId?: string } };
};
