#!/usr/bin/env node
// What the page fetches at run time, copied into public/ (served as is, not committed): the
// pretrained model's files from @mie/g2p-en, the digit reader of models/digits (trained by
// `mie train digits`) and the wasm backend's three .wasm binaries.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(here, 'package.json'));
const model = join(dirname(require.resolve('@mie/g2p-en/package.json')), 'model');
const wasmDist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json', { paths: [dirname(require.resolve('@mie/core/package.json'))] })), 'dist');
const out = join(here, 'public');
mkdirSync(join(out, 'g2p-en'), { recursive: true });
for (const file of ['config.json', 'model.safetensors', 'metrics.json']) copyFileSync(join(model, file), join(out, 'g2p-en', file));
mkdirSync(join(out, 'digits'), { recursive: true });
for (const file of ['config.json', 'model.safetensors', 'metrics.json']) copyFileSync(join(here, 'models', 'digits', file), join(out, 'digits', file));
for (const file of readdirSync(wasmDist).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDist, file), join(out, file));
console.log(`copied the models and the .wasm files into ${out}`);
