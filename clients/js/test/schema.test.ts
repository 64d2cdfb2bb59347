// The data model from a schema: the SDK's built-in copy of the bucket list is
// the repo's file, and the client's behaviour by collection (create, update,
// delete, list by parent, the cascade that hides children, removed sharing
// roots, `serverUpdates` read by `plural`) is the same on the built-in bucket
// list and on the notes schema (crates/protocol/schema/notes.json), against
// the fake server reading the same file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketList, memoryStorage, type Client, type Schema } from '../src/index.js';
import { compile } from '../src/schema.js';
import type { Collections } from '../src/types.js';
import type { Row } from '../src/model.js';
import { loadSchema, schemaDir } from './fake-server.js';
import { closeAll, env, settle, until } from './helpers.js';

test('the SDK\'s built-in schema is crates/protocol/schema/bucket-list.json', () => {
  assert.deepEqual(bucketList, loadSchema('bucket-list'));
});

test('a schema compiles to collections, parents first, with their x-parent properties, ancestors and sharing roots', () => {
  const m = compile(loadSchema('notes') as unknown as Schema);
  assert.deepEqual(m.types, ['notebook', 'note', 'checkItem']);
  assert.deepEqual(m.parents, { notebook: [], note: ['notebookId'], checkItem: ['noteId'] });
  assert.deepEqual(m.plural, { notebook: 'notebooks', note: 'notes', checkItem: 'checkItems' });
  assert.deepEqual([...m.ancestors.checkItem!].sort(), ['note', 'notebook']);
  assert.deepEqual([...m.roots], ['notebook']);
  assert.deepEqual(m.required.checkItem, ['noteId', 'text']);
  const b = compile();
  assert.equal(b, compile(bucketList), 'the default is the built-in bucket list, compiled once');
  assert.deepEqual(b.parents.item, ['spaceId', 'categoryId']);
  assert.deepEqual(b.children.space, ['category', 'item']);
  assert.throws(() => compile({ collections: {} } as Schema), /no collections/);
});

/** Three levels of one schema: a sharing root, a child of it, a grandchild (under the child only). */
interface Case {
  name: string;
  /** undefined: the client's default schema, the fake server's bucket list. */
  file?: string;
  root: string;
  mid: string;
  leaf: string;
  plurals: [string, string, string];
  rootData: () => Record<string, unknown>;
  midData: (root: string) => Record<string, unknown>;
  leafData: (mid: string) => Record<string, unknown>;
  midParent: string;
  leafParent: string;
  /** A leaf field to update and its new value. */
  edit: [string, unknown];
  /** A required field of the leaf. */
  leafRequired: string;
}

const cases: Case[] = [
  {
    name: 'bucket list (default)',
    root: 'space',
    mid: 'category',
    leaf: 'item',
    plurals: ['spaces', 'categories', 'items'],
    rootData: () => ({ name: 'S' }),
    midData: (spaceId) => ({ spaceId, name: 'C' }),
    // An item in a category only (no spaceId): hidden with the space through its category.
    leafData: (categoryId) => ({ categoryId, title: 'I', tags: ['a'] }),
    midParent: 'spaceId',
    leafParent: 'categoryId',
    edit: ['title', 'I2'],
    leafRequired: 'title',
  },
  {
    name: 'notes',
    file: 'notes',
    root: 'notebook',
    mid: 'note',
    leaf: 'checkItem',
    plurals: ['notebooks', 'notes', 'checkItems'],
    rootData: () => ({ title: 'N', color: 'red' }),
    midData: (notebookId) => ({ notebookId, body: 'b', labels: ['x'] }),
    leafData: (noteId) => ({ noteId, text: 't' }),
    midParent: 'notebookId',
    leafParent: 'noteId',
    edit: ['text', 't2'],
    leafRequired: 'text',
  },
];

function setup(k: Case) {
  const e = env(k.file ? loadSchema(k.file) : undefined);
  return { e, client: () => e.client<Collections>() };
}

