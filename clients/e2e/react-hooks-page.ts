// The page the React hook tests load (react.test.ts): the SDK, and a probe
// that renders useQuery/useSyncStatus and counts its renders, in development
// React (so React's own warnings, e.g. an uncached getSnapshot, reach the
// console, which the test watches). No JSX: the e2e type check stays plain TS.
import { createElement as h, memo, useState } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import * as sdk from '../js/src/index.js';
import { useQuery, useSyncStatus } from '../js/src/react.js';

type Client = sdk.Client;

/** How often each component rendered: the list, the status line, and each row by id. */
const renders = { list: 0, status: 0, rows: {} as Record<string, number> };

const Row = memo(function Row({ item }: { item: sdk.Item }) {
  renders.rows[item.id] = (renders.rows[item.id] ?? 0) + 1;
  return h('li', { 'data-id': item.id, 'data-done': String(!!item.isCompleted), 'data-pending': String(item._pending) }, item.title);
});

function List({ client, spaceId }: { client: Client; spaceId: string }) {
  const items = useQuery(client, 'item', { spaceId });
  renders.list++;
  return h('ul', { 'data-space': spaceId }, items.map((i) => h(Row, { key: i.id, item: i })));
}

function Status({ client }: { client: Client }) {
  const s = useSyncStatus(client);
  renders.status++;
  return h('p', { id: 'status', 'data-online': String(s.online), 'data-pending': String(s.pending) }, s.online ? `${s.pending} pending` : 'offline');
}

let setSpace: (id: string) => void = () => undefined;
function Probe({ client, spaceId }: { client: Client; spaceId: string }) {
  const [space, set] = useState(spaceId);
  setSpace = set;
  return h('div', null, h(Status, { client }), h(List, { client, spaceId: space }));
}

let root: Root | null = null;
const hooks = {
  sdk,
  renders,
  clients: {} as Record<string, Client>,
  mount(client: Client, spaceId: string) {
    root = createRoot(document.getElementById('app')!);
    root.render(h(Probe, { client, spaceId }));
  },
  setSpace: (id: string) => setSpace(id),
  unmount() {
    root?.unmount();
    root = null;
  },
};
(window as unknown as { hooks: typeof hooks }).hooks = hooks;
export type Hooks = typeof hooks;
