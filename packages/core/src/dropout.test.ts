import { setBackend } from './backend';
import { DROPOUT_KERNEL, dropout, dropoutMask } from './dropout';
import { FUSED_KERNEL_BACKENDS, fusedKernelAvailable } from './fused-kernels';
import { mulberry32, nextSeed, setSeed } from './random';
import { setSimdModuleLoaded } from './simd-gemm';
import { tf } from './tfjs';

/** The mask as documented, in unsigned arithmetic with a branch: xorshift128 from mulberry32. */
function referenceMask(size: number, rate: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    let output: number;
    [state, output] = mulberry32(state);
    words.push(output >>> 0);
  }
  let [x, y, z, w] = words;
  x = (x | 1) >>> 0;
  const threshold = Math.min(0xffffffff, Math.round(rate * 4294967296));
  const mask = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const t = (x ^ (x << 11)) >>> 0;
    [x, y, z] = [y, z, w];
    w = (w ^ (w >>> 19) ^ t ^ (t >>> 8)) >>> 0;
    mask[i] = w >= threshold ? 1 / (1 - rate) : 0;
  }
  return mask;
}

describe('dropoutMask', () => {
  it('is the documented xorshift128 keep-mask, bit for bit, for any seed and rate', () => {
    for (const seed of [0, 1, 12_345, 0x7fffffff, 0xffffffff]) {
      for (const rate of [0.01, 0.1, 0.25, 0.5, 0.9]) {
        const mask = dropoutMask(10_007, rate, seed);
        const expected = referenceMask(10_007, rate, seed);
        expect(mask.length).toBe(expected.length);
        let differing = 0;
        for (let i = 0; i < mask.length; i++) if (!Object.is(mask[i], expected[i])) differing++;
        expect(differing).toBe(0);
        // The kept share is 1 - rate (10,007 draws: within 2% absolute).
        const kept = mask.filter((v) => v !== 0).length / mask.length;
        expect(Math.abs(kept - (1 - rate))).toBeLessThan(0.02);
        expect(mask.every((v) => v === 0 || v === Math.fround(1 / (1 - rate)))).toBe(true);
      }
    }
  });
});

describe.each([
  ['cpu', 'the JavaScript loop'],
  ['wasm', 'the SIMD pass'],
  ['wasm', 'the JavaScript loop'],
] as const)('the fused dropout kernel on %s with %s', (backend, variant) => {
  beforeAll(async () => {
    await setBackend(backend);
    if (variant === 'the JavaScript loop') setSimdModuleLoaded(false);
  });
  afterAll(() => setSimdModuleLoaded(true));

  it('is used by default, and switched off by MIE_FUSED_KERNELS=0', () => {
    expect(FUSED_KERNEL_BACKENDS).toContain(backend);
    expect(fusedKernelAvailable(DROPOUT_KERNEL)).toBe(true);
    expect(withoutFusedKernels(() => fusedKernelAvailable(DROPOUT_KERNEL))).toBe(false);
  });

  it('gives x * dropoutMask bit for bit, every length and rate, NaN and Infinity kept as a product would', () => {
    for (const [size, rate, seed] of [[1, 0.5, 3], [7, 0.1, 0], [1029, 0.25, 0xffffffff], [40_000, 0.9, 12_345]] as const) {
      const values = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.3) * 100);
      values[0] = Number.NaN;
      if (size > 2) values[2] = -Infinity;
      const x = tf.tensor1d(values);
      setSeed(seed);
      const y = dropout(x, rate, true);
      setSeed(seed);
      const composed = withoutFusedKernels(() => dropout(x, rate, true));
      const [got, expected] = [y.dataSync(), composed.dataSync()];
      let differing = 0;
      for (let i = 0; i < size; i++) if (!Object.is(got[i], expected[i])) differing++;
      expect(differing).toBe(0);
      tf.dispose([x, y, composed]);
    }
  });

  it('passes the gradient through the same mask, leaking nothing', () => {
    const x = tf.randomNormal([33, 17], 0, 1, 'float32', 2);
    const before = tf.memory().numTensors;
    setSeed(5);
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(dropout(input, 0.3, true), 2)))(x);
    expect(tf.memory().numTensors).toBe(before + 1);
    setSeed(5);
    const mask = dropoutMask(x.size, 0.3, nextSeed());
    expect(Array.from(dx.dataSync())).toEqual(Array.from(mask, (m) => Math.fround(2 * m)));
    tf.dispose([x, dx]);
  });

  it('takes an empty tensor', () => {
    const x = tf.zeros([0, 4]);
    const y = dropout(x, 0.5, true);
    expect(y.shape).toEqual([0, 4]);
    tf.dispose([x, y]);
  });
});

function withoutFusedKernels<T>(run: () => T): T {
  const saved = process.env.MIE_FUSED_KERNELS;
  process.env.MIE_FUSED_KERNELS = '0';
  try {
    return run();
  } finally {
    if (saved === undefined) delete process.env.MIE_FUSED_KERNELS;
    else process.env.MIE_FUSED_KERNELS = saved;
  }
}
