// What the browser benches share: the seeded data and the percentile.

/** The one space every bench seeds its items into. */
export const SEED_SPACE = '00000000-0000-4000-8000-000000000001';

/** Seeds a space and `items` items in it through the real API, 1,000 changes per push. */
export async function seedItems(url: string, token: string, items: number): Promise<void> {
  let changes: unknown[] = [{ operationId: 'seed-s', id: SEED_SPACE, entityType: 'space', operation: 'create', data: { name: 'Bench' } }];
  for (let i = 0; i < items; i++) {
    changes.push({
      operationId: `seed-${i}`,
      id: `00000000-0000-4000-a000-${String(i).padStart(12, '0')}`,
      entityType: 'item',
      operation: 'create',
      data: { spaceId: SEED_SPACE, title: `Item number ${i}`, type: 'movie', movieId: String(1000 + i), notes: 'seeded for the bench', order: i, isCompleted: i % 3 === 0 },
    });
    if (changes.length === 1000 || i === items - 1) {
      const res = await fetch(`${url}/api/sync`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ deviceId: 'seeder', lastSyncTimestamp: null, changes, limit: 1 }) });
      if (!res.ok) throw new Error(`seed: ${res.status} ${await res.text()}`);
      changes = [];
    }
  }
}

/** The p-th percentile (nearest rank) of `xs`. */
export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
