import { BaseModel, MieConfigError, MieShapeError, clearSeed, registeredModels, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { FeedForwardNN, type FeedForwardNNOptions } from './feed-forward-nn';
import { describeFixtureParity, loadFixture, stackParameterCount } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py with PyTorch.
const cases = loadFixture('feed-forward-nn');

afterEach(() => clearSeed());

describeFixtureParity('FeedForwardNN matches PyTorch', cases, (options) => new FeedForwardNN(options as unknown as FeedForwardNNOptions));

describe('FeedForwardNN', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each<[string, FeedForwardNNOptions]>([
    ['the design example (scaled down)', { inputSize: 12, hiddenSizes: [8, 8], outputSize: 3, dropout: 0.3, useLayerNorm: true, useResidual: true }],
    ['gelu, no layer norm', { inputSize: 5, hiddenSizes: [7], outputSize: 2, activation: 'gelu' }],
    ['no hidden layers', { inputSize: 5, hiddenSizes: [], outputSize: 2 }],
  ])('passes the module battery (save/load included): %s', async (_label, options) => {
    setSeed(3);
    const widths = [options.inputSize, ...options.hiddenSizes, options.outputSize];
    await runModuleTest(() => new FeedForwardNN(options), () => [tf.randomNormal([4, options.inputSize], 0, 1, 'float32', 5)], {
      expectedParameterCount: stackParameterCount(widths, options.useLayerNorm ?? false),
    });
  });

  it('is a registered BaseModel with the design defaults', () => {
    const model = new FeedForwardNN({ inputSize: 3, hiddenSizes: [4], outputSize: 2 });
    expect(model).toBeInstanceOf(BaseModel);
    expect(registeredModels()).toContain('FeedForwardNN');
    expect(model.className).toBe('FeedForwardNN');
    expect(model.config).toEqual({
      inputSize: 3,
      hiddenSizes: [4],
      outputSize: 2,
      activation: 'relu',
      dropout: 0,
      useLayerNorm: false,
      useResidual: false,
    });
    model.dispose();
  });

  it('names its state hiddenLayers.N and outputLayer', () => {
    const model = new FeedForwardNN({ inputSize: 3, hiddenSizes: [4, 5], outputSize: 2, useLayerNorm: true });
    expect(model.namedParameters().map(([name, v]) => [name, v.shape])).toEqual([
      ['hiddenLayers.0.weight', [4, 3]],
      ['hiddenLayers.0.bias', [4]],
      ['hiddenLayers.0.layerNorm.weight', [4]],
      ['hiddenLayers.0.layerNorm.bias', [4]],
      ['hiddenLayers.1.weight', [5, 4]],
      ['hiddenLayers.1.bias', [5]],
      ['hiddenLayers.1.layerNorm.weight', [5]],
      ['hiddenLayers.1.layerNorm.bias', [5]],
      ['outputLayer.weight', [2, 5]],
      ['outputLayer.bias', [2]],
    ]);
    model.dispose();
  });

  it('copies hiddenSizes, so changing the caller array changes nothing', () => {
    const hiddenSizes = [4];
    const model = new FeedForwardNN({ inputSize: 3, hiddenSizes, outputSize: 2 });
    hiddenSizes.push(9);
    expect(model.config.hiddenSizes).toEqual([4]);
    model.dispose();
  });

  it.each<[string, unknown, string]>([
    ['hiddenSizes missing', { inputSize: 3, outputSize: 2 }, 'FeedForwardNN: option "hiddenSizes" must be an array of positive integers. Received: undefined.'],
    ['a zero hidden size', { inputSize: 3, hiddenSizes: [4, 0], outputSize: 2 }, 'FeedForwardNN: option "hiddenSizes" must be an array of positive integers. Received: [4, 0].'],
    ['outputSize 0', { inputSize: 3, hiddenSizes: [], outputSize: 0 }, 'FeedForwardNN: option "outputSize" must be a positive integer. Received: 0.'],
    ['inputSize NaN', { inputSize: NaN, hiddenSizes: [], outputSize: 1 }, 'FeedForwardNN: option "inputSize" must be a positive integer. Received: NaN.'],
    [
      'an unknown activation',
      { inputSize: 3, hiddenSizes: [], outputSize: 1, activation: 'elu' },
      'FeedForwardNN: option "activation" must be one of relu, gelu, tanh, sigmoid, silu. Received: "elu".',
    ],
    ['dropout 1', { inputSize: 3, hiddenSizes: [], outputSize: 1, dropout: 1 }, 'FeedForwardNN: option "dropout" must be a probability in [0, 1). Received: 1.'],
    ['useLayerNorm 1', { inputSize: 3, hiddenSizes: [], outputSize: 1, useLayerNorm: 1 }, 'FeedForwardNN: option "useLayerNorm" must be a boolean. Received: 1.'],
  ])('rejects %s', (_label, options, message) => {
    const before = tf.memory().numTensors;
    expect(() => new FeedForwardNN(options as FeedForwardNNOptions)).toThrow(MieConfigError);
    expect(() => new FeedForwardNN(options as FeedForwardNNOptions)).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects an input of the wrong width or dtype, naming the model', () => {
    const model = new FeedForwardNN({ inputSize: 4, hiddenSizes: [3], outputSize: 2 });
    const x = tf.ones([2, 3]);
    const ints = tf.ones([2, 4], 'int32');
    expect(() => model.forward(x)).toThrow(MieShapeError);
    expect(() => model.forward(x)).toThrow('FeedForwardNN: input x must have shape [..., 4] (last dimension = inputSize). Received: tensor float32[2, 3].');
    expect(() => model.forward(ints)).toThrow(/FeedForwardNN: input x must have dtype float32/);
    tf.dispose([x, ints]);
    model.dispose();
  });

  it('adds residuals only around hidden layers that keep the width', () => {
    setSeed(8);
    const options = { inputSize: 3, hiddenSizes: [4, 4], outputSize: 2, activation: 'tanh' as const };
    const withResidual = new FeedForwardNN({ ...options, useResidual: true }).eval();
    const plain = new FeedForwardNN(options).eval();
    plain.loadStateDict(withResidual.stateDict());
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 2);
    const [actual, expected] = tf.tidy(() => {
      const [first, second] = withResidual.hiddenLayers;
      const h1 = tf.tanh(first.forward(x)); // 3 -> 4: no residual
      const h2 = tf.add(h1, tf.tanh(second.forward(h1))); // 4 -> 4: residual
      return [withResidual.forward(x), withResidual.outputLayer.forward(h2)];
    });
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    const differs = tf.tidy(() => tf.any(tf.notEqual(plain.forward(x), actual)).dataSync()[0]);
    expect(differs).toBe(1);
    tf.dispose([x, actual, expected]);
    withResidual.dispose();
    plain.dispose();
  });
});
