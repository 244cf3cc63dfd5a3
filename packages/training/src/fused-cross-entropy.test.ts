import { FUSED_KERNEL_BACKENDS, fusedKernelAvailable, setBackend, tf } from '@mie/core';
import { withEnvironment } from '@mie/test-utils';
import { crossEntropyLoss, type CrossEntropyLossOptions } from './cross-entropy-loss';
import { CROSS_ENTROPY_GRAD_KERNEL, CROSS_ENTROPY_KERNEL } from './fused-cross-entropy';

// The wasm kernels use @mie/core's SIMD row passes, and JavaScript loops where the backend has
// no SIMD module; `mockNoSimd` makes the passes report that, to test the loops on wasm too.
let mockNoSimd = false;
jest.mock('@mie/core', () => {
  const actual = jest.requireActual('@mie/core');
  return {
    ...actual,
    wasmRowExpStats: (...args: unknown[]) => (mockNoSimd ? null : actual.wasmRowExpStats(...args)),
    wasmExpAffineRows: (...args: unknown[]) => (mockNoSimd ? null : actual.wasmExpAffineRows(...args)),
  };
});

/** Largest |a - b| / (1 + |b|) (Infinity where exactly one is NaN). */
function worstDifference(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]) && Number.isNaN(y[i])) continue;
    const d = Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i]));
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return worst;
}

/** The loss and the gradient of the logits for loss = sum(crossEntropyLoss(...) * weights). */
function lossAndGrad(logits: tf.Tensor, targets: tf.Tensor, options: CrossEntropyLossOptions): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const f = (x: tf.Tensor) => {
      const loss = crossEntropyLoss(x, targets, options);
      // A non-uniform upstream gradient for 'none', so that dy per row is exercised.
      return loss.rank === 0 ? loss : tf.sum(tf.mul(loss, tf.reshape(tf.linspace(0.5, 2, loss.size), loss.shape)));
    };
    return [crossEntropyLoss(logits, targets, options), tf.grad(f)(logits)];
  });
}

/** Seeded logits of `shape` with spread `scale`, and int32 targets with `ignored` at every `ignoreEvery`-th position. */
function inputs(shape: number[], scale: number, ignored: number, ignoreEvery: number): [tf.Tensor, tf.Tensor] {
  const classes = shape[shape.length - 1];
  const rows = tf.util.sizeFromShape(shape) / classes;
  const logits = tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 7), scale));
  const ids = Int32Array.from({ length: rows }, (_, i) => (ignoreEvery > 0 && i % ignoreEvery === 1 ? ignored : (i * 7919) % classes));
  return [logits, tf.tensor(ids, shape.slice(0, -1), 'int32')];
}

// [name, logits shape, logit scale, options, ignore every n-th target (0: none)]
const CASES: Array<[string, number[], number, CrossEntropyLossOptions, number]> = [
  ['rank 2, mean', [6, 11], 3, {}, 0],
  ['rank 1 (a single row)', [13], 2, { reduction: 'sum' }, 0],
  ['rank 3, ignored targets, mean', [2, 5, 7], 4, { ignoreIndex: -100 }, 3],
  ['rank 3, ignoreIndex a class, smoothing, mean', [3, 4, 9], 2, { ignoreIndex: 4, labelSmoothing: 0.1 }, 2],
  ['smoothing 0.35, none', [5, 6], 5, { labelSmoothing: 0.35, reduction: 'none' }, 2],
  ['smoothing 1, sum', [4, 10], 1, { labelSmoothing: 1, reduction: 'sum' }, 0],
  ['large logits', [3, 17], 200, { labelSmoothing: 0.2 }, 0],
  ['many classes (SIMD bodies and tails)', [7, 1003], 3, { labelSmoothing: 0.1 }, 4],
];

