#!/usr/bin/env node
// Measures where splitting a product over the GEMM thread pool starts to pay: each product
// single-threaded and split, median of many calls, on the wasm backend without BLAS.
//   MIE_BLAS=0 node packages/core/scripts/gemm-threshold.mjs   (after building @mie/core)
import { createRequire } from 'node:module';

process.env.MIE_BLAS = '0';
const require = createRequire(import.meta.url);
const { setBackend, getDevice, tf } = require('../dist/index.js');
const { setParallelMinMacs } = require('../dist/simd-gemm.js');

await setBackend('wasm');
const device = getDevice();
if (device.matmul !== 'simd' || device.threads < 2) {
  console.error(`gemm-threshold: needs the SIMD GEMM with at least 2 threads (got ${device.matmul}, ${device.threads} threads)`);
  process.exit(1);
}
console.log(`threads ${device.threads}, kernel ${device.gemmKernel}`);
// [batch, m, n, k]: dense layers of small models, attention heads, and around the threshold.
const shapes = [
  [1, 64, 64, 64], [1, 64, 128, 64], [1, 96, 96, 96], [1, 128, 128, 64], [1, 128, 128, 128],
  [1, 256, 256, 64], [1, 256, 256, 256], [16, 32, 32, 32], [32, 32, 32, 64], [64, 20, 20, 64], [64, 64, 64, 64],
];
const median = (values) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)];
function time(a, b) {
  const calls = [];
  for (let i = 0; i < 5; i++) tf.tidy(() => tf.matMul(a, b));
  const start = performance.now();
  for (let i = 0; performance.now() - start < 300 || i < 20; i++) {
    const t0 = performance.now();
    tf.tidy(() => {
      tf.matMul(a, b).dataSync();
    });
    calls.push(performance.now() - t0);
  }
  return median(calls);
}
console.log('batch x [m, n, k]      MACs   1 thread ms   split ms   speed-up');
for (const [batch, m, n, k] of shapes) {
  const a = tf.randomNormal(batch > 1 ? [batch, m, k] : [m, k]);
  const b = tf.randomNormal(batch > 1 ? [batch, k, n] : [k, n]);
  setParallelMinMacs(Infinity);
  const single = time(a, b);
  setParallelMinMacs(0);
  const split = time(a, b);
  const macs = batch * m * n * k;
  console.log(`${`${batch} x [${m}, ${n}, ${k}]`.padEnd(20)} ${String(macs).padStart(9)} ${single.toFixed(3).padStart(12)} ${split.toFixed(3).padStart(10)} ${(single / split).toFixed(2).padStart(10)}`);
  tf.dispose([a, b]);
}
process.exit(0);
