import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { loadBlas } from './blas';
import { getDevice, setBackend } from './backend';
import { tf } from './tfjs';
import { PARALLEL_MIN_MACS, setParallelMinMacs, simdGemm, startGemmPool, stopGemmPool } from './simd-gemm';
import * as simdGemmModule from './simd-gemm';
import { setWasmGemm, stockWasmMatMulKernels, xnnpackGemm } from './wasm-matmul';

/**
 * [aShape, bShape, transposeA, transposeB]. Batched products of at most a few thousand
 * multiply-adds per element go to the stock kernel (faster there); the larger ones below take
 * the fast path.
 */
const CASES: Array<[number[], number[], boolean, boolean]> = [
  [[3, 20, 24], [3, 24, 16], false, false],
  [[3, 20, 24], [3, 16, 24], false, true],
  [[3, 24, 20], [3, 24, 16], true, false],
  [[3, 24, 20], [3, 16, 24], true, true],
  [[2, 2, 20, 24], [2, 2, 24, 16], false, false],
  [[3, 20, 24], [24, 16], false, false], // shared right operand: folded into one GEMM
  [[3, 24, 20], [16, 24], true, true],
  [[20, 24], [3, 24, 16], false, false], // shared left operand
  [[5, 7], [7, 3], false, false],
  [[5, 7], [3, 7], false, true],
  [[7, 5], [7, 3], true, false],
  [[7, 5], [3, 7], true, true],
  [[1, 9], [9, 1], false, false],
  [[1, 9], [5, 9], false, true], // a dense layer's x Wᵀ of one row: the few-rows kernel (SIMD, BLAS paths)
  [[4, 37], [19, 37], false, true], // four rows, n and k off every 4- and 16-wide step
  [[4, 5, 7], [4, 7, 3], false, false],
  [[4, 5, 7], [4, 3, 7], false, true],
  [[4, 7, 5], [4, 7, 3], true, false],
  [[4, 5, 7], [7, 3], false, false], // shared right operand: folded into one GEMM
  [[4, 5, 7], [3, 7], false, true],
  [[4, 7, 5], [7, 3], true, false],
  [[5, 7], [4, 7, 3], false, false], // shared left operand
  [[2, 3, 5, 7], [2, 3, 7, 4], false, false],
  [[2, 3, 7, 5], [2, 3, 4, 7], true, true],
  [[2, 1, 5, 7], [1, 3, 7, 4], false, false], // general broadcasting: left to the stock kernel
  [[1, 4, 5, 7], [4, 7, 2], false, false],
  [[3, 5, 0], [3, 0, 4], false, false], // empty contraction: zeros
  [[0, 5, 7], [0, 7, 4], false, false],
  // Larger than one block of the SIMD GEMM in every direction (KC 256, MC 128, NC 1024), ragged tiles.
  [[131, 517], [517, 1041], false, false],
  [[131, 517], [1041, 517], false, true],
  [[517, 131], [517, 1041], true, false],
  [[517, 131], [1041, 517], true, true],
  [[2, 67, 300], [2, 300, 33], false, false],
  [[2, 300, 67], [2, 33, 300], true, true],
];

const blas = loadBlas();
const PATHS = ['simd', 'simd-threads', 'xnnpack', 'blas'] as const;
type Path = (typeof PATHS)[number];

/**
 * Makes the wasm matmul kernels use `path` (BLAS only when a library loaded); `simd-threads`
 * splits every product over a 3-thread pool (blocks of uneven sizes), however small.
 */
async function usePath(path: Path): Promise<void> {
  if (path === 'blas' && blas) setWasmGemm('blas', blas.gemm);
  else if (path === 'simd' || path === 'simd-threads') setWasmGemm('simd', simdGemm);
  else setWasmGemm('xnnpack', xnnpackGemm);
  if (path === 'simd-threads') {
    expect(await startGemmPool(tf.backend() as BackendWasm, 3)).toBe(3);
    setParallelMinMacs(0);
  }
}

