import { FUSED_KERNEL_BACKENDS, fusedKernelAvailable, setBackend, tf } from '@mie/core';
import { withEnvironment } from '@mie/test-utils';
import { LAYER_NORM_GRAD_KERNEL, LAYER_NORM_KERNEL, fusedLayerNorm } from './fused-layer-norm';
import { LayerNorm } from './layer-norm';

// On wasm the kernels use @mie/core's SIMD passes, and JavaScript loops where the backend has no
// SIMD module; `mockNoSimd` makes the passes report that, to test the loops on wasm too.
let mockNoSimd = false;
jest.mock('@mie/core', () => {
  const actual = jest.requireActual('@mie/core');
  return {
    ...actual,
    simdPassesAvailable: () => !mockNoSimd && actual.simdPassesAvailable(),
    wasmLayerNorm: (...args: unknown[]) => !mockNoSimd && actual.wasmLayerNorm(...args),
    wasmLayerNormGrad: (...args: unknown[]) => !mockNoSimd && actual.wasmLayerNormGrad(...args),
  };
});

/** Runs `run` with MIE_FUSED_KERNELS set to `value` (the composition under '0'). */
const withFusedKernels = <T>(value: '0' | 'all', run: () => T): T => withEnvironment('MIE_FUSED_KERNELS', value, run);

/** Largest |a - b| / (1 + |b|). */
function worstDifference(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  return Number.isNaN(worst) ? Infinity : worst;
}

/** Output and gradients of x, weight and bias for loss = sum(y * lossWeights). */
function valueAndGrads(norm: LayerNorm, x: tf.Tensor, lossWeights: tf.Tensor): tf.Tensor[] {
  return tf.tidy(() => {
    const loss = (input: tf.Tensor) => tf.sum(tf.mul(norm.forward(input), lossWeights)) as tf.Scalar;
    const { grads } = tf.variableGrads(() => loss(x), [norm.weight!, norm.bias!]);
    const dx = tf.grad(loss)(x);
    return [norm.forward(x), dx, grads[norm.weight!.name], grads[norm.bias!.name]];
  });
}

/** Throws, naming each, unless every difference is below `tolerance`. */
function expectBelow(differences: Record<string, number>, tolerance: number): void {
  const over = Object.entries(differences).filter(([, d]) => !(d < tolerance));
  expect(over).toEqual([]);
}

const SHAPES: number[][] = [
  [4, 8], // one block of four rows
  [7, 13], // a block and three rows left over, an odd width
  [3, 5], // fewer rows than a block
  [2, 3, 17],
  [2, 2, 2, 6],
  [9], // rank 1: one row
  [33, 128],
  [6, 1], // one feature: the variance is 0
];

const VARIANTS: Array<[(typeof FUSED_KERNEL_BACKENDS)[number], 'SIMD passes' | 'JavaScript loops']> = [
  ['cpu', 'JavaScript loops'],
  ['wasm', 'SIMD passes'],
  ['wasm', 'JavaScript loops'],
];

