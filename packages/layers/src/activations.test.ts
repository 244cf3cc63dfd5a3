import { MieConfigError, setBackend, tf } from '@mie/core';
import { ACTIVATIONS, checkActivation, gelu, getActivation, type ActivationName } from './activations';
import { FIXTURE_BACKENDS, checkAgainstFixture, loadFixture } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py with PyTorch (gelu with approximate='none').
const cases = loadFixture('activations');

describe.each(FIXTURE_BACKENDS)('activations match PyTorch on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it('covers every activation', () => {
    expect(cases.map((c) => c.name).sort()).toEqual([...ACTIVATIONS].sort());
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: values and gradients', (_name, c) => {
    expect(tf.getBackend()).toBe(backend);
    checkAgainstFixture(c, getActivation(c.options.activation as ActivationName));
  });
});

describe('gelu', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('is the exact erf form, not the tanh approximation', () => {
    // At x = 1 exact GELU is 0.841344746; the tanh approximation gives 0.841191990.
    const y = tf.tidy(() => gelu(tf.tensor1d([1])).dataSync()[0]);
    expect(y).toBeCloseTo(0.841344746, 6);
  });

  it('has the derivative Phi(x) + x phi(x)', () => {
    const xs = [-3, -1, -0.25, 0, 0.5, 2];
    const grads = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(gelu(x)))(tf.tensor1d(xs)).arraySync() as number[]);
    const erf = (v: number) => {
      // erf by Simpson's rule, independent of tf.erf.
      const n = 2000;
      const h = v / n;
      let sum = 0;
      for (let i = 0; i <= n; i++) sum += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
      return ((2 / Math.sqrt(Math.PI)) * h * sum) / 3;
    };
    xs.forEach((x, i) => {
      const expected = 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-(x * x) / 2)) / Math.sqrt(2 * Math.PI);
      expect(grads[i]).toBeCloseTo(expected, 5);
    });
  });
});

describe('getActivation', () => {
  it('returns each named function', () => {
    for (const name of ACTIVATIONS) expect(typeof getActivation(name)).toBe('function');
  });

  it('rejects an unknown name with a MieConfigError that lists the valid ones', () => {
    expect(() => getActivation('swish' as ActivationName, 'MyBlock')).toThrow(MieConfigError);
    expect(() => getActivation('swish' as ActivationName, 'MyBlock')).toThrow(
      'MyBlock: option "activation" must be one of relu, gelu, tanh, sigmoid, silu. Received: "swish".',
    );
    expect(() => checkActivation('FeedForwardBlock', 3)).toThrow('FeedForwardBlock: option "activation" must be one of relu, gelu, tanh, sigmoid, silu. Received: 3.');
  });

  it('is case sensitive, as PyTorch names are', () => {
    expect(() => getActivation('ReLU' as ActivationName)).toThrow(/Received: "ReLU"/);
  });
});