function reference(aShape: number[], bShape: number[], tA: boolean, tB: boolean): { a: number[]; b: number[]; out: Float32Array; shape: number[] } {
  const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
  const a = Array.from({ length: size(aShape) }, (_, i) => Math.sin(i * 1.7) * 3);
  const b = Array.from({ length: size(bShape) }, (_, i) => Math.cos(i * 0.3) * 2);
  const out = tf.tidy(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), tA, tB));
  const result = { a, b, out: out.dataSync() as Float32Array, shape: out.shape };
  out.dispose();
  return result;
}

describe.each(PATHS)('wasm matmul through %s', (path) => {
  const run = path === 'blas' && !blas ? it.skip : it;

  beforeAll(async () => {
    await setBackend('wasm');
    await usePath(path);
  });
  afterAll(async () => {
    if (path === 'simd-threads') {
      setParallelMinMacs(PARALLEL_MIN_MACS);
      stopGemmPool(tf.backend() as BackendWasm);
    }
    await setBackend('wasm'); // re-selects the default path
  });

  run.each(CASES)('matMul %j x %j (transposeA %s, transposeB %s) equals the cpu backend', async (aShape, bShape, tA, tB) => {
    await setBackend('cpu');
    const expected = reference(aShape, bShape, tA, tB);
    await setBackend('wasm');
    await usePath(path);
    const before = tf.memory().numTensors;
    const a = tf.tensor(expected.a, aShape);
    const b = tf.tensor(expected.b, bShape);
    const out = tf.matMul(a, b, tA, tB);
    expect(out.shape).toEqual(expected.shape);
    const actual = out.dataSync();
    // The worst element, scaled by its tolerance (one expect: the large cases have 136k elements).
    let worst = 0;
    for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected.out[i]) / (1e-4 * (1 + Math.abs(expected.out[i]))));
    expect(worst).toBeLessThan(1);
    tf.dispose([a, b, out]);
    expect(tf.memory().numTensors).toBe(before);
  });

  run('sends tiny batched products to the stock kernel and larger ones to the fast path', () => {
    const calls: string[] = [];
    const stock = stockWasmMatMulKernels().batchMatMul!;
    const spy = jest.spyOn(stock, 'kernelFunc');
    const product = (aShape: number[], bShape: number[]) => tf.tidy(() => tf.matMul(tf.ones(aShape), tf.ones(bShape)).dataSync()[0]);
    // Cached decoding: one query row per batch element and head.
    expect(product([64, 1, 32], [64, 32, 12])).toBe(32);
    calls.push(spy.mock.calls.length ? 'stock' : 'fast');
    spy.mockClear();
    expect(product([4, 40, 32], [4, 32, 40])).toBe(32);
    calls.push(spy.mock.calls.length ? 'stock' : 'fast');
    spy.mockRestore();
    expect(calls).toEqual(['stock', 'fast']);
  });

  run('sends 2-D products of at most four rows to the few-rows kernel (SIMD) or XNNPACK (cached decoding)', () => {
    const stock = stockWasmMatMulKernels().batchMatMul!;
    const spy = jest.spyOn(stock, 'kernelFunc');
    const gemv = jest.spyOn(simdGemmModule, 'simdGemvT');
    const weights = tf.ones([48, 64]);
    const route = (rows: number, transposeB: boolean) => {
      spy.mockClear();
      gemv.mockClear();
      const y = tf.tidy(() => tf.matMul(tf.ones([rows, 64]), transposeB ? weights : tf.ones([64, 48]), false, transposeB));
      expect(y.shape).toEqual([rows, 48]);
      expect(Array.from(y.dataSync()).every((v) => v === 64)).toBe(true);
      y.dispose();
      return gemv.mock.calls.length > 0 ? 'gemv' : spy.mock.calls.length > 0 ? 'xnnpack' : path;
    };
    const routes = [1, 4, 5, 16].map((rows) => route(rows, true));
    const untransposed = route(1, false);
    spy.mockRestore();
    gemv.mockRestore();
    weights.dispose();
    // The few-rows kernel on the SIMD paths and beside a BLAS (the SIMD module is loaded there too).
    expect(routes).toEqual(path === 'xnnpack' ? ['xnnpack', 'xnnpack', 'xnnpack', 'xnnpack'] : ['gemv', 'gemv', path, path]);
    expect(untransposed).toBe('xnnpack'); // x W (not a dense layer's x Wᵀ): XNNPACK's packed path
    // MIE_GEMV=0 restores XNNPACK for the few-rows products.
    process.env.MIE_GEMV = '0';
    try {
      const spyAgain = jest.spyOn(stock, 'kernelFunc');
      const w = tf.ones([48, 64]);
      tf.tidy(() => tf.matMul(tf.ones([1, 64]), w, false, true).dataSync());
      expect(spyAgain).toHaveBeenCalled();
      spyAgain.mockRestore();
      w.dispose();
    } finally {
      delete process.env.MIE_GEMV;
    }
  });

  run('fused matmul with bias and activations equals matmul + add + activation', () => {
    const a = tf.randomNormal([3, 4, 6], 0, 1, 'float32', 1);
    const b = tf.randomNormal([5, 6], 0, 1, 'float32', 2);
    const bias = tf.randomNormal([5], 0, 1, 'float32', 3);
    for (const activation of ['linear', 'relu', 'elu', 'sigmoid', 'leakyrelu', 'relu6'] as const) {
      const fused = tf.fused.matMul({ a, b, transposeB: true, bias, activation });
      const plain = tf.tidy(() => {
        const y = tf.add(tf.matMul(a, b, false, true), bias);
        return { linear: y, relu: tf.relu(y), elu: tf.elu(y), sigmoid: tf.sigmoid(y), leakyrelu: tf.leakyRelu(y, 0.2), relu6: tf.relu6(y) }[activation];
      });
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(fused, plain))).dataSync()[0]);
      expect(diff).toBeLessThan(1e-5);
      tf.dispose([fused, plain]);
    }
    tf.dispose([a, b, bias]);
  });

  run('gradients through matMul equal the cpu backend', async () => {
    const grads = async (backend: 'cpu' | 'wasm') => {
      await setBackend(backend);
      if (backend === 'wasm') await usePath(path);
      // tfjs's BatchMatMul gradient does not reduce broadcast batches, so operands share ranks.
      const values: number[][] = [];
      for (const [aShape, bShape] of [[[6, 4], [5, 4]], [[2, 3, 4], [2, 5, 4]]]) {
        const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
        const a = tf.tensor(Array.from({ length: size(aShape) }, (_, i) => Math.sin(i)), aShape);
        const b = tf.tensor(Array.from({ length: size(bShape) }, (_, i) => Math.cos(i)), bShape);
        const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, false, true))))([a, b]);
        values.push(...g.map((t) => Array.from(t.dataSync())));
        tf.dispose([a, b, ...g]);
      }
      return values;
    };
    const cpu = await grads('cpu');
    const wasm = await grads('wasm');
    cpu.forEach((values, i) => values.forEach((v, j) => expect(Math.abs(wasm[i][j] - v)).toBeLessThan(1e-4 * (1 + Math.abs(v)))));
  });
});

it('replaces the stock kernels and reports the path in getDevice()', async () => {
  await setBackend('wasm');
  const { batchMatMul, fusedMatMul } = stockWasmMatMulKernels();
  expect(batchMatMul).toBeDefined();
  expect(fusedMatMul).toBeDefined();
  expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).not.toBe(batchMatMul!.kernelFunc);
  expect(['blas', 'simd']).toContain(getDevice().matmul);
  if (getDevice().matmul === 'blas') expect(getDevice().blasLibrary).toMatch(/blas/);
});
