import { FUSED_KERNEL_BACKENDS, fusedKernelAvailable, setBackend, tf } from '@mie/core';
import { clipGradNorm } from './clip-grad-norm';
import { SUM_OF_SQUARES_KERNEL, fusedSumOfSquares } from './fused-sum-of-squares';

/** Runs `run` with MIE_FUSED_KERNELS set to `value` (the composition under '0'). */
async function withFusedKernels<T>(value: '0' | '1', run: () => T | Promise<T>): Promise<T> {
  const saved = process.env.MIE_FUSED_KERNELS;
  process.env.MIE_FUSED_KERNELS = value;
  try {
    return await run();
  } finally {
    if (saved === undefined) delete process.env.MIE_FUSED_KERNELS;
    else process.env.MIE_FUSED_KERNELS = saved;
  }
}

// Ragged sizes (a scalar, an empty tensor, sizes not multiples of four) and many of them.
const SHAPES = [[], [0, 3], [1], [3], [7, 5], [2, 3, 4], [129], ...Array.from({ length: 40 }, (_, i) => [i + 1, 2])];

describe.each(FUSED_KERNEL_BACKENDS)('the fused sum of squares on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it('is registered and equals a float64 sum over every element of every tensor', () => {
    expect(fusedKernelAvailable(SUM_OF_SQUARES_KERNEL)).toBe(true);
    const tensors = SHAPES.map((shape, i) => tf.randomNormal(shape, 0.5, 2, 'float32', i + 1));
    const before = tf.memory().numTensors;
    const result = fusedSumOfSquares(tensors);
    expect(result.shape).toEqual([]);
    let expected = 0;
    for (const t of tensors) for (const v of t.dataSync()) expected += v * v;
    expect(result.dataSync()[0]).toBeCloseTo(expected, 2);
    expect(Math.abs(result.dataSync()[0] - expected) / expected).toBeLessThan(1e-7);
    result.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(tensors);
  });

  it('gives clipGradNorm the norm and the clipped gradients of the composition, in one kernel', async () => {
    const grads = Object.fromEntries(SHAPES.map((shape, i) => [`p${i}`, tf.randomNormal(shape, 0, 1, 'float32', 50 + i)]));
    const before = tf.memory().numTensors;
    const fused = await withFusedKernels('1', () => clipGradNorm(grads, 1));
    const composed = await withFusedKernels('0', () => clipGradNorm(grads, 1));
    expect(Math.abs(fused.totalNorm - composed.totalNorm) / composed.totalNorm).toBeLessThan(1e-6);
    expect(fused.totalNorm).toBeGreaterThan(1); // so the gradients are scaled
    for (const name of Object.keys(grads)) {
      const a = fused.grads[name].dataSync();
      const b = composed.grads[name].dataSync();
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-6 * (1 + Math.abs(b[i])));
    }
    tf.dispose([...Object.values(fused.grads), ...Object.values(composed.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    const kernels = async (value: '0' | '1') =>
      (await tf.profile(() => withFusedKernels(value, () => tf.dispose(Object.values(clipGradNorm(grads, 1).grads))))).kernelNames;
    const fusedKernels = await kernels('1');
    expect(fusedKernels).toContain(SUM_OF_SQUARES_KERNEL);
    expect(fusedKernels).not.toContain('Square');
    expect(await kernels('0')).not.toContain(SUM_OF_SQUARES_KERNEL);
    tf.dispose(Object.values(grads));
  });
});
