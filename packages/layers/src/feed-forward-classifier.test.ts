import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, MieConfigError, MieShapeError, clearSeed, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { FeedForwardClassifier, type FeedForwardClassifierOptions } from './feed-forward-classifier';
import { FeedForwardNN } from './feed-forward-nn';
import { FIXTURE_BACKENDS, checkAgainstFixture, expectClose, loadCaseState, loadFixture, stackParameterCount, toTensor } from './__tests__/fixtures';

// Produced by scripts/fixtures/layers.py with PyTorch.
const cases = loadFixture('feed-forward-classifier');

afterEach(() => clearSeed());

describe.each(FIXTURE_BACKENDS)('FeedForwardClassifier matches PyTorch on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s: logits, probabilities, predictions, gradients', (_name, c) => {
    expect(tf.getBackend()).toBe(backend);
    const model = new FeedForwardClassifier(c.options as unknown as FeedForwardClassifierOptions);
    const x = toTensor(c.input);
    try {
      loadCaseState(model, c);
      model.eval();
      checkAgainstFixture(c, (input) => model.forward(input), model);
      const [probabilities, predictions] = [model.predictProba(x), model.predict(x)];
      expectClose(probabilities, c.probabilities!, `${c.name}: probabilities`);
      expect(predictions.dtype).toBe('int32');
      expect(Array.from(predictions.dataSync())).toEqual(c.predictions);
      tf.dispose([probabilities, predictions]);
    } finally {
      x.dispose();
      model.dispose();
    }
  });
});

describe('FeedForwardClassifier', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('passes the module battery (save/load included)', async () => {
    setSeed(5);
    const options = { inputSize: 6, hiddenSizes: [8, 8], numClasses: 4, dropout: 0.2, useLayerNorm: true, useResidual: true };
    await runModuleTest(() => new FeedForwardClassifier(options), () => [tf.randomNormal([5, 6], 0, 1, 'float32', 5)], {
      expectedParameterCount: stackParameterCount([6, 8, 8, 4], true),
    });
  });

  it('extends FeedForwardNN and keeps its own option names in config', () => {
    const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [5], numClasses: 3 });
    expect(model).toBeInstanceOf(FeedForwardNN);
    expect(model).toBeInstanceOf(BaseModel);
    expect(model.className).toBe('FeedForwardClassifier');
    expect(model.numClasses).toBe(3);
    expect(model.config).toEqual({
      inputSize: 4,
      hiddenSizes: [5],
      numClasses: 3,
      dropout: 0,
      activation: 'relu',
      useLayerNorm: false,
      useResidual: false,
    });
    expect(model.outputLayer.config.outFeatures).toBe(3);
    model.dispose();
  });

  it('saves and loads as a FeedForwardClassifier, also through FeedForwardNN.load', async () => {
    setSeed(6);
    const model = new FeedForwardClassifier({ inputSize: 3, hiddenSizes: [4], numClasses: 2, activation: 'gelu' });
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mie-layers-'));
    const x = tf.randomNormal([3, 3], 0, 1, 'float32', 1);
    try {
      await model.save(dir);
      const loaded = await FeedForwardNN.load(dir);
      expect(loaded).toBeInstanceOf(FeedForwardClassifier);
      expect(loaded.config).toEqual(model.config);
      const [a, b] = [model.eval().predictProba(x), (loaded as FeedForwardClassifier).predictProba(x)];
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([a, b]);
      loaded.dispose();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
      x.dispose();
      model.dispose();
    }
  });

  it('predicts in evaluation mode and leaves the mode as it was', () => {
    setSeed(7);
    const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [32], numClasses: 3, dropout: 0.5 });
    const x = tf.randomNormal([16, 4], 0, 1, 'float32', 2);
    expect(model.training).toBe(true);
    const first = model.predictProba(x);
    const second = model.predictProba(x);
    // Dropout would make two training-mode calls differ.
    expect(Array.from(second.dataSync())).toEqual(Array.from(first.dataSync()));
    expect(model.modules().every((m) => m.training)).toBe(true);
    model.hiddenLayers[0].eval();
    model.predict(x).dispose();
    expect(model.training).toBe(true);
    expect(model.hiddenLayers[0].training).toBe(false);
    tf.dispose([x, first, second]);
    model.dispose();
  });

  it('gives probabilities that sum to one and argmax predictions of shape [batch]', () => {
    setSeed(8);
    const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [], numClasses: 5 });
    const x = tf.randomNormal([7, 4], 0, 3, 'float32', 3);
    const before = tf.memory().numTensors;
    const probabilities = model.predictProba(x);
    const predictions = model.predict(x);
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(probabilities.shape).toEqual([7, 5]);
    expect(predictions.shape).toEqual([7]);
    const rows = probabilities.arraySync() as number[][];
    const ids = predictions.arraySync() as number[];
    rows.forEach((row, i) => {
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(ids[i]).toBe(row.indexOf(Math.max(...row)));
    });
    tf.dispose([x, probabilities, predictions]);
    model.dispose();
  });

  it.each<[string, unknown, string]>([
    ['numClasses 1', { inputSize: 4, hiddenSizes: [], numClasses: 1 }, 'FeedForwardClassifier: option "numClasses" must be an integer >= 2. Received: 1.'],
    ['numClasses missing', { inputSize: 4, hiddenSizes: [] }, 'FeedForwardClassifier: option "numClasses" must be an integer >= 2. Received: undefined.'],
    [
      'outputSize (a FeedForwardNN option)',
      { inputSize: 4, hiddenSizes: [], numClasses: 3, outputSize: 3 },
      'FeedForwardClassifier: unknown option "outputSize"; the options are inputSize, hiddenSizes, numClasses, dropout, activation, useLayerNorm, useResidual.',
    ],
    ['a bad hidden size', { inputSize: 4, hiddenSizes: [-2], numClasses: 3 }, 'FeedForwardClassifier: option "hiddenSizes" must be an array of positive integers. Received: [-2].'],
    ['dropout 2', { inputSize: 4, hiddenSizes: [], numClasses: 3, dropout: 2 }, 'FeedForwardClassifier: option "dropout" must be a probability in [0, 1). Received: 2.'],
  ])('rejects %s', (_label, options, message) => {
    expect(() => new FeedForwardClassifier(options as FeedForwardClassifierOptions)).toThrow(MieConfigError);
    expect(() => new FeedForwardClassifier(options as FeedForwardClassifierOptions)).toThrow(message);
  });

  it('rejects an input of the wrong width in forward, predict and predictProba', () => {
    const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [3], numClasses: 2 });
    const x = tf.ones([2, 5]);
    const message = 'FeedForwardClassifier: input x must have shape [..., 4] (last dimension = inputSize). Received: tensor float32[2, 5].';
    expect(() => model.forward(x)).toThrow(MieShapeError);
    expect(() => model.predict(x)).toThrow(message);
    expect(() => model.predictProba(x)).toThrow(message);
    expect(model.training).toBe(true);
    x.dispose();
    model.dispose();
  });
});
