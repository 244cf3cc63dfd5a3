import { BaseModel, MieConfigError, MieShapeError, clearSeed, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { MultiLayerPerceptron, type MultiLayerPerceptronOptions } from './multi-layer-perceptron';
import { describeFixtureParity, loadFixture, stackParameterCount } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py with PyTorch.
const cases = loadFixture('multi-layer-perceptron');

afterEach(() => clearSeed());

describeFixtureParity('MultiLayerPerceptron matches PyTorch', cases, (options) => new MultiLayerPerceptron(options as unknown as MultiLayerPerceptronOptions));

describe('MultiLayerPerceptron', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each<[string, MultiLayerPerceptronOptions]>([
    ['the design example (scaled down)', { inputDim: 10, hiddenDims: [5, 4], outputDim: 3, activation: 'gelu', dropout: 0.2, useLayerNorm: true }],
    ['sigmoid, one hidden layer', { inputDim: 4, hiddenDims: [6], outputDim: 1, activation: 'sigmoid' }],
  ])('passes the module battery (save/load included): %s', async (_label, options) => {
    setSeed(4);
    const widths = [options.inputDim, ...options.hiddenDims, options.outputDim];
    await runModuleTest(() => new MultiLayerPerceptron(options), () => [tf.randomNormal([3, options.inputDim], 0, 1, 'float32', 5)], {
      expectedParameterCount: stackParameterCount(widths, options.useLayerNorm ?? false),
    });
  });

  it('is a registered BaseModel with the design defaults', () => {
    const model = new MultiLayerPerceptron({ inputDim: 3, hiddenDims: [4], outputDim: 2 });
    expect(model).toBeInstanceOf(BaseModel);
    expect(model.className).toBe('MultiLayerPerceptron');
    expect(model.config).toEqual({ inputDim: 3, hiddenDims: [4], outputDim: 2, activation: 'relu', dropout: 0, useLayerNorm: false });
    expect(Object.keys(model.stateDict())).toEqual(['hiddenLayers.0.weight', 'hiddenLayers.0.bias', 'outputLayer.weight', 'outputLayer.bias']);
    model.dispose();
  });

  it('has no residual connections, even where widths match', () => {
    setSeed(5);
    const model = new MultiLayerPerceptron({ inputDim: 4, hiddenDims: [4], outputDim: 4, activation: 'tanh' }).eval();
    const x = tf.randomNormal([2, 4], 0, 1, 'float32', 3);
    const [actual, expected] = tf.tidy(() => [model.forward(x), model.outputLayer.forward(tf.tanh(model.hiddenLayers[0].forward(x)))]);
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([x, actual, expected]);
    model.dispose();
  });

  it.each<[string, unknown, string]>([
    ['hiddenDims not an array', { inputDim: 3, hiddenDims: 4, outputDim: 2 }, 'MultiLayerPerceptron: option "hiddenDims" must be an array of positive integers. Received: 4.'],
    ['outputDim missing', { inputDim: 3, hiddenDims: [] }, 'MultiLayerPerceptron: option "outputDim" must be a positive integer. Received: undefined.'],
    [
      'useResidual (not an MLP option)',
      { inputDim: 3, hiddenDims: [], outputDim: 2, useResidual: true },
      'MultiLayerPerceptron: unknown option "useResidual"; the options are inputDim, hiddenDims, outputDim, activation, dropout, useLayerNorm.',
    ],
    ['dropout -0.5', { inputDim: 3, hiddenDims: [], outputDim: 2, dropout: -0.5 }, 'MultiLayerPerceptron: option "dropout" must be a probability in [0, 1). Received: -0.5.'],
  ])('rejects %s', (_label, options, message) => {
    expect(() => new MultiLayerPerceptron(options as MultiLayerPerceptronOptions)).toThrow(MieConfigError);
    expect(() => new MultiLayerPerceptron(options as MultiLayerPerceptronOptions)).toThrow(message);
  });

  it('rejects an input of the wrong width', () => {
    const model = new MultiLayerPerceptron({ inputDim: 3, hiddenDims: [2], outputDim: 1 });
    const x = tf.ones([3]);
    const wide = tf.ones([1, 4]);
    const y = model.forward(x);
    expect(y.shape).toEqual([1]);
    expect(() => model.forward(wide)).toThrow(MieShapeError);
    expect(() => model.forward(wide)).toThrow('MultiLayerPerceptron: input x must have shape [..., 3] (last dimension = inputDim). Received: tensor float32[1, 4].');
    tf.dispose([x, wide, y]);
    model.dispose();
  });
});