describe.each(FUSED_KERNEL_BACKENDS)('the fused cross-entropy kernels on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });
  afterEach(() => {
    mockNoSimd = false;
  });

  it('are registered and used by default', () => {
    expect(tf.getKernel(CROSS_ENTROPY_KERNEL, backend)).toBeDefined();
    expect(tf.getKernel(CROSS_ENTROPY_GRAD_KERNEL, backend)).toBeDefined();
    expect(fusedKernelAvailable(CROSS_ENTROPY_KERNEL)).toBe(true);
    expect(withEnvironment('MIE_FUSED_KERNELS', '0', () => fusedKernelAvailable(CROSS_ENTROPY_KERNEL))).toBe(false);
  });

  const variants = backend === 'wasm' ? (['SIMD passes', 'JavaScript loops'] as const) : (['JavaScript loops'] as const);
  describe.each(variants)('with %s', (variant) => {
    it.each(CASES)('match the composition (loss and gradient): %s', (_name, shape, scale, options, ignoreEvery) => {
      mockNoSimd = variant === 'JavaScript loops';
      const [logits, targets] = inputs(shape, scale, options.ignoreIndex ?? -100, ignoreEvery);
      const before = tf.memory().numTensors;
      const [loss, grad] = lossAndGrad(logits, targets, options);
      expect(tf.memory().numTensors).toBe(before + 2);
      const [refLoss, refGrad] = withEnvironment('MIE_FUSED_KERNELS', '0', () => lossAndGrad(logits, targets, options));
      expect(worstDifference(loss, refLoss)).toBeLessThan(2e-6);
      expect(worstDifference(grad, refGrad)).toBeLessThan(2e-6);
      tf.dispose([logits, targets, loss, grad, refLoss, refGrad]);
    });

    it('give ignored rows a zero loss and gradient whatever their logits, and NaN elsewhere where a logit is NaN', () => {
      mockNoSimd = variant === 'JavaScript loops';
      const values = Float32Array.from({ length: 3 * 6 }, (_, i) => Math.sin(i));
      values[1 * 6 + 2] = Number.NaN; // row 1 is ignored
      values[2 * 6 + 5] = Number.NaN; // row 2 is not
      const logits = tf.tensor2d(values, [3, 6]);
      const targets = tf.tensor1d([3, -100, 0], 'int32');
      const [loss, grad] = lossAndGrad(logits, targets, { reduction: 'none' });
      const l = loss.dataSync();
      expect(l[0]).toBeGreaterThan(0);
      expect(l[1]).toBe(0);
      expect(Number.isNaN(l[2])).toBe(true);
      const g = grad.dataSync();
      expect(Array.from(g.subarray(6, 12))).toEqual([0, 0, 0, 0, 0, 0]);
      expect(Array.from(g.subarray(12, 18)).every(Number.isNaN)).toBe(true);
      tf.dispose([logits, targets, loss, grad]);
    });

    it('give one class a zero loss and gradient (the composition\'s one-hot refuses depth 1)', () => {
      mockNoSimd = variant === 'JavaScript loops';
      const logits = tf.tensor2d([[3], [-2], [0.5]]);
      const targets = tf.tensor1d([0, 0, -100], 'int32');
      const [loss, grad] = lossAndGrad(logits, targets, { labelSmoothing: 0.1 });
      expect(Math.abs(loss.dataSync()[0])).toBeLessThan(1e-7);
      for (const g of grad.dataSync()) expect(Math.abs(g)).toBeLessThan(1e-7);
      tf.dispose([logits, targets, loss, grad]);
    });

    it('give NaN for a mean over only ignored targets, as PyTorch', () => {
      mockNoSimd = variant === 'JavaScript loops';
      const logits = tf.ones([2, 4]);
      const targets = tf.tensor1d([-100, -100], 'int32');
      const loss = crossEntropyLoss(logits, targets);
      expect(Number.isNaN(loss.dataSync()[0])).toBe(true);
      tf.dispose([logits, targets, loss]);
    });
  });
});
