import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import fc from 'fast-check';
import { childReport, runWasmChild } from './__tests__/wasm-child';
import { setBackend } from './backend';
import { MieBackendError } from './errors';
import {
  gemmKernel,
  gemmThreads,
  gemmThreadsWanted,
  gemvKeptBytes,
  loadSimdGemm,
  setParallelMinGemvWeights,
  setParallelMinMacs,
  setSimdModuleLoaded,
  simdColumnSums,
  simdGemm,
  simdGemvT,
  startGemmPool,
  stopGemmPool,
  wasmAdamWUpdate,
  wasmExpAffineRows,
  wasmLayerNorm,
  wasmLayerNormGrad,
  wasmRowExpStats,
} from './simd-gemm';
import * as builds from './simd-gemm-module';
import { GEMM_SOURCE_SHA256 } from './simd-gemm-module';
import { tf } from './tfjs';

interface WasmApi {
  Module: { new (b: Uint8Array): object; imports(m: object): unknown[]; exports(m: object): Array<{ name: string }> };
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBufferLike };
  validate(b: Uint8Array): boolean;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const BUILDS = {
  simd: builds.GEMM_SIMD_WASM_BASE64,
  relaxed: builds.GEMM_RELAXED_WASM_BASE64,
  simdShared: builds.GEMM_SIMD_SHARED_WASM_BASE64,
  relaxedShared: builds.GEMM_RELAXED_SHARED_WASM_BASE64,
};
const bytesOf = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'));
const relaxedAvailable = wasm.validate(bytesOf(builds.GEMM_RELAXED_WASM_BASE64));

/**
 * A stand-in for the threaded backend: a shared memory with a bump allocator (the GEMM only
 * needs `asm.memory`/`wasmMemory`, `_malloc` and `_free`).
 */
function sharedBackend(pages: number): { backend: BackendWasm; heap: () => Float32Array; malloc(bytes: number): number } {
  const memory = new wasm.Memory({ initial: pages, maximum: pages, shared: true });
  let next = 1024;
  const malloc = (bytes: number) => {
    const at = next;
    next = Math.ceil((next + bytes) / 16) * 16;
    return next > pages * 65536 ? 0 : at;
  };
  return { backend: { wasm: { wasmMemory: memory, _malloc: malloc, _free: () => undefined } } as unknown as BackendWasm, heap: () => new Float32Array(memory.buffer), malloc };
}

const heapOffset = (t: tf.Tensor) => (tf.backend() as unknown as { dataIdMap: { get(id: unknown): { memoryOffset: number } } }).dataIdMap.get(t.dataId).memoryOffset;

