import { INIT_TYPES, MieConfigError, MieShapeError, clearSeed, setBackend, setSeed, tf, type InitType } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { LinearLayer, type LinearLayerOptions } from './linear-layer';
import { describeFixtureParity, loadFixture } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py with PyTorch.
const cases = loadFixture('linear-layer');

afterEach(() => clearSeed());

describeFixtureParity('LinearLayer matches PyTorch', cases, (options) => new LinearLayer(options as unknown as LinearLayerOptions));

describe('LinearLayer', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each<[string, LinearLayerOptions, number]>([
    ['plain', { inFeatures: 5, outFeatures: 3 }, 5 * 3 + 3],
    ['without bias', { inFeatures: 5, outFeatures: 3, bias: false }, 5 * 3],
    ['with layer norm and dropout', { inFeatures: 5, outFeatures: 4, useLayerNorm: true, dropout: 0.2 }, 5 * 4 + 4 + 2 * 4],
    ['xavier_normal, no bias, layer norm', { inFeatures: 3, outFeatures: 2, bias: false, initType: 'xavier_normal', useLayerNorm: true }, 3 * 2 + 2 * 2],
  ])('passes the module battery: %s', async (_label, options, count) => {
    setSeed(1);
    await runModuleTest(() => new LinearLayer(options), () => [tf.randomNormal([2, 3, options.inFeatures], 0, 1, 'float32', 5)], {
      expectedParameterCount: count,
    });
  });

  it('names its state as PyTorch does', () => {
    const layer = new LinearLayer({ inFeatures: 3, outFeatures: 2, useLayerNorm: true });
    expect(layer.namedParameters().map(([name, v]) => [name, v.shape])).toEqual([
      ['weight', [2, 3]],
      ['bias', [2]],
      ['layerNorm.weight', [2]],
      ['layerNorm.bias', [2]],
    ]);
    layer.dispose();
    const noBias = new LinearLayer({ inFeatures: 3, outFeatures: 2, bias: false });
    expect(Object.keys(noBias.stateDict())).toEqual(['weight']);
    noBias.dispose();
  });

  it('fills in and keeps the defaults in config', () => {
    const layer = new LinearLayer({ inFeatures: 3, outFeatures: 2 });
    expect(layer.config).toEqual({ inFeatures: 3, outFeatures: 2, bias: true, initType: 'kaiming_uniform', dropout: 0, useLayerNorm: false });
    layer.dispose();
  });

  it('does not keep or change the options object', () => {
    const options = { inFeatures: 3, outFeatures: 2 };
    const layer = new LinearLayer(options);
    expect(options).toEqual({ inFeatures: 3, outFeatures: 2 });
    expect(layer.config).not.toBe(options);
    layer.dispose();
  });

  describe('initialisation', () => {
    it.each(INIT_TYPES)('draws the weight with %s and the bias from uniform(+-1/sqrt(inFeatures))', (initType: InitType) => {
      setSeed(3);
      const [inFeatures, outFeatures] = [64, 512];
      const layer = new LinearLayer({ inFeatures, outFeatures, initType });
      const bound = 1 / Math.sqrt(inFeatures);
      const biasMax = tf.tidy(() => tf.max(tf.abs(layer.bias!)).dataSync()[0]);
      // 512 uniform draws: the largest lies within 2% of the bound (fails with odds 0.98^512 < 1e-4),
      // and never beyond it.
      expect(biasMax).toBeLessThanOrEqual(bound);
      expect(biasMax).toBeGreaterThan(0.98 * bound);
      const { mean, variance } = tf.tidy(() => {
        const m = tf.moments(layer.weight);
        return { mean: m.mean.dataSync()[0], variance: m.variance.dataSync()[0] };
      });
      const std = Math.sqrt(variance);
      const expectedStd = initType.startsWith('kaiming') ? Math.sqrt(2 / inFeatures) : Math.sqrt(2 / (inFeatures + outFeatures));
      expect(Math.abs(std / expectedStd - 1)).toBeLessThan(0.02);
      expect(Math.abs(mean)).toBeLessThan(0.03 * expectedStd);
      const weightMax = tf.tidy(() => tf.max(tf.abs(layer.weight)).dataSync()[0]);
      if (initType.endsWith('uniform')) {
        const weightBound = Math.sqrt(3) * expectedStd;
        expect(weightMax).toBeLessThanOrEqual(weightBound * (1 + 1e-6));
        expect(weightMax).toBeGreaterThan(0.99 * weightBound);
      }
      layer.dispose();
    });

    it('defaults to kaiming_uniform for the weight: bound sqrt(6 / inFeatures)', () => {
      setSeed(4);
      const layer = new LinearLayer({ inFeatures: 100, outFeatures: 1000 });
      const weightMax = tf.tidy(() => tf.max(tf.abs(layer.weight)).dataSync()[0]);
      expect(weightMax).toBeLessThanOrEqual(Math.sqrt(6 / 100) * (1 + 1e-6));
      expect(weightMax).toBeGreaterThan(0.99 * Math.sqrt(6 / 100));
      layer.dispose();
    });

    it('is reproducible under setSeed', () => {
      const draw = () => {
        setSeed(9);
        const layer = new LinearLayer({ inFeatures: 4, outFeatures: 3 });
        const values = [...layer.weight.dataSync(), ...layer.bias!.dataSync()];
        layer.dispose();
        return values;
      };
      expect(draw()).toEqual(draw());
    });
  });

  describe('forward', () => {
    it('accepts any rank >= 1 and keeps the leading dimensions', () => {
      const layer = new LinearLayer({ inFeatures: 3, outFeatures: 2 });
      for (const shape of [[3], [4, 3], [2, 4, 3], [2, 1, 4, 3]]) {
        const y = tf.tidy(() => layer.forward(tf.ones(shape)));
        expect(y.shape).toEqual([...shape.slice(0, -1), 2]);
        y.dispose();
      }
      layer.dispose();
    });

    it('handles an empty batch', () => {
      const layer = new LinearLayer({ inFeatures: 3, outFeatures: 2 });
      const y = tf.tidy(() => layer.forward(tf.zeros([0, 3])));
      expect(y.shape).toEqual([0, 2]);
      tf.dispose(y);
      layer.dispose();
    });

    it('applies dropout last, after the layer norm, in training mode only', () => {
      setSeed(5);
      const layer = new LinearLayer({ inFeatures: 8, outFeatures: 64, useLayerNorm: true, dropout: 0.5 });
      const x = tf.randomNormal([4, 8], 0, 1, 'float32', 2);
      const clean = tf.tidy(() => layer.eval().forward(x));
      const dropped = tf.tidy(() => layer.train().forward(x));
      const cleanValues = clean.dataSync();
      const droppedValues = dropped.dataSync();
      let zeros = 0;
      droppedValues.forEach((v, i) => {
        if (v === 0) zeros++;
        // Kept values are the normalised output scaled by 1 / (1 - p): dropout came after the norm.
        else expect(v).toBeCloseTo(cleanValues[i] * 2, 4);
      });
      expect(zeros).toBeGreaterThan(64 * 4 * 0.3);
      expect(zeros).toBeLessThan(64 * 4 * 0.7);
      tf.dispose([x, clean, dropped]);
      layer.dispose();
    });

    it('leaks no tensors, in training mode either', () => {
      const layer = new LinearLayer({ inFeatures: 3, outFeatures: 2, useLayerNorm: true, dropout: 0.1 });
      const x = tf.ones([2, 3]);
      const before = tf.memory().numTensors;
      layer.forward(x).dispose();
      layer.eval().forward(x).dispose();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      layer.dispose();
    });

    it('rejects a wrong last dimension, naming the module and the argument', () => {
      const layer = new LinearLayer({ inFeatures: 3, outFeatures: 2 });
      const x = tf.ones([2, 4]);
      expect(() => layer.forward(x)).toThrow(MieShapeError);
      expect(() => layer.forward(x)).toThrow('LinearLayer: input x must have shape [..., 3] (last dimension = inFeatures). Received: tensor float32[2, 4].');
      x.dispose();
      layer.dispose();
    });

    it('rejects a scalar, a non-float input and a non-tensor', () => {
      const layer = new LinearLayer({ inFeatures: 3, outFeatures: 2 });
      const scalar = tf.scalar(1);
      const ints = tf.ones([2, 3], 'int32');
      expect(() => layer.forward(scalar)).toThrow('LinearLayer: input x must have shape [..., 3] (last dimension = inFeatures). Received: tensor float32[].');
      expect(() => layer.forward(ints)).toThrow(MieShapeError);
      expect(() => layer.forward(ints)).toThrow(/LinearLayer: input x must have dtype float32 .*Received: tensor int32\[2, 3\]/);
      expect(() => layer.forward([1, 2, 3] as unknown as tf.Tensor)).toThrow('LinearLayer: input x must be a live tf.Tensor. Received: [1, 2, 3].');
      tf.dispose([scalar, ints]);
      layer.dispose();
    });
  });

  describe('options are validated at construction', () => {
    it.each<[string, unknown, string]>([
      ['inFeatures 0', { inFeatures: 0, outFeatures: 2 }, 'LinearLayer: option "inFeatures" must be a positive integer. Received: 0.'],
      ['inFeatures 2.5', { inFeatures: 2.5, outFeatures: 2 }, 'LinearLayer: option "inFeatures" must be a positive integer. Received: 2.5.'],
      ['outFeatures missing', { inFeatures: 2 }, 'LinearLayer: option "outFeatures" must be a positive integer. Received: undefined.'],
      ['outFeatures a string', { inFeatures: 2, outFeatures: '3' }, 'LinearLayer: option "outFeatures" must be a positive integer. Received: "3".'],
      ['bias not boolean', { inFeatures: 2, outFeatures: 3, bias: 1 }, 'LinearLayer: option "bias" must be a boolean. Received: 1.'],
      [
        'unknown initType',
        { inFeatures: 2, outFeatures: 3, initType: 'orthogonal' },
        'LinearLayer: option "initType" must be one of kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal. Received: "orthogonal".',
      ],
      ['dropout 1', { inFeatures: 2, outFeatures: 3, dropout: 1 }, 'LinearLayer: option "dropout" must be a probability in [0, 1). Received: 1.'],
      ['dropout negative', { inFeatures: 2, outFeatures: 3, dropout: -0.1 }, 'LinearLayer: option "dropout" must be a probability in [0, 1). Received: -0.1.'],
      ['dropout NaN', { inFeatures: 2, outFeatures: 3, dropout: NaN }, 'LinearLayer: option "dropout" must be a probability in [0, 1). Received: NaN.'],
      ['useLayerNorm a string', { inFeatures: 2, outFeatures: 3, useLayerNorm: 'yes' }, 'LinearLayer: option "useLayerNorm" must be a boolean. Received: "yes".'],
      [
        'a misspelt option',
        { inFeatures: 2, outFeatures: 3, useLayernorm: true },
        'LinearLayer: unknown option "useLayernorm"; the options are inFeatures, outFeatures, bias, initType, dropout, useLayerNorm.',
      ],
      ['no options', undefined, 'LinearLayer: options must be an object. Received: undefined.'],
    ])('%s', (_label, options, message) => {
      const before = tf.memory().numTensors;
      expect(() => new LinearLayer(options as LinearLayerOptions)).toThrow(MieConfigError);
      expect(() => new LinearLayer(options as LinearLayerOptions)).toThrow(message);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
