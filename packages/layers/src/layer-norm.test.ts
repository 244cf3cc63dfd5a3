import { MieConfigError, MieShapeError, setBackend, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { LayerNorm, type LayerNormOptions } from './layer-norm';
import { describeFixtureParity, loadFixture } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py with PyTorch.
const cases = loadFixture('layer-norm');

describeFixtureParity('LayerNorm matches torch.nn.LayerNorm', cases, (options) => new LayerNorm(options as unknown as LayerNormOptions));

describe('LayerNorm', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('passes the module battery', async () => {
    // Non-trivial affine parameters, so the cpu/wasm comparison sees them.
    const factory = () => {
      const norm = new LayerNorm({ normalizedShape: 6 });
      const state = { weight: tf.linspace(0.5, 1.5, 6), bias: tf.linspace(-0.3, 0.3, 6) };
      norm.loadStateDict(state);
      tf.dispose(Object.values(state));
      return norm;
    };
    await runModuleTest(factory, () => [tf.randomNormal([2, 3, 6], 1, 2, 'float32', 8)], { expectedParameterCount: 2 * 6 });
  });

  it('has no parameters without elementwiseAffine, and its config round trips', () => {
    // (The shared battery needs at least one trainable parameter, so this case is checked here.)
    const norm = new LayerNorm({ normalizedShape: 4, elementwiseAffine: false });
    expect(norm.countParameters({ trainableOnly: false })).toBe(0);
    expect(norm.stateDict()).toEqual({});
    const twin = new LayerNorm(norm.config);
    expect(twin.config).toEqual(norm.config);
    norm.dispose();
    twin.dispose();
  });

  it('defaults to eps 1e-5 and learned weight (ones) and bias (zeros)', () => {
    const norm = new LayerNorm({ normalizedShape: 3 });
    expect(norm.config).toEqual({ normalizedShape: 3, eps: 1e-5, elementwiseAffine: true });
    expect(Array.from(norm.weight!.dataSync())).toEqual([1, 1, 1]);
    expect(Array.from(norm.bias!.dataSync())).toEqual([0, 0, 0]);
    expect(Object.keys(norm.stateDict())).toEqual(['weight', 'bias']);
    norm.dispose();
  });

  it('gives zero mean and unit (biased) variance per row', () => {
    const norm = new LayerNorm({ normalizedShape: 8 });
    const { mean, variance } = tf.tidy(() => {
      const m = tf.moments(norm.forward(tf.randomNormal([4, 8], 3, 5, 'float32', 1)), -1);
      return { mean: m.mean.arraySync() as number[], variance: m.variance.arraySync() as number[] };
    });
    mean.forEach((m) => expect(Math.abs(m)).toBeLessThan(1e-5));
    variance.forEach((v) => expect(v).toBeCloseTo(1, 4));
    norm.dispose();
  });

  it('maps a constant row to the bias (no NaN)', () => {
    const norm = new LayerNorm({ normalizedShape: 4 });
    const y = tf.tidy(() => norm.forward(tf.fill([2, 4], 7)));
    expect(Array.from(y.dataSync())).toEqual(new Array(8).fill(0));
    y.dispose();
    norm.dispose();
  });

  it('rejects a wrong last dimension and a wrong dtype', () => {
    const norm = new LayerNorm({ normalizedShape: 4 });
    const x = tf.ones([2, 5]);
    const ints = tf.ones([2, 4], 'int32');
    expect(() => norm.forward(x)).toThrow(MieShapeError);
    expect(() => norm.forward(x)).toThrow('LayerNorm: input x must have shape [..., 4] (last dimension = normalizedShape). Received: tensor float32[2, 5].');
    expect(() => norm.forward(ints)).toThrow(/LayerNorm: input x must have dtype float32/);
    tf.dispose([x, ints]);
    norm.dispose();
  });

  it.each<[string, unknown, string]>([
    ['normalizedShape missing', {}, 'LayerNorm: option "normalizedShape" must be a positive integer. Received: undefined.'],
    ['normalizedShape an array', { normalizedShape: [4] }, 'LayerNorm: option "normalizedShape" must be a positive integer. Received: [4].'],
    ['eps 0', { normalizedShape: 4, eps: 0 }, 'LayerNorm: option "eps" must be a finite number > 0. Received: 0.'],
    ['elementwiseAffine a number', { normalizedShape: 4, elementwiseAffine: 0 }, 'LayerNorm: option "elementwiseAffine" must be a boolean. Received: 0.'],
    ['an unknown option', { normalizedShape: 4, bias: false }, 'LayerNorm: unknown option "bias"; the options are normalizedShape, eps, elementwiseAffine.'],
  ])('rejects %s', (_label, options, message) => {
    expect(() => new LayerNorm(options as LayerNormOptions)).toThrow(MieConfigError);
    expect(() => new LayerNorm(options as LayerNormOptions)).toThrow(message);
  });
});
