import { MieConfigError, MieShapeError, setBackend, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { RMSNorm, RMS_NORM_DEFAULT_EPS, type RMSNormOptions } from './rms-norm';
import { describeFixtureParity, loadFixture } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py (torch.nn.RMSNorm's formula: PyTorch 1.13 predates it).
const cases = loadFixture('rms-norm');

describeFixtureParity('RMSNorm matches the PyTorch reference', cases, (options) => new RMSNorm(options as unknown as RMSNormOptions));

describe('RMSNorm', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('passes the module battery', async () => {
    const factory = () => {
      const norm = new RMSNorm({ normalizedShape: 6, eps: 1e-6 });
      const weight = tf.linspace(0.5, 1.5, 6);
      norm.loadStateDict({ weight });
      weight.dispose();
      return norm;
    };
    await runModuleTest(factory, () => [tf.randomNormal([2, 3, 6], 0, 1, 'float32', 8)], { expectedParameterCount: 6 });
  });

  it('defaults to PyTorch eps (float32 machine epsilon) and a learned weight of ones', () => {
    expect(RMS_NORM_DEFAULT_EPS).toBe(1.1920928955078125e-7);
    const norm = new RMSNorm({ normalizedShape: 3 });
    expect(norm.config).toEqual({ normalizedShape: 3, eps: RMS_NORM_DEFAULT_EPS, elementwiseAffine: true });
    expect(Object.keys(norm.stateDict())).toEqual(['weight']);
    expect(Array.from(norm.weight!.dataSync())).toEqual([1, 1, 1]);
    norm.dispose();
  });

  it('gives unit root mean square per row, without centring', () => {
    const norm = new RMSNorm({ normalizedShape: 8, elementwiseAffine: false });
    const rms = tf.tidy(() => tf.sqrt(tf.mean(tf.square(norm.forward(tf.randomNormal([4, 8], 3, 5, 'float32', 1))), -1)).arraySync() as number[]);
    rms.forEach((v) => expect(v).toBeCloseTo(1, 5));
    const y = tf.tidy(() => norm.forward(tf.fill([1, 8], 2)));
    expect(Array.from(y.dataSync())).toEqual(new Array(8).fill(1).map(() => expect.closeTo(1, 6)));
    y.dispose();
    norm.dispose();
  });

  it('maps zeros to zeros (no NaN)', () => {
    const norm = new RMSNorm({ normalizedShape: 3 });
    const y = tf.tidy(() => norm.forward(tf.zeros([2, 3])));
    expect(Array.from(y.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    y.dispose();
    norm.dispose();
  });

  it('rejects a wrong last dimension and a wrong dtype', () => {
    const norm = new RMSNorm({ normalizedShape: 4 });
    const x = tf.ones([3]);
    const bools = tf.ones([4], 'bool');
    expect(() => norm.forward(x)).toThrow(MieShapeError);
    expect(() => norm.forward(x)).toThrow('RMSNorm: input x must have shape [..., 4] (last dimension = normalizedShape). Received: tensor float32[3].');
    expect(() => norm.forward(bools)).toThrow(/RMSNorm: input x must have dtype float32.*Received: tensor bool\[4\]/);
    tf.dispose([x, bools]);
    norm.dispose();
  });

  it.each<[string, unknown, string]>([
    ['normalizedShape -1', { normalizedShape: -1 }, 'RMSNorm: option "normalizedShape" must be a positive integer. Received: -1.'],
    ['eps negative', { normalizedShape: 4, eps: -1e-6 }, 'RMSNorm: option "eps" must be a finite number > 0. Received: -0.000001.'],
    ['eps Infinity', { normalizedShape: 4, eps: Infinity }, 'RMSNorm: option "eps" must be a finite number > 0. Received: Infinity.'],
    ['elementwiseAffine null', { normalizedShape: 4, elementwiseAffine: null }, 'RMSNorm: option "elementwiseAffine" must be a boolean. Received: null.'],
  ])('rejects %s', (_label, options, message) => {
    expect(() => new RMSNorm(options as RMSNormOptions)).toThrow(MieConfigError);
    expect(() => new RMSNorm(options as RMSNormOptions)).toThrow(message);
  });
});
