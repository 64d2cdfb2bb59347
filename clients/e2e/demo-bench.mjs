// Measurements of the demo app (not a test): node clients/e2e/demo-bench.mjs
// Compiles demo-bench.ts with esbuild and runs it; see demo-bench.ts.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const clients = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(clients, '.build', 'demo-bench', 'demo-bench.mjs');
await build({ absWorkingDir: clients, entryPoints: [join(clients, 'e2e', 'demo-bench.ts')], outfile: out, bundle: true, packages: 'external', platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
try {
  await (await import(pathToFileURL(out).href)).main();
} finally {
  rmSync(join(clients, '.build', 'demo-bench'), { recursive: true, force: true });
}