/** A root, a child of it and a grandchild, synced. */
async function tree(k: Case, c: Client<Collections>) {
  const root = await c.create(k.root, k.rootData());
  const mid = await c.create(k.mid, k.midData(root));
  const leaf = await c.create(k.leaf, k.leafData(mid));
  await c.sync();
  return { root, mid, leaf };
}

for (const k of cases) {
  test(`${k.name}: create, update, delete and list by parent, sent with the schema's collection names`, async () => {
    const { e, client } = setup(k);
    const c = await client();
    const root = await c.create(k.root, k.rootData());
    const other = await c.create(k.root, k.rootData());
    const m1 = await c.create(k.mid, k.midData(root));
    const m2 = await c.create(k.mid, k.midData(root));
    const m3 = await c.create(k.mid, k.midData(other));
    const l1 = await c.create(k.leaf, k.leafData(m1));
    const l2 = await c.create(k.leaf, k.leafData(m1));
    await c.create(k.leaf, k.leafData(m2));
    const ids = (rows: { id: string }[]) => rows.map((r) => r.id).sort();
    assert.deepEqual(ids(await c.list(k.mid, { [k.midParent]: root })), [m1, m2].sort());
    assert.deepEqual(ids(await c.list(k.mid, { [k.midParent]: other })), [m3]);
    assert.deepEqual(ids(await c.list(k.leaf, { [k.leafParent]: m1 })), [l1, l2].sort());
    assert.equal((await c.list(k.leaf)).length, 3);
    assert.equal((await c.list(k.root)).length, 2);
    // Every property of the collection is on a new record, null when unset.
    const rec = (await c.get(k.leaf, l1)) as unknown as Record<string, unknown>;
    for (const f of Object.keys(loadSchema(k.file ?? 'bucket-list').collections[k.leaf]!.properties)) assert.ok(f in rec, `${k.leaf}.${f} present`);
    assert.equal(await c.get(k.mid, l1), undefined, 'get by the wrong collection');

    await c.update(k.leaf, l1, { [k.edit[0]]: k.edit[1] });
    assert.equal(((await c.get(k.leaf, l1)) as unknown as Record<string, unknown>)[k.edit[0]], k.edit[1]);
    await c.delete(k.leaf, l2);
    assert.deepEqual(ids(await c.list(k.leaf, { [k.leafParent]: m1 })), [l1]);
    await c.sync();
    assert.equal(c.status.pending, 0);
    const live = e.server.live(k.leaf);
    assert.equal(live.length, 2);
    assert.equal(live.find((r) => r.id === l1)![k.edit[0]], k.edit[1]);
    const sent = e.server.syncRequests().flatMap((r) => r.body.changes as { entityType: string }[]);
    assert.deepEqual([...new Set(sent.map((ch) => ch.entityType))].sort(), [k.root, k.mid, k.leaf].sort());

    // Required fields and collection names come from the schema.
    await assert.rejects(c.create(k.leaf, { ...k.leafData(m1), [k.leafRequired]: '  ' }), new RegExp(`${k.leaf}\\.${k.leafRequired} is required`));
    await assert.rejects(c.create('bogus', {}), /unknown entity type bogus/);
    await assert.rejects(c.list(k.name === 'notes' ? 'item' : 'note'), /unknown entity type/);
    await closeAll(e);
  });

  test(`${k.name}: records arrive from the serverUpdates arrays named by each collection's plural`, async () => {
    const { e } = setup(k);
    const bodies: { data?: { serverUpdates?: Record<string, { id: string }[]> } }[] = [];
    const fetch = (async (u: string, i?: RequestInit) => {
      const r = await e.server.fetch(u, i);
      bodies.push(await r.clone().json());
      return r;
    }) as typeof globalThis.fetch;
    const c = await e.client<Collections>({ fetch });
    // Another device writes the three levels.
    const [root, mid, leaf] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    e.server.remote({ operationId: crypto.randomUUID(), id: root, entityType: k.root, operation: 'create', data: k.rootData() });
    e.server.remote({ operationId: crypto.randomUUID(), id: mid, entityType: k.mid, operation: 'create', data: k.midData(root) });
    e.server.remote({ operationId: crypto.randomUUID(), id: leaf, entityType: k.leaf, operation: 'create', data: k.leafData(mid) });
    await c.sync();
    const updates = bodies.map((b) => b.data?.serverUpdates ?? {});
    for (const [i, id] of [root, mid, leaf].entries()) {
      assert.ok(updates.some((u) => u[k.plurals[i]!]?.some((r) => r.id === id)), `${id} came in ${k.plurals[i]}`);
      assert.ok(updates.every((u) => Object.keys(u).sort().join() === [...k.plurals].sort().join()), 'one array per plural');
    }
    assert.equal((await c.get(k.root, root))?.id, root);
    assert.equal((await c.get(k.mid, mid))?.id, mid);
    assert.deepEqual((await c.list(k.leaf, { [k.leafParent]: mid })).map((r) => r.id), [leaf]);
    // A deletion from the other device cascades on the server; the tombstones remove the local copies.
    e.server.remote({ operationId: crypto.randomUUID(), id: root, entityType: k.root, operation: 'delete' });
    await c.sync();
    assert.equal((await c.list(k.leaf)).length, 0);
    assert.equal((await c.list(k.mid)).length, 0);
    await closeAll(e);
  });

  test(`${k.name}: deleting a record hides everything below it at once, down every x-parent level`, async () => {
    const { e, client } = setup(k);
    const c = await client();
    const { root, mid, leaf } = await tree(k, c);
    const keep = await tree(k, c);
    const seen: string[][] = [];
    const off = c.subscribe(k.leaf, { [k.leafParent]: mid }, (rows) => seen.push(rows.map((r) => r.id)));
    const seenMid: string[][] = [];
    const offMid = c.subscribe(k.mid, undefined, (rows) => seenMid.push(rows.map((r) => r.id)));
    assert.deepEqual(seen.at(-1), [leaf]);
    // Offline: no tombstone from the server, only the local cascade hides the grandchild.
    e.server.offline = true;
    await c.delete(k.root, root);
    await settle();
    assert.equal(await c.get(k.mid, mid), undefined);
    assert.equal(await c.get(k.leaf, leaf), undefined, `a ${k.leaf} under a ${k.mid} of a deleted ${k.root}`);
    assert.deepEqual(await c.list(k.leaf, { [k.leafParent]: mid }), []);
    assert.deepEqual((await c.list(k.leaf)).map((r) => r.id), [keep.leaf]);
    assert.deepEqual(seen.at(-1), [], 'the subscription by the middle parent saw the cascade');
    assert.deepEqual(seenMid.at(-1), [keep.mid]);
    // The stored row of the grandchild is untouched: hidden by its ancestry, not deleted locally.
    const stored = await e.storage().run('readonly', (tx) => tx.get<Row>('records', leaf));
    assert.equal(stored?.v?.id, leaf);
    // Back online: the server's cascade agrees.
    e.server.offline = false;
    await c.sync();
    assert.ok(!e.server.live(k.leaf).some((r) => r.id === leaf));
    assert.ok(e.server.live(k.leaf).some((r) => r.id === keep.leaf));
    off();
    offMid();
    await closeAll(e);
  });

  test(`${k.name}: a removed sharing root (removedSpaces) takes its records at every level, and no other`, async () => {
    const { e, client } = setup(k);
    const c = await client();
    const { root, mid, leaf } = await tree(k, c);
    const keep = await tree(k, c);
    e.server.removeFrom(root);
    await c.sync();
    for (const [t, id] of [[k.root, root], [k.mid, mid], [k.leaf, leaf]] as const) assert.equal(await c.get(t, id), undefined, `${t} removed`);
    const rows = await e.storage().run('readonly', (tx) => tx.getAll<Row>('records'));
    assert.deepEqual(rows.map((r) => r.id).sort(), [keep.root, keep.mid, keep.leaf].sort(), 'the removed records left storage');
    assert.deepEqual((await c.list(k.leaf)).map((r) => r.id), [keep.leaf]);
    await closeAll(e);
  });
}

