// Builds the React example into dist/ (or the folder given as the first
// argument): index.html, app.js and app.css, the same three files as the demo,
// so the tidesync binary can serve it (TIDESYNC_DEMO_DIR). React and the SDK
// are bundled (the SDK from its sources); production React, minified.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, '..', '..', 'js', 'src');
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
  entryPoints: ['src/main.tsx'],
  outfile: join(out, 'app.js'),
  format: 'esm',
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  alias: { '@tidesync/client/react': join(sdk, 'react.ts'), '@tidesync/client': join(sdk, 'index.ts') },
});
await build({ ...common, entryPoints: ['src/app.css'], outfile: join(out, 'app.css') });
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
console.log(`built the React example into ${out}`);
