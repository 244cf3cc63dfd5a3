#!/usr/bin/env node
// Writes gradients/register-gradients.js: tfjs-core's register_all_gradients as one CommonJS file.
//
// tfjs-core registers no gradients by itself, and the module that does (dist/register_all_gradients)
// is an ES module, which Node 20 cannot require(). The @tensorflow/tfjs umbrella ships the same
// code bundled into its CommonJS build, with 150 MB of packages MIE does not use; this is that
// part alone (~290 KB). Its copy of the ops registers into tfjs's global gradient registry and runs
// on the global engine, which every copy of tfjs-core shares. Browser bundles import the ES
// module directly (src/register-gradients-browser.ts, through package.json "browser").
// Run by `prepare` (pnpm install) and `build`.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  stdin: { contents: "import '@tensorflow/tfjs-core/dist/register_all_gradients';", resolveDir: root, loader: 'js' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: join(root, 'gradients', 'register-gradients.js'),
  legalComments: 'inline',
  logLevel: 'warning',
});