test('a database holding records of collections the schema does not have: they are ignored, not fatal', async () => {
  const storage = memoryStorage('mixed');
  const e = env();
  const c1 = await e.client({ storage });
  await c1.create('space', { name: 'S' });
  await c1.close();
  const n = env(loadSchema('notes'));
  const c2 = await n.client<Collections>({ storage });
  assert.deepEqual(await c2.list('notebook'), []);
  const nb = await c2.create('notebook', { title: 'N' });
  await until(async () => (await c2.list('notebook')).length === 1, 'the notebook listed');
  assert.equal((await c2.get('notebook', nb))?.id, nb);
  await closeAll(n);
});

test('a database opened with a schema that adds collections pulls again from scratch: records of the new collections skipped before arrive', async () => {
  const storage = memoryStorage('evolving');
  const full = loadSchema('notes');
  // The app's first version knew notebooks and notes; the server already had check items.
  const older = { collections: { notebook: full.collections.notebook!, note: full.collections.note! } };
  const e = env(full);
  const [nb, note, item] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
  e.server.remote({ operationId: crypto.randomUUID(), id: nb, entityType: 'notebook', operation: 'create', data: { title: 'N' } });
  e.server.remote({ operationId: crypto.randomUUID(), id: note, entityType: 'note', operation: 'create', data: { notebookId: nb } });
  e.server.remote({ operationId: crypto.randomUUID(), id: item, entityType: 'checkItem', operation: 'create', data: { noteId: note, text: 'milk' } });
  const c1 = await e.client<Collections>({ storage, schema: older as unknown as Schema });
  await c1.sync();
  assert.equal((await c1.list('note')).length, 1);
  await c1.close();
  // The next version adds check items: the cursor stored was moved past the check item.
  const sent = e.server.syncRequests().length;
  const c2 = await e.client<Collections>({ storage, schema: full as unknown as Schema });
  await c2.sync();
  assert.equal(e.server.syncRequests()[sent]!.body.lastSyncTimestamp, null, 'pulled from scratch');
  assert.deepEqual((await c2.list('checkItem', { noteId: note })).map((r) => r.id), [item]);
  await c2.close();
  // Opened again with the same schema: no further pull from scratch.
  const again = e.server.syncRequests().length;
  const c3 = await e.client<Collections>({ storage, schema: full as unknown as Schema });
  await c3.sync();
  assert.notEqual(e.server.syncRequests()[again]!.body.lastSyncTimestamp, null, 'the cursor kept');
  assert.equal((await c3.list('checkItem')).length, 1);
  await closeAll(e);
});

