import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import fc from 'fast-check';
import { runWasmChild } from './__tests__/wasm-child';
import { setBackend } from './backend';
import { loadSimdGemm, simdColumnSums, simdGemm } from './simd-gemm';
import { GEMM_SOURCE_SHA256, GEMM_WASM_BASE64 } from './simd-gemm-module';
import { tf } from './tfjs';

const heapOffset = (t: tf.Tensor) => (tf.backend() as unknown as { dataIdMap: { get(id: unknown): { memoryOffset: number } } }).dataIdMap.get(t.dataId).memoryOffset;

describe('the SIMD GEMM module', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  it('was compiled from the committed native/gemm.c (rebuild: node scripts/build-gemm.mjs)', () => {
    const source = readFileSync(path.resolve(__dirname, '..', 'native', 'gemm.c'));
    expect(createHash('sha256').update(source).digest('hex')).toBe(GEMM_SOURCE_SHA256);
    const bytes = Buffer.from(GEMM_WASM_BASE64, 'base64');
    const module = new (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object } }).WebAssembly.Module(bytes);
    const { WebAssembly: api } = globalThis as unknown as { WebAssembly: { Module: { imports(m: object): unknown[]; exports(m: object): Array<{ name: string }> } } };
    // It owns no memory: the only import is the backend's heap.
    expect(api.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    expect(api.Module.exports(module).map((e) => e.name).sort()).toEqual(['column_sums', 'gemm', 'work_floats']);
  });

  it('passes its self-check on the wasm backend and refuses a backend without a usable memory', () => {
    expect(loadSimdGemm(tf.backend() as BackendWasm)).toBe(true);
    const noMemory = { wasm: { asm: {}, _malloc: () => 1024, _free: () => undefined } } as unknown as BackendWasm;
    expect(loadSimdGemm(noMemory)).toBe(false);
    const shared = new (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => unknown } }).WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const sharedMemory = { wasm: { asm: { memory: shared }, _malloc: () => 1024, _free: () => undefined } } as unknown as BackendWasm;
    expect(loadSimdGemm(sharedMemory)).toBe(false); // the threaded build's memory: XNNPACK instead
  });

  it('computes op(A) op(B) for any shapes, transposes and batch strides (float64 reference)', () => {
    const backend = tf.backend() as BackendWasm;
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 40 }),
          n: fc.integer({ min: 1, max: 40 }),
          k: fc.integer({ min: 1, max: 300 }),
          ta: fc.boolean(),
          tb: fc.boolean(),
          count: fc.integer({ min: 1, max: 3 }),
          sharedB: fc.boolean(),
          seed: fc.integer({ min: 1, max: 1000 }),
        }),
        ({ m, n, k, ta, tb, count, sharedB, seed }) => {
          let state = seed;
          const random = (size: number) => Float32Array.from({ length: size }, () => ((state = (state * 16807) % 2147483647) / 2147483647) * 2 - 1);
          const a = random(count * m * k);
          const b = random((sharedB ? 1 : count) * k * n);
          const A = tf.tensor1d(a);
          const B = tf.tensor1d(b);
          const C = tf.fill([count * m * n], Number.NaN); // every element must be written
          simdGemm(backend, { offset: heapOffset(A), transpose: ta, stride: m * k }, { offset: heapOffset(B), transpose: tb, stride: sharedB ? 0 : k * n }, { offset: heapOffset(C), stride: m * n }, m, n, k, count);
          const c = C.dataSync();
          tf.dispose([A, B, C]);
          for (let e = 0; e < count; e++) {
            const ao = e * m * k;
            const bo = sharedB ? 0 : e * k * n;
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                let expected = 0;
                for (let p = 0; p < k; p++) expected += a[ao + (ta ? p * m + i : i * k + p)] * b[bo + (tb ? j * k + p : p * n + j)];
                const actual = c[e * m * n + i * n + j];
                if (!(Math.abs(actual - expected) <= 1e-5 * (k + Math.abs(expected)))) {
                  throw new Error(`C[${e}][${i}][${j}] = ${actual}, expected ${expected}`);
                }
              }
            }
          }
        },
      ),
      { numRuns: 150, seed: 20261128 },
    );
  });

  it('column sums match a float64 loop, including the columns after the last 16-wide strip', () => {
    const backend = tf.backend() as BackendWasm;
    for (const [rows, inner] of [[1, 1], [5, 16], [33, 37], [300, 3]]) {
      const values = Float32Array.from({ length: rows * inner }, (_, i) => Math.sin(i * 0.37) * 5);
      const x = tf.tensor1d(values);
      const out = tf.fill([inner], Number.NaN);
      simdColumnSums(backend, heapOffset(x), rows, inner, heapOffset(out));
      const sums = out.dataSync();
      for (let j = 0; j < inner; j++) {
        let expected = 0;
        for (let i = 0; i < rows; i++) expected += values[i * inner + j];
        expect(Math.abs(sums[j] - expected)).toBeLessThan(1e-4 * (1 + Math.abs(expected)));
      }
      tf.dispose([x, out]);
    }
  });
});

describe('selecting the SIMD GEMM', () => {
  it('is the default matmul path without BLAS, and exact against a float64 reference', () => {
    const result = runWasmChild({});
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout.trim().split('\n').pop()!);
    expect(report.matmul).toBe('simd');
    for (const key of ['plain', 'transposed', 'batched']) expect(report[key]).toBeLessThan(1e-4);
  });

  it('is switched off by MIE_SIMD_GEMM=0 (XNNPACK instead)', () => {
    const result = runWasmChild({ MIE_SIMD_GEMM: '0' });
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').pop()!).matmul).toBe('xnnpack');
  });
});
