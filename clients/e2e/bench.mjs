// Measurements (not a test): node clients/e2e/bench.mjs
// Compiles bench.ts with esbuild and runs it; see bench.ts for what it measures.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const clients = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(clients, '.build', 'bench', 'bench.mjs');
await build({ absWorkingDir: clients, entryPoints: [join(clients, 'e2e', 'bench.ts')], outfile: out, bundle: true, packages: 'external', platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
try {
  await (await import(pathToFileURL(out).href)).main();
} finally {
  rmSync(join(clients, '.build', 'bench'), { recursive: true, force: true });
}
