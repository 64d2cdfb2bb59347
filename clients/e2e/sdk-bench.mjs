// SDK benchmarks (not tests), run by hand:
//   node clients/e2e/sdk-bench.mjs node [records]      in Node with fake-indexeddb (sdk-bench-node.ts)
//   TIDESYNC_BIN=... node clients/e2e/sdk-bench.mjs chromium [records]   in Chromium against the real server (sdk-bench-chromium.ts)
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const which = process.argv[2] === 'chromium' ? 'chromium' : 'node';
const clients = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(clients, '.build', `sdk-bench-${which}`, 'bench.mjs');
await build({ absWorkingDir: clients, entryPoints: [join(clients, 'e2e', `sdk-bench-${which}.ts`)], outfile: out, bundle: true, packages: 'external', platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
try {
  await (await import(pathToFileURL(out).href)).main(process.argv.slice(3));
} finally {
  rmSync(join(clients, '.build', `sdk-bench-${which}`), { recursive: true, force: true });
}
