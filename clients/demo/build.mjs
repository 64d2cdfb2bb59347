// Builds the demo into dist/ (or the folder given as the first argument), which
// it empties first. The output is the installable offline app the tidesync
// binary serves (it embeds every file of dist/ at compile time):
//   index.html            the shell, names the hashed assets     (no-cache)
//   app.<hash>.js/.css    the app, named by content hash         (immutable)
//   sw.js                 the service worker: precaches the shell of this
//                         version (its list and version are written in)
//   manifest.webmanifest  the web app manifest, icon-192.png, icon-512.png
// Reproducible: pinned esbuild, fixed options, no source maps, no paths or
// timestamps in the output; the SDK is bundled from its sources.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, 'dist'));
rmSync(out, { recursive: true, force: true });
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
/** Builds one entry as `<name>.<hash>.<ext>` and returns the file name. */
async function hashed(name, entry, extra = {}) {
  const r = await build({ ...common, ...extra, entryPoints: { [name]: entry }, outdir: out, entryNames: '[name].[hash]', metafile: true });
  const files = Object.keys(r.metafile.outputs).map((f) => basename(f));
  if (files.length !== 1) throw new Error(`${entry}: expected one output, got ${files.join(', ')}`);
  return files[0];
}
const js = await hashed('app', 'src/main.ts', { format: 'esm', alias: { '@tidesync/client': join(here, '..', 'js', 'src', 'index.ts') } });
const css = await hashed('app', 'src/app.css');
for (const icon of readdirSync(join(here, 'src', 'icons')).sort()) copyFileSync(join(here, 'src', 'icons', icon), join(out, icon));
const manifest = {
  name: 'Bucket list · tidesync',
  short_name: 'Bucket list',
  description: 'A shared bucket list that works offline and syncs when it can.',
  start_url: '/',
  scope: '/',
  display: 'standalone',
  background_color: '#f6f7f9',
  theme_color: '#1f6feb',
  icons: [
    { src: '/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
    { src: '/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
    { src: '/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
  ],
};
writeFileSync(join(out, 'manifest.webmanifest'), `${JSON.stringify(manifest, null, 2)}\n`);
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8').replaceAll('{{app.js}}', `/${js}`).replaceAll('{{app.css}}', `/${css}`);
if (html.includes('{{')) throw new Error('index.html: an unknown {{placeholder}}');
writeFileSync(join(out, 'index.html'), html);

// The service worker: the shell's URLs and a version that changes with any byte of it.
const shellFiles = ['index.html', js, css, 'manifest.webmanifest', 'icon-192.png', 'icon-512.png'];
const version = createHash('sha256');
for (const f of shellFiles) version.update(f).update('\0').update(readFileSync(join(out, f)));
await build({
  ...common,
  entryPoints: ['src/sw.ts'],
  outfile: join(out, 'sw.js'),
  format: 'iife',
  define: {
    __SHELL__: JSON.stringify(shellFiles.map((f) => (f === 'index.html' ? '/' : `/${f}`))),
    __VERSION__: JSON.stringify(version.digest('hex').slice(0, 16)),
  },
});
console.log(`built the demo into ${process.argv[2] ? out : 'clients/demo/dist'} (${js}, ${css}, sw.js)`);
