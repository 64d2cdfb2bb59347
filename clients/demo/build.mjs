// Builds the demo into dist/ (or the folder given as the first argument):
// exactly index.html, app.js and app.css, as the tidesync binary serves them.
// Reproducible: pinned esbuild, fixed options, no source maps, no paths or
// timestamps in the output; the SDK is bundled from its sources.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, 'dist'));
mkdirSync(out, { recursive: true });
const common = {
  absWorkingDir: here,
  bundle: true,
  minify: true,
  legalComments: 'none',
  charset: 'utf8',
  target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
  logLevel: 'warning',
};
await build({
  ...common,
  entryPoints: ['src/main.ts'],
  outfile: join(out, 'app.js'),
  format: 'esm',
  alias: { '@tidesync/client': join(here, '..', 'js', 'src', 'index.ts') },
});
await build({ ...common, entryPoints: ['src/app.css'], outfile: join(out, 'app.css') });
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
console.log(`built the demo into ${process.argv[2] ? out : 'clients/demo/dist'}`);
