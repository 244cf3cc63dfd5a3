import { FUSED_KERNEL_BACKENDS, fusedKernelAvailable, setBackend, tf } from '@mie/core';
import { withEnvironment } from '@mie/test-utils';
import { MASKED_SOFTMAX_KERNEL, SOFTMAX_GRAD_KERNEL, fusedMaskedSoftmax, fusedSoftmaxApplies } from './fused-masked-softmax';
import { buildAttentionMask, maskedSoftmax } from './masks';

/** Runs `run` with MIE_FUSED_KERNELS set to `value` (the composition under '0'). */
const withFusedKernels = <T>(value: '0' | 'all', run: () => T): T => withEnvironment('MIE_FUSED_KERNELS', value, run);

/** Largest |a - b| / (1 + |b|) (Infinity where either is NaN). */
function worstDifference(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i]));
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return worst;
}

/** The weights and the gradient of the scores for loss = sum(weights * lossWeights). */
function weightsAndGrad(scores: tf.Tensor, allowed: tf.Tensor | null, lossWeights: tf.Tensor): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const loss = (s: tf.Tensor) => tf.sum(tf.mul(maskedSoftmax(s, allowed), lossWeights));
    return [maskedSoftmax(scores, allowed), tf.grad(loss)(scores)];
  });
}

/** A float32 1/0 mask of `shape` (seeded), with the rows listed in `blockedRows` fully blocked. */
function randomMask(shape: number[], seed: number, blockedRows: number[] = []): tf.Tensor {
  return tf.tidy(() => {
    const values = tf.cast(tf.greater(tf.randomUniform(shape, 0, 1, 'float32', seed), 0.35), 'float32').dataSync().slice();
    const k = shape[shape.length - 1];
    for (const row of blockedRows) values.fill(0, row * k, (row + 1) * k);
    return tf.tensor(values, shape, 'float32');
  });
}

// [scores shape, mask shape or null, rows of the mask to block entirely]
const CASES: Array<[string, number[], number[] | null, number[]]> = [
  ['no mask', [2, 3, 4, 5], null, []],
  ['no mask, rank 2, one key', [3, 1], null, []],
  ['no mask, rank 1', [7], null, []],
  ['a full mask [b, h, q, k]', [2, 3, 4, 7], [2, 3, 4, 7], [0, 5, 23]],
  ['key padding [b, 1, 1, k]', [3, 2, 5, 6], [3, 1, 1, 6], [1]],
  ['a causal-style [1, 1, q, k]', [2, 2, 6, 6], [1, 1, 6, 6], [2]],
  ['a rank-2 mask [q, k] under rank-4 scores', [2, 3, 5, 9], [5, 9], [4]],
  ['a per-row mask [b, h, q, 1]', [2, 2, 3, 4], [2, 2, 3, 1], [1, 3]],
  ['rank 3 scores, [b, 1, k]', [4, 3, 33], [4, 1, 33], [2]],
  ['rank 5 scores', [2, 2, 2, 3, 4], [2, 1, 2, 1, 4], [0]],
];

