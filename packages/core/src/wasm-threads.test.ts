import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { MieBackendError } from './errors';
import { wasmThreadsFromEnvironment } from './wasm-threads';

// Threads are fixed when the wasm module first initialises, and whether the process exits by
// itself is only visible from outside: each case runs core's sources in a fresh Node process
// (TypeScript transpiled on load by a require hook).
const CHILD = `
const ts = require('typescript');
const fs = require('fs');
require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, isolatedModules: true, declaration: false }, fileName: filename });
  module._compile(outputText, filename);
};
const { setBackend, tf } = require('./src/index.ts');
(async () => {
  const device = await setBackend('wasm');
  let state = 7;
  const random = (n) => Array.from({ length: n }, () => ((state = (state * 16807) % 2147483647) / 2147483647) - 0.5);
  const [m, k, n] = [96, 160, 72];
  const a = random(m * k), b = random(k * n);
  const reference = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let s = 0; for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j]; reference[i * n + j] = s; }
  const A = tf.tensor2d(a, [m, k]), B = tf.tensor2d(b, [k, n]);
  // Plain, transposed (the backward pass's shapes) and batched products.
  const plain = tf.matMul(A, B).dataSync();
  const transposed = tf.matMul(A.transpose(), B.transpose(), true, true).dataSync();
  const batched = tf.matMul(tf.stack([A, A]), B).dataSync().slice(m * n);
  const error = (values) => Math.max(...Array.from(values, (v, i) => Math.abs(v - reference[i])));
  console.log(JSON.stringify({ threads: device.threads, matmul: device.matmul, plain: error(plain), transposed: error(transposed), batched: error(batched) }));
})();
`;

function runChild(env: Record<string, string>): { status: number | null; signal: string | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['-e', CHILD], {
    cwd: path.resolve(__dirname, '..'),
    env: { ...process.env, MIE_BLAS: '0', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

describe('threaded wasm (MIE_WASM_THREADS)', () => {
  it('runs the threaded module with the requested threads, computes exact products, and the process exits by itself', () => {
    const result = runChild({ MIE_WASM_THREADS: '2' });
    // A worker left referenced would keep the process alive until the timeout kills it.
    expect(result.signal).toBeNull();
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout.trim().split('\n').pop()!);
    expect(report.threads).toBe(2);
    expect(report.matmul).toBe('xnnpack');
    for (const key of ['plain', 'transposed', 'batched']) expect(report[key]).toBeLessThan(1e-4);
  });

  it('stays single-threaded without the variable', () => {
    const result = runChild({ MIE_WASM_THREADS: '' });
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').pop()!).threads).toBe(1);
  });

  it('rejects a malformed thread count, naming the variable', () => {
    const previous = process.env.MIE_WASM_THREADS;
    try {
      for (const bad of ['two', '0', '1.5', '-2', '1000']) {
        process.env.MIE_WASM_THREADS = bad;
        expect(() => wasmThreadsFromEnvironment()).toThrow(MieBackendError);
        expect(() => wasmThreadsFromEnvironment()).toThrow(`MIE_WASM_THREADS environment variable must be an integer from 1 to 64. Received: "${bad}"`);
      }
      process.env.MIE_WASM_THREADS = '3';
      expect(wasmThreadsFromEnvironment()).toBe(3);
    } finally {
      if (previous === undefined) delete process.env.MIE_WASM_THREADS;
      else process.env.MIE_WASM_THREADS = previous;
    }
  });
});