test('properties named like Object.prototype members (constructor, toString) are data like any other: unset reads null, set travels', async () => {
  // Valid identifiers in a schema; `'toString' in data` is true for any object, so they must be read as own keys only.
  const doc = { collections: { task: { plural: 'tasks', properties: { title: { type: 'string' }, constructor: { type: 'string' }, toString: { type: 'boolean' } }, required: ['title'] } } };
  const e = env(doc);
  const c = await e.client<Collections>();
  const a = await c.create('task', { title: 'a' });
  const b = await c.create('task', { title: 'b', constructor: 'set', toString: true });
  const ra = (await c.get('task', a)) as unknown as Record<string, unknown>;
  assert.equal(ra.constructor, null, 'unset reads null');
  assert.equal(ra.toString, null);
  await c.update('task', a, { title: 'a2' });
  assert.equal(((await c.get('task', a)) as unknown as Record<string, unknown>).constructor, null, 'an update leaves it alone');
  await c.sync();
  assert.equal(c.status.pending, 0);
  const sent = e.server.syncRequests().flatMap((r) => r.body.changes as { id: string; data?: Record<string, unknown> }[]);
  assert.deepEqual(sent.find((ch) => ch.id === a)!.data, { title: 'a' }, 'only the fields given travel');
  const rb = e.server.live('task').find((r) => r.id === b)!;
  assert.equal(rb.constructor, 'set');
  assert.equal(rb.toString, true);
  assert.equal(e.server.live('task').find((r) => r.id === a)!.constructor, null);
  await closeAll(e);
});

