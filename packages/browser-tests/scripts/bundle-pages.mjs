// Bundles the browser pages of the suite with esbuild, as a user's bundler would (platform
// browser, no shims, no plugins, no defines), into dist/www with the wasm backend's .wasm files
// beside them (tfjs-backend-wasm loads them from the page's folder by default).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const www = join(root, 'dist', 'www');
mkdirSync(www, { recursive: true });

const pages = ['battery'];
const result = await build({
  entryPoints: Object.fromEntries(pages.map((page) => [page, join(root, 'dist', 'pages', `${page}-page.js`)])),
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  outdir: www,
  logLevel: 'warning',
  metafile: true,
});
for (const page of pages) {
  writeFileSync(join(www, `${page}.html`), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<title>MIE ${page}</title>\n<script type="module" src="./${page}.js"></script>\n`);
}

// The .wasm files of the tfjs-backend-wasm that @mie/core uses.
const requireFromCore = createRequire(createRequire(join(root, 'package.json')).resolve('@mie/core/package.json'));
const wasmDist = join(dirname(requireFromCore.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
for (const file of readdirSync(wasmDist).filter((name) => name.endsWith('.wasm'))) copyFileSync(join(wasmDist, file), join(www, file));
const bytes = Object.values(result.metafile.outputs).reduce((total, output) => total + output.bytes, 0);
console.log(`bundled ${pages.join(', ')} into dist/www (${(bytes / 1e6).toFixed(1)} MB of JavaScript)`);
