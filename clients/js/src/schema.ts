// The data model the client runs on, from a declared schema (docs/SCHEMA.md):
// its collections, their fields, the parents of each record (`x-parent`) and
// the sharing roots (`shareable`). Everything the client does by type (the
// fields a create sets, the arrays of `serverUpdates`, the cascade that hides
// the children of a deleted record, the removal of a shared root) is read
// from here; only the default data is the bucket list.

import { bucketList } from './schemas/bucket-list.js';
import type { Schema, SchemaProperty } from './schemas/format.js';

export type { Schema, SchemaCollection, SchemaProperty } from './schemas/format.js';

/** The schema compiled into the lookups the client needs. */
export interface Model {
  /** Collection names, every parent collection before its children. */
  types: string[];
  fields: Record<string, string[]>;
  required: Record<string, string[]>;
  plural: Record<string, string>;
  /** The `x-parent` properties of each collection. */
  parents: Record<string, string[]>;
  /** Every `x-references` property (a create referring to a record depends on that record's create). */
  refs: Record<string, string[]>;
  /** Collections whose records can be shared (sharing roots). */
  roots: Set<string>;
  /** Collections with an `x-parent` pointing at each collection. */
  children: Record<string, string[]>;
  /** Collections above each collection along `x-parent`, transitively. */
  ancestors: Record<string, Set<string>>;
}

const compiled = new WeakMap<Schema, Model>();

/** Compiles a schema (the client trusts the server to have checked it: `tidesync schema check`). */
export function compile(schema: Schema = bucketList): Model {
  const hit = compiled.get(schema);
  if (hit) return hit;
  const cols = schema?.collections;
  if (!cols || typeof cols !== 'object' || !Object.keys(cols).length) throw new TypeError('schema: no collections');
  const names = Object.keys(cols);
  const m: Model = { types: [], fields: {}, required: {}, plural: {}, parents: {}, refs: {}, roots: new Set(), children: {}, ancestors: {} };
  const parentTypes: Record<string, string[]> = {};
  for (const t of names) {
    const c = cols[t]!;
    if (typeof c.plural !== 'string' || !c.properties) throw new TypeError(`schema: collection ${t} needs plural and properties`);
    const props = Object.entries(c.properties);
    m.fields[t] = props.map(([k]) => k);
    m.required[t] = c.required ?? [];
    m.plural[t] = c.plural;
    m.refs[t] = props.filter(([, p]) => typeof p['x-references'] === 'string').map(([k]) => k);
    const par = props.filter(([, p]) => p['x-parent'] === true && typeof p['x-references'] === 'string');
    m.parents[t] = par.map(([k]) => k);
    parentTypes[t] = par.map(([, p]) => p['x-references']!);
    if (c.shareable) m.roots.add(t);
    m.children[t] = [];
  }
  for (const t of names) for (const p of parentTypes[t]!) if (!m.children[p]?.includes(t)) m.children[p]?.push(t);
  const up = (t: string, seen: Set<string>): Set<string> => {
    for (const p of parentTypes[t] ?? []) if (!seen.has(p)) up(p, seen.add(p));
    return seen;
  };
  for (const t of names) m.ancestors[t] = up(t, new Set());
  // Parents first: by the number of collections above.
  m.types = names.slice().sort((a, b) => m.ancestors[a]!.size - m.ancestors[b]!.size);
  compiled.set(schema, m);
  return m;
}