describe.each(VARIANTS)('the fused LayerNorm kernels on %s with %s', (backend, variant) => {
  // Not used by default on wasm without the SIMD module (see layer-norm.ts), tested there: forced here.
  const previous = process.env.MIE_FUSED_KERNELS;
  beforeAll(async () => {
    await setBackend(backend);
    process.env.MIE_FUSED_KERNELS = 'all';
    mockNoSimd = variant === 'JavaScript loops';
  });
  afterAll(() => {
    mockNoSimd = false;
    if (previous === undefined) delete process.env.MIE_FUSED_KERNELS;
    else process.env.MIE_FUSED_KERNELS = previous;
  });

  it('are registered and chosen', () => {
    expect(fusedKernelAvailable(LAYER_NORM_KERNEL)).toBe(true);
    expect(fusedKernelAvailable(LAYER_NORM_GRAD_KERNEL)).toBe(true);
  });

  it.each(SHAPES.map((shape) => [shape]))('equal the composition, values and gradients of x, weight and bias, for shape %j', async (shape) => {
    const n = shape[shape.length - 1];
    const norm = new LayerNorm({ normalizedShape: n, eps: 1e-5 });
    norm.loadStateDict({ weight: tf.linspace(0.5, 1.5, n), bias: tf.linspace(-0.3, 0.3, n) });
    const x = tf.randomNormal(shape, 0.7, 2, 'float32', 11);
    const lossWeights = tf.randomNormal(shape, 0, 1, 'float32', 12);
    const before = tf.memory().numTensors;
    const fused = withFusedKernels('all', () => valueAndGrads(norm, x, lossWeights));
    expect(tf.memory().numTensors).toBe(before + 4);
    const composed = withFusedKernels('0', () => valueAndGrads(norm, x, lossWeights));
    const names = ['y', 'dx', 'dweight', 'dbias'];
    expectBelow(Object.fromEntries(names.map((name, i) => [name, worstDifference(fused[i], composed[i])])), 2e-5);
    // The fused path really ran: its kernels appear in a profile, and not under MIE_FUSED_KERNELS=0.
    const kernels = async (value: '0' | 'all') =>
      (await tf.profile(() => withFusedKernels(value, () => tf.dispose(valueAndGrads(norm, x, lossWeights))))).kernelNames;
    expect(await kernels('all')).toEqual(expect.arrayContaining([LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL]));
    expect(await kernels('0')).not.toContain(LAYER_NORM_KERNEL);
    tf.dispose([...fused, ...composed, x, lossWeights]);
    norm.dispose();
  });

  it('takes an empty batch', () => {
    const norm = new LayerNorm({ normalizedShape: 4 });
    const x = tf.zeros([0, 4]);
    const before = tf.memory().numTensors;
    const dx = tf.grad((input: tf.Tensor) => tf.sum(norm.forward(input)))(x);
    expect(dx.shape).toEqual([0, 4]);
    dx.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    norm.dispose();
  });

  it('is as stable as a float64 two-pass reference far from zero (mean 1e4, spread 1e-2)', () => {
    const n = 64;
    const values = Float32Array.from({ length: 8 * n }, (_, i) => 1e4 + 1e-2 * Math.sin(i * 1.7));
    const x = tf.tensor2d(values, [8, n]);
    const weight = tf.ones([n]);
    const bias = tf.zeros([n]);
    const y = fusedLayerNorm(x, weight, bias, 1e-5).dataSync();
    let worst = 0;
    for (let r = 0; r < 8; r++) {
      const row = Array.from(values.subarray(r * n, (r + 1) * n));
      const mean = row.reduce((a, b) => a + b, 0) / n;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
      row.forEach((v, j) => (worst = Math.max(worst, Math.abs(y[r * n + j] - (v - mean) / Math.sqrt(variance + 1e-5)))));
    }
    expect(worst).toBeLessThan(1e-5);
    tf.dispose([x, weight, bias]);
  });

  it('leaks no tensor in a training step (forward, backward, update)', () => {
    const norm = new LayerNorm({ normalizedShape: 16 });
    const x = tf.randomNormal([5, 3, 16], 0, 1, 'float32', 4);
    const optimizer = tf.train.sgd(0.1);
    const step = () => optimizer.minimize(() => tf.sum(tf.square(norm.forward(x))) as tf.Scalar, false, norm.trainableParameters());
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    x.dispose();
    norm.dispose();
  });
});

describe.each(FUSED_KERNEL_BACKENDS)('the default choice of LayerNorm kernels on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  afterEach(() => {
    mockNoSimd = false;
  });

  // The kernel by default on cpu and on wasm with the SIMD module; without it, for inputs of at
  // most 32768 elements (a decoding step's rows), the composition's SIMD kernels above that.
  it.each([
    [[1, 1, 512], true, true],
    [[64, 512], true, true],
    [[65, 512], true, false],
  ])('input %j uses the fused kernel on wasm: %s with the SIMD module, %s without', async (shape, withSimd, withoutSimd) => {
    for (const noSimd of [false, true]) {
      mockNoSimd = noSimd;
      const onWasm = noSimd ? withoutSimd : withSimd;
      const norm = new LayerNorm({ normalizedShape: 512 });
      const x = tf.randomNormal(shape as number[], 0, 1, 'float32', 5);
      const names = (await tf.profile(() => tf.dispose(norm.forward(x)))).kernelNames;
      expect(names.includes(LAYER_NORM_KERNEL)).toBe(backend === 'cpu' || onWasm);
      expect(names.includes('Rsqrt')).toBe(!(backend === 'cpu' || onWasm));
      x.dispose();
      norm.dispose();
    }
  });
});
