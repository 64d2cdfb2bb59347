// The core bundle's size as an app would ship it: src/index.ts bundled,
// minified and gzipped. Fails above the budget (15 KB = 15 * 1024 bytes).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUDGET = 15 * 1024;
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = await build({
  absWorkingDir: pkg,
  entryPoints: ['src/index.ts'],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  legalComments: 'none',
});
const code = out.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(2);
console.log(`core bundle: ${kb(code.length)} KB min, ${kb(gz)} KB min+gzip (budget ${kb(BUDGET)} KB)`);
if (process.argv.includes('--json')) console.log(JSON.stringify({ min: code.length, gzip: gz, budget: BUDGET }));
if (gz > BUDGET) {
  console.error(`FAIL: the core bundle is ${gz} bytes min+gzip, over the ${BUDGET}-byte budget`);
  process.exit(1);
}