describe.each(FUSED_KERNEL_BACKENDS)('the fused masked softmax kernels on %s', (backend) => {
  // Used by default on cpu only (faster than the composition there), tested on both: forced here.
  const previous = process.env.MIE_FUSED_KERNELS;
  beforeAll(async () => {
    await setBackend(backend);
    process.env.MIE_FUSED_KERNELS = 'all';
  });
  afterAll(() => {
    if (previous === undefined) delete process.env.MIE_FUSED_KERNELS;
    else process.env.MIE_FUSED_KERNELS = previous;
  });

  it('are registered and chosen', () => {
    expect(fusedKernelAvailable(MASKED_SOFTMAX_KERNEL)).toBe(true);
    expect(fusedKernelAvailable(SOFTMAX_GRAD_KERNEL)).toBe(true);
  });

  it.each(CASES)('equal the composition, weights and score gradients: %s', async (_, shape, maskShape, blockedRows) => {
    const scores = tf.randomNormal(shape, 0, 3, 'float32', 21);
    const lossWeights = tf.randomNormal(shape, 0, 1, 'float32', 22);
    const allowed = maskShape === null ? null : randomMask(maskShape, 23, blockedRows);
    const before = tf.memory().numTensors;
    const fused = withFusedKernels('all', () => weightsAndGrad(scores, allowed, lossWeights));
    expect(tf.memory().numTensors).toBe(before + 2);
    const composed = withFusedKernels('0', () => weightsAndGrad(scores, allowed, lossWeights));
    expect({ weights: worstDifference(fused[0], composed[0]) < 1e-6, grad: worstDifference(fused[1], composed[1]) < 1e-6 }).toEqual({ weights: true, grad: true });
    const kernels = async (value: '0' | 'all') =>
      (await tf.profile(() => withFusedKernels(value, () => tf.dispose(weightsAndGrad(scores, allowed, lossWeights))))).kernelNames;
    expect(await kernels('all')).toEqual(expect.arrayContaining([MASKED_SOFTMAX_KERNEL, SOFTMAX_GRAD_KERNEL]));
    expect(await kernels('0')).not.toContain(MASKED_SOFTMAX_KERNEL);
    tf.dispose([...fused, ...composed, scores, lossWeights, ...(allowed ? [allowed] : [])]);
  });

  it.each([
    [[1, 8, 1, 64], true],
    [[2, 8, 2, 64], true],
    [[2, 8, 2, 65], false],
  ])('uses the fused kernel by default on wasm for scores %j: %s (always on cpu)', async (shape, onWasm) => {
    const scores = tf.randomNormal(shape as number[], 0, 1, 'float32', 24);
    const allowed = randomMask([shape[0], 1, 1, shape[3]], 25);
    const names = (await tf.profile(() => withEnvironment('MIE_FUSED_KERNELS', undefined, () => tf.dispose(maskedSoftmax(scores, allowed))))).kernelNames;
    expect(names.includes(MASKED_SOFTMAX_KERNEL)).toBe(backend === 'cpu' || onWasm);
    tf.dispose([scores, allowed]);
  });

  it('gives fully blocked rows zero weights and zero, finite gradients; blocked keys get 0', () => {
    const scores = tf.tensor4d([[[[1, 2, 3], [4, 5, 6]]]]); // [1, 1, 2, 3]
    const allowed = tf.tensor4d([[[[1, 0, 1], [0, 0, 0]]]]);
    const lossWeights = tf.tensor4d([[[[1, 2, 3], [4, 5, 6]]]]);
    const [weights, grad] = weightsAndGrad(scores, allowed, lossWeights);
    const w = Array.from(weights.dataSync());
    expect(w[1]).toBe(0);
    expect(w[0] + w[2]).toBeCloseTo(1, 6);
    expect(w[0]).toBeCloseTo(1 / (1 + Math.E ** 2), 6);
    expect(w.slice(3)).toEqual([0, 0, 0]);
    const g = Array.from(grad.dataSync());
    expect(g.every(Number.isFinite)).toBe(true);
    // Zero (signed: y * (dy - sum) is -0 where dy - sum < 0).
    expect([g[1], ...g.slice(3)].map(Math.abs)).toEqual([0, 0, 0, 0]);
    tf.dispose([scores, allowed, lossWeights, weights, grad]);
  });

  it('takes bool masks and the masks buildAttentionMask makes', () => {
    const scores = tf.randomNormal([2, 2, 3, 4], 0, 1, 'float32', 5);
    const padding = tf.tensor2d([[1, 1, 1, 0], [1, 0, 0, 0]], [2, 4], 'int32');
    const allowed = buildAttentionMask('test', { keyPaddingMask: padding, causal: true }, { batch: 2, heads: 2, queryLength: 3, keyLength: 4 })!;
    const bool = tf.cast(allowed, 'bool');
    for (const mask of [allowed, bool]) {
      const fused = withFusedKernels('all', () => maskedSoftmax(scores, mask));
      const composed = withFusedKernels('0', () => maskedSoftmax(scores, mask));
      expect(worstDifference(fused, composed)).toBeLessThan(1e-6);
      tf.dispose([fused, composed]);
    }
    tf.dispose([scores, padding, allowed, bool]);
  });

  it('keeps large and tiny scores finite and NaN as NaN', () => {
    const scores = tf.tensor2d([[1e30, -1e30, 0], [-200, -300, -250], [Number.NaN, 0, 1]]);
    const result = withFusedKernels('all', () => maskedSoftmax(scores, null));
    const weights = result.dataSync();
    expect(Array.from(weights.slice(0, 4))).toEqual([1, 0, 0, 1]);
    expect(weights[4]).toBe(Math.fround(Math.exp(-100))); // a float32 subnormal
    expect(weights[5] / Math.exp(-50)).toBeCloseTo(1, 6);
    expect(Number.isNaN(weights[6])).toBe(true);
    tf.dispose([scores, result]);
  });

  it('passes no gradient into a mask (a constant)', () => {
    const scores = tf.randomNormal([2, 3], 0, 1, 'float32', 6);
    const allowed = tf.tensor2d([[1, 0, 1], [1, 1, 1]]);
    const [dScores, dAllowed] = tf.grads((s: tf.Tensor, a: tf.Tensor) => tf.sum(tf.square(fusedMaskedSoftmax(s, a))))([scores, allowed]);
    expect(dAllowed.shape).toEqual([2, 3]);
    expect(Array.from(dAllowed.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Math.abs(dScores.dataSync()[1])).toBe(0);
    tf.dispose([scores, allowed, dScores, dAllowed]);
  });

  it('applies only to float32 scores and masks that broadcast to them', () => {
    const scores = tf.zeros([2, 3, 4]);
    const ok = [null, tf.zeros([4]), tf.zeros([2, 1, 4]), tf.zeros([1, 3, 1])];
    const wrong = [tf.zeros([3]), tf.zeros([2, 2, 3, 4]), tf.zeros([3, 3, 4])];
    for (const mask of ok) expect(fusedSoftmaxApplies(scores, mask)).toBe(true);
    for (const mask of wrong) expect(fusedSoftmaxApplies(scores, mask)).toBe(false);
    const ints = tf.zeros([2, 3], 'int32');
    expect(fusedSoftmaxApplies(ints, null)).toBe(false);
    tf.dispose([scores, ints, ...ok.filter((m): m is tf.Tensor => m !== null), ...wrong]);
  });

  it('takes empty scores', () => {
    const scores = tf.zeros([0, 2, 3, 4]);
    const before = tf.memory().numTensors;
    const grad = tf.grad((s: tf.Tensor) => tf.sum(maskedSoftmax(s, null)))(scores);
    expect(grad.shape).toEqual([0, 2, 3, 4]);
    grad.dispose();
    expect(tf.memory().numTensors).toBe(before);
    scores.dispose();
  });
});