describe('the SIMD GEMM module', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  it('was compiled from the committed native/gemm.c in four builds (rebuild: node scripts/build-gemm.mjs)', () => {
    const source = readFileSync(path.resolve(__dirname, '..', 'native', 'gemm.c'));
    expect(createHash('sha256').update(source).digest('hex')).toBe(GEMM_SOURCE_SHA256);
    for (const [name, base64] of Object.entries(BUILDS)) {
      const bytes = bytesOf(base64);
      if (name.startsWith('relaxed') && !relaxedAvailable) {
        expect(wasm.validate(bytes)).toBe(false); // an engine without relaxed SIMD refuses it: the plain build is used
        continue;
      }
      const module = new wasm.Module(bytes);
      // It owns no memory: the only import is the backend's (or the pool's) heap.
      expect(wasm.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      expect(wasm.Module.exports(module).map((e) => e.name).sort()).toEqual(['adamw_update', 'column_sums', 'dropout_apply', 'exp_affine_rows', 'gemm', 'gemv_t', 'layer_norm_grad_rows', 'layer_norm_rows', 'row_exp_stats', 'work_floats']);
    }
    // The shared builds accept only a shared memory, the private ones only a private memory.
    const shared = new wasm.Memory({ initial: 1, maximum: 1, shared: true });
    const own = new wasm.Memory({ initial: 1 });
    const { Instance } = (globalThis as unknown as { WebAssembly: { Instance: new (m: object, i: object) => object } }).WebAssembly;
    expect(() => new Instance(new wasm.Module(bytesOf(BUILDS.simdShared)), { env: { memory: shared } })).not.toThrow();
    expect(() => new Instance(new wasm.Module(bytesOf(BUILDS.simdShared)), { env: { memory: own } })).toThrow();
    expect(() => new Instance(new wasm.Module(bytesOf(BUILDS.simd)), { env: { memory: shared } })).toThrow();
  });

  it('runs relaxed SIMD exactly where the engine validates it, unless MIE_RELAXED_SIMD=0', () => {
    expect(gemmKernel()).toBe(relaxedAvailable ? 'relaxed-simd' : 'simd');
    const forced = runWasmChild({ MIE_RELAXED_SIMD: '0' });
    expect(forced.status).toBe(0);
    expect(childReport(forced).gemmKernel).toBe('simd');
  });

  it('computes with relaxed SIMD (fused multiply-add) where Node enables it, threaded, to float32 accuracy', () => {
    // Node 20 validates relaxed SIMD behind a flag; Node 22+ by default, and refuses the flag.
    const result = runWasmChild({ MIE_THREADS: '2' }, relaxedAvailable ? [] : ['--experimental-wasm-relaxed-simd']);
    expect(result.stderr).not.toMatch(/Error/);
    expect(result.status).toBe(0);
    const report = childReport(result);
    expect(report).toMatchObject({ matmul: 'simd', gemmKernel: 'relaxed-simd', threads: 2 });
    for (const key of ['plain', 'transposed', 'batched']) expect(report[key]).toBeLessThan(1e-4);
  });

  it('passes its self-check on the wasm backend, on a shared heap (the threaded build), and refuses a backend without a usable memory', () => {
    expect(loadSimdGemm(tf.backend() as BackendWasm)).toBe(true);
    const noMemory = { wasm: { asm: {}, _malloc: () => 1024, _free: () => undefined } } as unknown as BackendWasm;
    expect(loadSimdGemm(noMemory)).toBe(false);
    expect(loadSimdGemm(sharedBackend(64).backend)).toBe(true); // the shared build, in place
    expect(loadSimdGemm(sharedBackend(1).backend)).toBe(false); // no room for its packing scratch
  });

  it.each(['one thread', 'the pool (operands copied to its memory)'])('computes op(A) op(B) for any shapes, transposes and batch strides (float64 reference): %s', async (mode) => {
    const backend = tf.backend() as BackendWasm;
    const threaded = mode !== 'one thread';
    if (threaded) expect(await startGemmPool(backend, 3)).toBe(3); // 3: blocks of uneven sizes
    const previous = setParallelMinMacs(threaded ? 0 : Infinity); // split every product, however small
    try {
      propertyOfGemm(backend, (values) => tf.tensor1d(values), heapOffset, (t) => t.dataSync(), (ts) => tf.dispose(ts));
    } finally {
      setParallelMinMacs(previous);
      if (threaded) stopGemmPool(backend);
    }
    expect(gemmThreads(backend)).toBe(1);
  });

  it('computes in place on a shared heap with the pool (the threaded build), for any shapes', async () => {
    const { backend, heap, malloc } = sharedBackend(256);
    expect(await startGemmPool(backend, 2)).toBe(2);
    const previous = setParallelMinMacs(0);
    try {
      // Tensors as offsets into the shared heap.
      const offsets = new Map<object, number>();
      const make = (values: Float32Array) => {
        const data = Float32Array.from(values);
        const at = malloc(4 * data.length);
        heap().set(data, at / 4);
        const handle = { length: data.length };
        offsets.set(handle, at);
        return handle;
      };
      propertyOfGemm(backend, make, (t) => offsets.get(t)!, (t) => heap().slice(offsets.get(t)! / 4, offsets.get(t)! / 4 + t.length), () => undefined, 60);
    } finally {
      setParallelMinMacs(previous);
      stopGemmPool(backend);
    }
  });

  /** `x [m, k] wᵀ` (w `[n, k]`) in float64. */
  const gemvReference = (x: Float32Array, w: Float32Array, m: number, n: number, k: number) => {
    const out = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) out[i * n + j] += x[i * k + p] * w[j * k + p];
    return out;
  };
  const gemvCase = fc.record({ m: fc.integer({ min: 1, max: 4 }), n: fc.integer({ min: 1, max: 70 }), k: fc.integer({ min: 1, max: 80 }), seed: fc.integer({ min: 1, max: 1000 }) });

  it.each(['one thread', 'the pool (weight rows kept in its memory)'])('computes x Wᵀ for a few rows, any n and k (float64 reference): %s', async (mode) => {
    const backend = tf.backend() as BackendWasm;
    const threaded = mode !== 'one thread';
    if (threaded) expect(await startGemmPool(backend, 3)).toBe(3);
    const previous = setParallelMinGemvWeights(threaded ? 0 : Infinity);
    try {
      for (const { m, n, k, seed } of fc.sample(gemvCase, { numRuns: 120, seed: 5 })) {
        const x = tf.randomNormal([m, k], 0, 1, 'float32', seed);
        const w = tf.randomNormal([n, k], 0, 1, 'float32', seed + 1);
        const expected = gemvReference(x.dataSync() as Float32Array, w.dataSync() as Float32Array, m, n, k);
        // Three calls: the first unsplit (a weight is kept the second time it is seen), then kept.
        for (let call = 0; call < 3; call++) {
          const out = tf.zeros([m, n]);
          simdGemvT(backend, heapOffset(x), heapOffset(w), heapOffset(out), m, n, k, w.dataId);
          const got = out.dataSync();
          for (let i = 0; i < m * n; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(expected[i])) * Math.sqrt(k));
          out.dispose();
        }
        tf.dispose([x, w]);
      }
    } finally {
      setParallelMinGemvWeights(previous);
      if (threaded) stopGemmPool(backend);
    }
  });

  it('never reads a freed weight\'s kept copy: a new weight in its memory gives its own product', async () => {
    const backend = tf.backend() as BackendWasm;
    expect(await startGemmPool(backend, 2)).toBe(2);
    const previous = setParallelMinGemvWeights(0);
    try {
      const x = tf.ones([1, 64]);
      const kept: number[] = [];
      for (let round = 1; round <= 4; round++) {
        const w = tf.fill([32, 64], round); // freed each round: the next one may take its heap bytes
        for (let call = 0; call < 3; call++) {
          const out = tf.zeros([1, 32]);
          simdGemvT(backend, heapOffset(x), heapOffset(w), heapOffset(out), 1, 32, 64, w.dataId);
          expect(Array.from(out.dataSync())).toEqual(new Array(32).fill(64 * round));
          out.dispose();
        }
        kept.push(gemvKeptBytes(backend));
        w.dispose();
      }
      // The workers' half of one weight (16 rows of 64 floats): freed weights' copies are dropped.
      expect(kept).toEqual([4096, 4096, 4096, 4096]);
      x.dispose();
    } finally {
      setParallelMinGemvWeights(previous);
      stopGemmPool(backend);
    }
  });

  it('computes x Wᵀ in place on a shared heap with the pool (the threaded build)', async () => {
    const { backend, heap, malloc } = sharedBackend(64);
    expect(await startGemmPool(backend, 2)).toBe(2);
    const previous = setParallelMinGemvWeights(0);
    try {
      for (const { m, n, k, seed } of fc.sample(gemvCase, { numRuns: 40, seed: 6 })) {
        const random = (count: number, s: number) => Float32Array.from({ length: count }, (_, i) => Math.sin(i * 1.3 + s));
        const x = random(m * k, seed);
        const w = random(n * k, seed + 1);
        const [xAt, wAt, outAt] = [malloc(4 * x.length), malloc(4 * w.length), malloc(4 * m * n)];
        heap().set(x, xAt / 4);
        heap().set(w, wAt / 4);
        simdGemvT(backend, xAt, wAt, outAt, m, n, k, {});
        const got = heap().slice(outAt / 4, outAt / 4 + m * n);
        const expected = gemvReference(x, w, m, n, k);
        for (let i = 0; i < m * n; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(expected[i])) * Math.sqrt(k));
      }
      expect(gemvKeptBytes(backend)).toBe(0); // in place: nothing copied
    } finally {
      setParallelMinGemvWeights(previous);
      stopGemmPool(backend);
    }
  });

  it('reads MIE_THREADS, refusing a malformed count with the variable named', () => {
    const previous = process.env.MIE_THREADS;
    try {
      for (const bad of ['two', '0', '1.5', '-2', '65']) {
        process.env.MIE_THREADS = bad;
        expect(() => gemmThreadsWanted()).toThrow(MieBackendError);
        expect(() => gemmThreadsWanted()).toThrow(`MIE_THREADS environment variable must be an integer from 1 to 64. Received: "${bad}"`);
      }
      process.env.MIE_THREADS = '3';
      expect(gemmThreadsWanted()).toBe(3);
      delete process.env.MIE_THREADS;
      expect(gemmThreadsWanted()).toBeGreaterThanOrEqual(1);
    } finally {
      if (previous === undefined) delete process.env.MIE_THREADS;
      else process.env.MIE_THREADS = previous;
    }
  });

  it('leaves nothing behind: no tensors, and the backend computes as before', async () => {
    const backend = tf.backend() as BackendWasm;
    await startGemmPool(backend, 2);
    const previous = setParallelMinMacs(0);
    try {
      const a = tf.randomNormal([70, 90]);
      const b = tf.randomNormal([90, 50]);
      const before = tf.memory().numTensors;
      const product = tf.tidy(() => tf.matMul(a, b).arraySync());
      expect(tf.memory().numTensors).toBe(before);
      setParallelMinMacs(Infinity);
      const single = tf.tidy(() => tf.matMul(a, b).arraySync());
      expect(product).toEqual(single); // each block sums in the same order as one thread would
      tf.dispose([a, b]);
    } finally {
      setParallelMinMacs(previous);
      stopGemmPool(backend);
    }
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

  it('AdamW update: bit for bit the float32 op-by-op update, SIMD groups and the tail, inputs untouched', () => {
    const backend = tf.backend() as BackendWasm;
    const f = Math.fround;
    const scalars = { beta1: 0.9, beta2: 0.999, eps: 1e-8, decayFactor: 1 - 0.01 * 0.1, stepSize: 0.01 / (1 - 0.9 ** 3), biasCorrection2Sqrt: Math.sqrt(1 - 0.999 ** 3) };
    for (const n of [1, 3, 4, 7, 1029]) {
      const wave = (scale: number, phase: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.61 + phase) * scale);
      const [p, g, m] = [wave(2, 0), wave(0.3, 1), wave(0.05, 2)];
      const v = Float32Array.from(wave(0.01, 3), Math.abs);
      const tensors = [p, g, m, v].map((values) => tf.tensor1d(values));
      const outputs = wasmAdamWUpdate(backend, { param: tensors[0], grad: tensors[1], m: tensors[2], v: tensors[3] }, scalars)!;
      expect(outputs).toHaveLength(3);
      const [p2, m2, v2] = outputs.map((info) => backend.readSync(info.dataId) as Float32Array);
      const [b1, b2, c1, c2] = [f(scalars.beta1), f(scalars.beta2), f(1 - f(scalars.beta1)), f(1 - f(scalars.beta2))];
      for (let i = 0; i < n; i++) {
        const mi = f(f(m[i] * b1) + f(c1 * g[i]));
        const vi = f(f(v[i] * b2) + f(c2 * f(g[i] * g[i])));
        const denominator = f(f(f(Math.sqrt(vi)) / f(scalars.biasCorrection2Sqrt)) + f(scalars.eps));
        const pi = f(f(p[i] * f(scalars.decayFactor)) + f(f(-scalars.stepSize) * f(mi / denominator)));
        expect([m2[i], v2[i], p2[i]]).toEqual([mi, vi, pi]);
      }
      tensors.forEach((t, i) => expect(Array.from(t.dataSync())).toEqual(Array.from([p, g, m, v][i])));
      for (const info of outputs) backend.disposeData(info.dataId);
      tf.dispose(tensors);
    }
  });

  it('row exp statistics: max, sum of e^(x - max) and sum per row against float64, every tail length, NaN and -Infinity', () => {
    const backend = tf.backend() as BackendWasm;
    for (const [rows, cols] of [[1, 1], [2, 3], [3, 5], [4, 7], [2, 8], [3, 13], [5, 1000], [2, 10003]]) {
      const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * 30 - (i % 7));
      if (cols > 2) values[cols - 1] = -Infinity; // an exponential of exactly 0
      if (rows > 2) values[2 * cols + cols - 1] = Number.NaN; // the third row's tail holds a NaN
      const x = tf.tensor2d(values, [rows, cols]);
      const stats = wasmRowExpStats(backend, x)!;
      for (let r = 0; r < rows; r++) {
        const row = Array.from(values.subarray(r * cols, (r + 1) * cols));
        if (row.some(Number.isNaN)) {
          expect([stats.max[r], stats.sumExp[r], stats.sum[r]].every(Number.isNaN)).toBe(true);
          continue;
        }
        const max = Math.max(...row);
        const sumExp = row.reduce((a, v) => a + Math.exp(v - max), 0);
        const sum = row.reduce((a, v) => a + (v === -Infinity ? 0 : v), 0);
        expect(stats.max[r]).toBe(max);
        expect(Math.abs(stats.sumExp[r] - sumExp) / sumExp).toBeLessThan(3e-7);
        if (!row.includes(-Infinity)) expect(Math.abs(stats.sum[r] - sum)).toBeLessThan(1e-6 * row.reduce((a, v) => a + Math.abs(v), 1));
        else expect(stats.sum[r]).toBe(-Infinity);
      }
      x.dispose();
    }
  });

  it('exp affine rows: scale e^(x - shift) + offset per row against float64, every tail length, underflow to offset', () => {
    const backend = tf.backend() as BackendWasm;
    for (const [rows, cols] of [[1, 1], [2, 2], [3, 3], [2, 4], [3, 9], [2, 1003]]) {
      const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.cos(i * 0.53) * 20 - (i % 11) * 10);
      values[0] = -Infinity;
      const shift = Float32Array.from({ length: rows }, (_, r) => 5 - r);
      const scale = Float32Array.from({ length: rows }, (_, r) => 0.5 + r);
      const offset = Float32Array.from({ length: rows }, (_, r) => -0.25 * r);
      const x = tf.tensor2d(values, [rows, cols]);
      const info = wasmExpAffineRows(backend, x, shift, scale, offset)!;
      expect(info.shape).toEqual([rows, cols]);
      const out = backend.readSync(info.dataId) as Float32Array;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < cols; j++) {
          // x - shift rounds to float32 first, as in every float32 softmax.
          const term = scale[r] * Math.exp(Math.fround(values[r * cols + j] - shift[r]));
          expect(Math.abs(out[r * cols + j] - (term + offset[r]))).toBeLessThanOrEqual(3e-7 * (Math.abs(term) + Math.abs(offset[r])) + 1e-37);
        }
      }
      expect(() => wasmExpAffineRows(backend, x, shift.subarray(1), scale, offset)).toThrow(MieBackendError);
      backend.disposeData(info.dataId);
      x.dispose();
    }
  });

  it('layer norm forward and backward against float64, every tail length; rows far from zero', () => {
    const backend = tf.backend() as BackendWasm;
    const cases: Array<[number, number, boolean]> = [[1, 1, false], [2, 3, false], [3, 6, false], [5, 8, false], [4, 13, false], [3, 512, false], [2, 1027, false], [3, 64, true], [2, 7, true]];
    for (const [rows, n, far] of cases) {
      // Far from zero (mean 1e4, spread 1e-2) the forward must keep the deviations.
      const x = Float32Array.from({ length: rows * n }, (_, i) => (far ? 1e4 + 1e-2 * Math.sin(i * 1.7) : Math.sin(i * 0.71) * 3 + (i % 5) * 0.2));
      const w = Float32Array.from({ length: n }, (_, j) => 0.5 + j / n);
      const b = Float32Array.from({ length: n }, (_, j) => 0.3 - j / (2 * n));
      const dy = Float32Array.from({ length: rows * n }, (_, i) => Math.cos(i * 0.37));
      const eps = 1e-5;
      const [tx, tw, tb, tdy] = [tf.tensor2d(x, [rows, n]), tf.tensor1d(w), tf.tensor1d(b), tf.tensor2d(dy, [rows, n])];
      const y = backend.makeOutput([rows, n], 'float32');
      const mean = backend.makeOutput([rows], 'float32');
      const rstd = backend.makeOutput([rows], 'float32');
      expect(wasmLayerNorm(backend, { x: tx, weight: tw, bias: tb }, { y, mean, rstd }, eps)).toBe(true);
      const dx = backend.makeOutput([rows, n], 'float32');
      const dweight = backend.makeOutput([n], 'float32');
      const dbias = backend.makeOutput([n], 'float32');
      expect(wasmLayerNormGrad(backend, { dy: tdy, x: tx, weight: tw, mean, rstd }, { dx, dweight, dbias })).toBe(true);
      const read = (info: tf.TensorInfo) => backend.readSync(info.dataId) as Float32Array;
      const [gy, gdx, gdw, gdb] = [read(y), read(dx), read(dweight), read(dbias)];
      const refDw = new Float64Array(n);
      const refDb = new Float64Array(n);
      for (let r = 0; r < rows; r++) {
        const row = Array.from(x.subarray(r * n, (r + 1) * n));
        const m = row.reduce((a, v) => a + v, 0) / n;
        const s = 1 / Math.sqrt(row.reduce((a, v) => a + (v - m) ** 2, 0) / n + eps);
        const xhat = row.map((v) => (v - m) * s);
        const e = xhat.map((_, j) => dy[r * n + j] * w[j]);
        const meanE = e.reduce((a, v) => a + v, 0) / n;
        const meanEX = e.reduce((a, v, j) => a + v * xhat[j], 0) / n;
        for (let j = 0; j < n; j++) {
          expect(Math.abs(gy[r * n + j] - (xhat[j] * w[j] + b[j]))).toBeLessThan(2e-5 * (1 + Math.abs(xhat[j])));
          if (!far) expect(Math.abs(gdx[r * n + j] - s * (e[j] - meanE - xhat[j] * meanEX))).toBeLessThan(2e-5 * s * (1 + Math.abs(e[j])));
          refDw[j] += dy[r * n + j] * xhat[j];
          refDb[j] += dy[r * n + j];
        }
      }
      for (let j = 0; j < n; j++) {
        if (!far) expect(Math.abs(gdw[j] - refDw[j])).toBeLessThan(1e-5 * (1 + Math.abs(refDw[j])));
        expect(Math.abs(gdb[j] - refDb[j])).toBeLessThan(1e-6 * (1 + Math.abs(refDb[j])));
      }
      for (const info of [y, mean, rstd, dx, dweight, dbias]) backend.disposeData(info.dataId);
      tf.dispose([tx, tw, tb, tdy]);
    }
  });

  it('row passes: null (or false) where the SIMD module is not loaded or the tensor is empty', () => {
    const backend = tf.backend() as BackendWasm;
    const [x, empty] = [tf.ones([2, 5]), tf.ones([0, 5])];
    expect(wasmRowExpStats(backend, empty)).toBeNull();
    expect(wasmExpAffineRows(backend, empty, [], [], [])).toBeNull();
    setSimdModuleLoaded(false);
    try {
      expect(wasmRowExpStats(backend, x)).toBeNull();
      expect(wasmExpAffineRows(backend, x, [0, 0], [1, 1], [0, 0])).toBeNull();
      const out = { y: x, mean: x, rstd: x };
      expect(wasmLayerNorm(backend, { x, weight: x, bias: x }, out, 1e-5)).toBe(false);
      expect(wasmLayerNormGrad(backend, { dy: x, x, weight: x, mean: x, rstd: x }, { dx: x, dweight: x, dbias: x })).toBe(false);
    } finally {
      setSimdModuleLoaded(true);
    }
    tf.dispose([x, empty]);
  });

  it('AdamW update: null (the caller keeps its own loop) where the SIMD module is not loaded', () => {
    const backend = tf.backend() as BackendWasm;
    const x = tf.ones([5]);
    setSimdModuleLoaded(false);
    try {
      expect(wasmAdamWUpdate(backend, { param: x, grad: x, m: x, v: x }, { beta1: 0.9, beta2: 0.999, eps: 1e-8, decayFactor: 1, stepSize: 1, biasCorrection2Sqrt: 1 })).toBeNull();
    } finally {
      setSimdModuleLoaded(true);
    }
    x.dispose();
  });
});

