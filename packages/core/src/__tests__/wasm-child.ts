/**
 * Runs core's sources in a fresh Node process (TypeScript transpiled on load by a require hook),
 * for what is fixed when the wasm module first initialises (threads, the matmul path) or only
 * visible from outside (whether the process exits by itself). The child selects the wasm backend
 * and prints one JSON line: its threads, matmul path, GEMM kernel and the largest error of plain,
 * transposed and batched products against a float64 reference (large enough to be split over the
 * GEMM's threads).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const CHILD = `
const ts = require('typescript');
const fs = require('fs');
require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, isolatedModules: true, declaration: false }, fileName: filename });
  module._compile(outputText, filename);
};
let stage = 'loading';
let printed = false;
// An exit before the report (an await the event loop dropped, an exit from the wasm runtime) says where.
process.on('exit', (code) => { if (!printed) process.stderr.write('child exited with code ' + code + ' before its report, at: ' + stage + '\\n'); });
const { setBackend, tf } = require('./src/index.ts');
(async () => {
  stage = 'setBackend';
  const device = await setBackend('wasm');
  stage = 'products';
  let state = 7;
  const random = (n) => Array.from({ length: n }, () => ((state = (state * 16807) % 2147483647) / 2147483647) - 0.5);
  const [m, k, n] = [128, 160, 96];
  const a = random(m * k), b = random(k * n);
  const reference = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let s = 0; for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j]; reference[i * n + j] = s; }
  const A = tf.tensor2d(a, [m, k]), B = tf.tensor2d(b, [k, n]);
  // Plain, transposed (the backward pass's shapes) and batched products.
  const plain = tf.matMul(A, B).dataSync();
  const transposed = tf.matMul(tf.transpose(A), tf.transpose(B), true, true).dataSync();
  const batched = tf.matMul(tf.stack([A, A]), B).dataSync().slice(m * n);
  const error = (values) => Math.max(...Array.from(values, (v, i) => Math.abs(v - reference[i])));
  printed = true;
  console.log(JSON.stringify({ threads: device.threads, matmul: device.matmul, gemmKernel: device.gemmKernel, plain: error(plain), transposed: error(transposed), batched: error(batched) }));
})().catch((error) => { process.stderr.write('child failed at ' + stage + ': ' + (error && error.stack || String(error)) + '\\n'); process.exitCode = 1; });
`;

/** The child's report; fails naming its status and stderr when it printed none. */
export function childReport(result: { status: number | null; stdout: string; stderr: string }): Record<string, unknown> {
  const line = result.stdout.trim().split('\n').pop() ?? '';
  if (!line.startsWith('{')) throw new Error(`the wasm child printed no report (status ${result.status}); stderr: ${result.stderr.trim() || '(empty)'}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Runs the child with `env` on top of this process's (and `MIE_BLAS=0`), with Node's `flags`. */
export function runWasmChild(env: Record<string, string>, flags: string[] = []): { status: number | null; signal: string | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [...flags, '-e', CHILD], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: { ...process.env, MIE_BLAS: '0', ...env }, // without BLAS unless asked
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

