// Compiles the TypeScript tests with esbuild (one bundle per file, packages
// left external) into clients/.build/<suite>/ and runs them with node --test.
// Usage: node scripts/run-tests.mjs unit|e2e [name-filter]
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const suite = process.argv[2];
const only = process.argv[3];
const dirs = { unit: 'js/test', e2e: 'e2e' };
if (!dirs[suite]) {
  console.error('usage: run-tests.mjs unit|e2e [filter]');
  process.exit(2);
}
const src = join(root, dirs[suite]);
const files = readdirSync(src).filter((f) => f.endsWith('.test.ts') && (!only || f.includes(only))).sort();
// Inside clients/ so the bundles resolve clients/node_modules.
const out = join(root, '.build', suite);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: files.map((f) => join(src, f)),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
});
const args = ['--enable-source-maps', '--test', '--test-concurrency=1', `--test-timeout=${suite === 'e2e' ? 120000 : 30000}`];
const r = spawnSync(process.execPath, [...args, ...files.map((f) => join(out, f.replace(/\.ts$/, '.mjs')))], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
process.exit(r.status ?? 1);
