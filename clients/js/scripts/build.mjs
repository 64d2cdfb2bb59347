// Builds dist/: index.js and react.js (ESM, readable, one file each) and the
// .d.ts files from tsc. Run from anywhere: paths are relative to the package.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(pkg, 'dist'), { recursive: true, force: true });
await build({
  absWorkingDir: pkg,
  entryPoints: ['src/index.ts', 'src/react.ts'],
  outdir: 'dist',
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  external: ['react'],
  legalComments: 'none',
  logLevel: 'warning',
});
const tsc = join(pkg, '..', 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', join(pkg, 'tsconfig.json'), '--emitDeclarationOnly'], { stdio: 'inherit' });
console.log('built @tidesync/client into dist/');
