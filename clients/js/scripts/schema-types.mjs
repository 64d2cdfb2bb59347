#!/usr/bin/env node
// Generates the TypeScript types of a tidesync schema file (docs/SCHEMA.md):
// per collection, `<Name>Fields` (what a create sets: required properties
// required, the others optional, `null` clears them) and `<Name>` (a record as
// read: every property present, `null` when unset, plus the fields the server
// owns), and the `<Schema>Collections` map `createClient<…>` takes, so
// `client.create('note', {…})` is type-checked.
//
// Usage: npm run --silent schema-types -- FILE [--name Prefix] [--out OUT.ts]
//   (without --out the types go to stdout; Prefix defaults to the file's name
//   in PascalCase: notes.json → NotesCollections)
// Plain Node, no dependency; the output depends on the file's content and
// name only, so regenerating gives the same bytes.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const usage = () => {
  console.error('usage: schema-types.mjs SCHEMA.json [--name Prefix] [--out OUT.ts]');
  process.exit(2);
};
let file;
let prefix;
let out;
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--name') prefix = args[++i];
  else if (args[i] === '--out' || args[i] === '-o') out = args[++i];
  else if (!file && !args[i].startsWith('-')) file = args[i];
  else usage();
}
if (!file || (args.includes('--name') && !prefix) || ((args.includes('--out') || args.includes('-o')) && !out)) usage();

const fail = (msg) => {
  console.error(`schema-types: ${file}: ${msg}`);
  process.exit(1);
};
let schema;
try {
  schema = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  fail(e.message);
}
const cols = schema?.collections;
if (!cols || typeof cols !== 'object' || Array.isArray(cols) || !Object.keys(cols).length) fail('no collections');

const ident = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const pascal = (s) =>
  s
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
prefix ??= pascal(basename(file).replace(/\.json$/i, ''));
if (!ident.test(prefix)) fail(`--name ${prefix} is not an identifier`);

/** One line of a doc comment: `*` and `/` made harmless. */
const doc = (s) => String(s).replace(/\*\//g, '*\\/').replace(/\s+/g, ' ').trim();

// The output's own type names (per collection `T` and `TFields`). A collection may be named like a
// global the output uses (`partial`, `array`): that name then shadows the global in the whole file,
// so the global is written `globalThis.Partial` there.
const own = new Set(Object.keys(cols).flatMap((n) => [pascal(n), `${pascal(n)}Fields`]));
const global = (n) => (own.has(n) ? `globalThis.${n}` : n);

function tsType(p, where) {
  if (!p || typeof p !== 'object') fail(`${where}: not an object`);
  if (Array.isArray(p.enum)) return [...new Set(p.enum.map((v) => JSON.stringify(v)))].join(' | ');
  const types = Array.isArray(p.type) ? p.type : [p.type];
  const ts = types.map((t) => {
    if (t === 'string') return 'string';
    if (t === 'number' || t === 'integer') return 'number';
    if (t === 'boolean') return 'boolean';
    if (t === 'array') {
      const item = tsType(p.items, `${where}/items`);
      return item.includes(' ') ? `${global('Array')}<${item}>` : `${item}[]`;
    }
    return fail(`${where}/type: ${JSON.stringify(t)} is not a type tidesync knows`);
  });
  return [...new Set(ts)].join(' | ');
}

function comment(p) {
  const parts = [];
  if (p.description) parts.push(doc(p.description));
  if (p['x-references']) parts.push(`The id of a \`${p['x-references']}\`${p['x-parent'] ? ' (its parent: deleting that record deletes this one)' : ''}.`);
  if (p.format === 'date-time') parts.push('ISO-8601 date-time.');
  if (p.format === 'uuid' && !p['x-references']) parts.push('A UUID.');
  return parts.length ? `  /** ${parts.join(' ')} */\n` : '';
}

const lines = [];
const emit = (s = '') => lines.push(s);
emit(`// Generated from ${basename(file)} by \`npm run schema-types\` (@tidesync/client): do not edit, regenerate.`);
emit();
emit('/** Set by the server on every record (until the server\'s copy arrives, the device\'s best guess). */');
emit('export interface RecordMeta {');
emit('  id: string;');
emit('  userId: string | null;');
emit('  createdAt: string;');
emit('  updatedAt: string;');
emit('  deletedAt: string | null;');
emit('  deviceId: string | null;');
emit('  /** true while local operations on this record are not yet acknowledged by the server. */');
emit('  _pending: boolean;');
emit('}');
const map = [];
const names = new Set();
for (const [name, c] of Object.entries(cols)) {
  if (!ident.test(name)) fail(`collection ${JSON.stringify(name)} is not an identifier`);
  const T = pascal(name);
  for (const n of [T, `${T}Fields`]) {
    if (names.has(n) || n === 'RecordMeta' || n === `${prefix}Collections`) fail(`collection ${name}: its type name ${n} is taken`);
    names.add(n);
  }
  const props = Object.entries(c?.properties ?? {});
  const required = new Set(Array.isArray(c?.required) ? c.required : []);
  const typed = props.map(([k, p]) => {
    if (!ident.test(k)) fail(`/collections/${name}/properties/${k}: not an identifier`);
    return { k, p, ts: tsType(p, `/collections/${name}/properties/${k}`), req: required.has(k) };
  });
  const about = c?.description ? ` ${doc(c.description)}` : '';
  const req = [...required].join(', ');
  emit();
  emit(`/** \`${name}\`: what a create sets${req ? ` (required: ${req})` : ''}; any other property may be left out, \`null\` clears it.${about} */`);
  emit(`export interface ${T}Fields {`);
  for (const { k, p, ts, req: r } of typed) emit(`${comment(p)}  ${k}${r ? '' : '?'}: ${r ? ts : `${ts} | null`};`);
  emit('}');
  emit();
  emit(`/** A \`${name}\` as read: every property present, \`null\` when unset${c?.shareable ? '; shareable (a sharing root)' : ''}. */`);
  emit(`export interface ${T} extends RecordMeta {`);
  for (const { k, p, ts, req: r } of typed) emit(`${comment(p)}  ${k}: ${r ? ts : `${ts} | null`};`);
  emit('}');
  const parents = typed.filter(({ p }) => p['x-parent'] === true && p['x-references']).map(({ k }) => `${k}?: string`);
  const filter = parents.length ? `{ ${parents.join('; ')} }` : '{ [key: string]: never }';
  map.push(`  ${name}: { record: ${T}; create: ${T}Fields; patch: ${global('Partial')}<${T}Fields>; filter: ${filter} };`);
}
emit();
emit(`/** The collections of ${basename(file)}: \`createClient<${prefix}Collections>({ schema })\`; a list filters by parent. */`);
emit(`export type ${prefix}Collections = {`);
for (const l of map) emit(l);
emit('};');
const text = lines.join('\n') + '\n';
if (out) writeFileSync(out, text);
else process.stdout.write(text);
