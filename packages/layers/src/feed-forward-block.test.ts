import { MieConfigError, MieShapeError, clearSeed, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { FeedForwardBlock, type FeedForwardBlockOptions } from './feed-forward-block';
import { describeFixtureParity, loadFixture } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py with PyTorch.
const cases = loadFixture('feed-forward-block');

afterEach(() => clearSeed());

describeFixtureParity('FeedForwardBlock matches PyTorch', cases, (options) => new FeedForwardBlock(options as unknown as FeedForwardBlockOptions));

describe('FeedForwardBlock', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  // linear1 (in*hidden + hidden) + linear2 (hidden*out + out) + layerNorm (2*out).
  const count = (i: number, h: number, o: number, layerNorm: boolean) => i * h + h + h * o + o + (layerNorm ? 2 * o : 0);

  it.each<[string, FeedForwardBlockOptions, number]>([
    ['residual, layer norm, gelu, dropout', { inputDim: 4, hiddenDim: 8, activation: 'gelu', dropout: 0.1, useLayerNorm: true, useResidual: true }, count(4, 8, 4, true)],
    ['width-changing, tanh', { inputDim: 4, hiddenDim: 6, outputDim: 3, activation: 'tanh' }, count(4, 6, 3, false)],
    ['default widths, silu', { inputDim: 3, activation: 'silu' }, count(3, 12, 3, false)],
  ])('passes the module battery: %s', async (_label, options, expected) => {
    setSeed(2);
    await runModuleTest(() => new FeedForwardBlock(options), () => [tf.randomNormal([2, 3, options.inputDim], 0, 1, 'float32', 5)], {
      expectedParameterCount: expected,
    });
  });

  it('has the design defaults: hiddenDim 4 * inputDim, outputDim inputDim, relu, no dropout, norm or residual', () => {
    const block = new FeedForwardBlock({ inputDim: 5 });
    expect(block.config).toEqual({
      inputDim: 5,
      hiddenDim: 20,
      outputDim: 5,
      activation: 'relu',
      dropout: 0,
      useLayerNorm: false,
      useResidual: false,
    });
    expect(block.namedParameters().map(([name, v]) => [name, v.shape])).toEqual([
      ['linear1.weight', [20, 5]],
      ['linear1.bias', [20]],
      ['linear2.weight', [5, 20]],
      ['linear2.bias', [5]],
    ]);
    block.dispose();
  });

  it('names its state as pinned in API.md', () => {
    const block = new FeedForwardBlock({ inputDim: 2, hiddenDim: 3, useLayerNorm: true });
    expect(Object.keys(block.stateDict())).toEqual([
      'linear1.weight',
      'linear1.bias',
      'linear2.weight',
      'linear2.bias',
      'layerNorm.weight',
      'layerNorm.bias',
    ]);
    block.dispose();
  });

  it('adds the input before the layer norm: layerNorm(x + f(x))', () => {
    setSeed(6);
    const block = new FeedForwardBlock({ inputDim: 4, hiddenDim: 8, useLayerNorm: true, useResidual: true }).eval();
    const plain = new FeedForwardBlock({ inputDim: 4, hiddenDim: 8 }).eval();
    const state = Object.fromEntries(Object.entries(block.stateDict()).filter(([k]) => k.startsWith('linear')));
    plain.loadStateDict(state);
    const x = tf.randomNormal([3, 4], 0, 1, 'float32', 1);
    const [actual, expected] = tf.tidy(() => [block.forward(x), block.layerNorm!.forward(tf.add(x, plain.forward(x)))]);
    expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
    tf.dispose([x, actual, expected]);
    block.dispose();
    plain.dispose();
  });

  it('applies dropout in training mode and not in eval mode', () => {
    setSeed(7);
    const block = new FeedForwardBlock({ inputDim: 4, hiddenDim: 16, dropout: 0.5 });
    const x = tf.randomNormal([8, 4], 0, 1, 'float32', 1);
    const values = (training: boolean) => tf.tidy(() => Array.from(block.train(training).forward(x).dataSync()));
    expect(values(false)).toEqual(values(false));
    expect(values(true)).not.toEqual(values(false));
    x.dispose();
    block.dispose();
  });

  it('refuses a residual between different widths with a clear MieConfigError', () => {
    const before = tf.memory().numTensors;
    const options = { inputDim: 4, hiddenDim: 8, outputDim: 3, useResidual: true };
    expect(() => new FeedForwardBlock(options)).toThrow(MieConfigError);
    expect(() => new FeedForwardBlock(options)).toThrow(
      'FeedForwardBlock: option "useResidual" needs outputDim equal to inputDim, since the residual adds the input to the output. ' +
        'Received: useResidual true with inputDim 4 and outputDim 3.',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each<[string, unknown, string]>([
    ['inputDim missing', {}, 'FeedForwardBlock: option "inputDim" must be a positive integer. Received: undefined.'],
    ['hiddenDim 0', { inputDim: 2, hiddenDim: 0 }, 'FeedForwardBlock: option "hiddenDim" must be a positive integer. Received: 0.'],
    ['outputDim fractional', { inputDim: 2, outputDim: 1.5 }, 'FeedForwardBlock: option "outputDim" must be a positive integer. Received: 1.5.'],
    [
      'an unknown activation',
      { inputDim: 2, activation: 'softplus' },
      'FeedForwardBlock: option "activation" must be one of relu, gelu, tanh, sigmoid, silu. Received: "softplus".',
    ],
    ['dropout 1.5', { inputDim: 2, dropout: 1.5 }, 'FeedForwardBlock: option "dropout" must be a probability in [0, 1). Received: 1.5.'],
    ['useResidual a string', { inputDim: 2, useResidual: 'true' }, 'FeedForwardBlock: option "useResidual" must be a boolean. Received: "true".'],
    ['the snake_case spelling', { input_dim: 2 }, 'FeedForwardBlock: unknown option "input_dim"; the options are inputDim, hiddenDim, outputDim, activation, dropout, useLayerNorm, useResidual.'],
  ])('rejects %s', (_label, options, message) => {
    expect(() => new FeedForwardBlock(options as FeedForwardBlockOptions)).toThrow(MieConfigError);
    expect(() => new FeedForwardBlock(options as FeedForwardBlockOptions)).toThrow(message);
  });

  it('rejects an input of the wrong width, naming the block', () => {
    const block = new FeedForwardBlock({ inputDim: 4 });
    const x = tf.ones([2, 3, 5]);
    expect(() => block.forward(x)).toThrow(MieShapeError);
    expect(() => block.forward(x)).toThrow('FeedForwardBlock: input x must have shape [..., 4] (last dimension = inputDim). Received: tensor float32[2, 3, 5].');
    x.dispose();
    block.dispose();
  });
});