test('schema-types: the output compiles even where a collection is named like a global it uses (partial, array)', async () => {
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const ts = (await import('typescript')).default;
  const dir = mkdtempSync(join(tmpdir(), 'schema-types-'));
  const file = join(dir, 'shadow.json');
  const script = join(schemaDir(), '..', '..', '..', 'clients', 'js', 'scripts', 'schema-types.mjs');
  writeFileSync(
    file,
    JSON.stringify({
      collections: {
        partial: { plural: 'partials', shareable: true, properties: { name: { type: 'string' }, level: { type: 'integer', enum: [-1, 2] } }, required: ['name'] },
        array: {
          plural: 'arrays',
          properties: {
            partialId: { type: 'string', format: 'uuid', 'x-references': 'partial', 'x-parent': true },
            kinds: { type: 'array', items: { type: 'string', enum: ['a', 'b'] } },
            mixed: { type: 'array', items: { type: ['number', 'string'] } },
            at: { type: 'string', format: 'date-time' },
          },
        },
      },
    }),
  );
  const out = join(dir, 'shadow.ts');
  const r = spawnSync(process.execPath, [script, file, '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // A use of the types: what must compile, and what must not.
  writeFileSync(
    join(dir, 'use.ts'),
    [
      "import type { ShadowCollections } from './shadow.js';",
      "type C = ShadowCollections;",
      "export const patch: C['partial']['patch'] = { level: 2 };",
      "export const create: C['array']['create'] = { partialId: 'p', kinds: ['a'], mixed: [1, 'x'] };",
      "export const rec: C['array']['record']['kinds'] = ['b'];",
      "// @ts-expect-error: not one of the enum",
      "export const bad: C['array']['create'] = { kinds: ['c'] };",
    ].join('\n'),
  );
  const program = ts.createProgram([join(dir, 'use.ts')], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, types: [] });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.deepEqual(errors, [], `the generated types compile:\n${errors.join('\n')}\n${r.stdout}`);
});

test('schema-types: every property type, integer and unions, enums, arrays of enums; --name; clashing type names refused', async () => {
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'schema-types-'));
  const file = join(dir, 'my-app.json');
  const script = join(schemaDir(), '..', '..', '..', 'clients', 'js', 'scripts', 'schema-types.mjs');
  writeFileSync(
    file,
    JSON.stringify({
      collections: {
        board: { plural: 'boards', shareable: true, properties: { n: { type: 'integer' }, score: { type: ['number', 'integer'] } }, required: ['n'] },
        card: {
          plural: 'cards',
          properties: {
            boardId: { type: 'string', format: 'uuid', 'x-references': 'board', 'x-parent': true },
            size: { type: 'number', enum: [1, 2.5] },
            flags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] } },
            mixed: { type: ['string', 'boolean'] },
            seeAlso: { type: 'string', format: 'uuid', 'x-references': 'board' },
          },
        },
      },
    }),
  );
  const gen = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
  const r = gen(file);
  assert.equal(r.status, 0, r.stderr);
  for (const line of [
    '  n: number;',
    '  score?: number | null;',
    '  size?: 1 | 2.5 | null;',
    '  flags?: Array<"a" | "b"> | null;',
    '  mixed?: string | boolean | null;',
    '  boardId?: string | null;',
    'export type MyAppCollections = {',
    '  board: { record: Board; create: BoardFields; patch: Partial<BoardFields>; filter: { [key: string]: never } };',
    '  card: { record: Card; create: CardFields; patch: Partial<CardFields>; filter: { boardId?: string } };',
  ])
    assert.ok(r.stdout.split('\n').includes(line), `generated: ${line}\n${r.stdout}`);
  assert.equal(gen(file).stdout, r.stdout, 'the same output every time');
  assert.match(gen(file, '--name', 'Kanban').stdout, /^export type KanbanCollections = \{$/m);
  writeFileSync(file, JSON.stringify({ collections: { note: { plural: 'notes', properties: {} }, noteFields: { plural: 'x', properties: {} } } }));
  const clash = gen(file);
  assert.equal(clash.status, 1);
  assert.match(clash.stderr, /noteFields: its type name NoteFields is taken/);
  assert.equal(gen().status, 2, 'usage');
});