describe('selecting the SIMD GEMM', () => {
  it('is the default matmul path without BLAS, and exact against a float64 reference', () => {
    const result = runWasmChild({});
    expect(result.status).toBe(0);
    const report = childReport(result);
    expect(report.matmul).toBe('simd');
    for (const key of ['plain', 'transposed', 'batched']) expect(report[key]).toBeLessThan(1e-4);
  });

  it('is switched off by MIE_SIMD_GEMM=0 (XNNPACK instead)', () => {
    const result = runWasmChild({ MIE_SIMD_GEMM: '0' });
    expect(result.status).toBe(0);
    expect(childReport(result).matmul).toBe('xnnpack');
  });
});

/**
 * op(A) op(B) against a float64 loop for random shapes (ragged tiles, both transposes, batches
 * with a shared or a batched right operand); `make` places values where the GEMM reads them.
 */
function propertyOfGemm<T>(backend: BackendWasm, make: (values: Float32Array) => T, offsetOf: (t: T) => number, read: (t: T) => ArrayLike<number>, release: (ts: T[]) => void, numRuns = 150): void {
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
        const A = make(a);
        const B = make(b);
        const C = make(new Float32Array(count * m * n).fill(Number.NaN)); // every element must be written
        simdGemm(backend, { offset: offsetOf(A), transpose: ta, stride: m * k }, { offset: offsetOf(B), transpose: tb, stride: sharedB ? 0 : k * n }, { offset: offsetOf(C), stride: m * n }, m, n, k, count);
        const c = read(C);
        release([A, B, C]);
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
    { numRuns, seed: 20261128 },
  );
}
