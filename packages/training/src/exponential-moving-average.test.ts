import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, MieConfigError, MieSerializationError, setBackend, setSeed, tf } from '@mie/core';
import { MultiLayerPerceptron } from '@mie/layers';
import { AdamW } from './adamw';
import { crossEntropyLoss } from './cross-entropy-loss';
import { ShuffledBatches } from './data-source';
import { MieTrainingError } from './errors';
import { ExponentialMovingAverage } from './exponential-moving-average';
import { seededUniform } from './random-order';
import { Trainer, type TrainerOptions } from './trainer';
import { TRAINING_CHECKPOINT_FILE, readTrainingCheckpoint, writeTrainingCheckpoint } from './training-checkpoint';

interface Batch {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

const SIZE = 40;
const random = seededUniform(3);
const FEATURES = Array.from({ length: SIZE }, () => Array.from({ length: 4 }, () => random() * 2 - 1));
const LABELS = FEATURES.map((f) => f.slice(0, 3).indexOf(Math.max(...f.slice(0, 3))));

const data = () =>
  new ShuffledBatches<Batch>({
    size: SIZE,
    batchSize: 8,
    seed: 5,
    makeBatch: (indices) => ({ x: tf.tensor2d(indices.map((i) => FEATURES[i])), y: tf.tensor1d(indices.map((i) => LABELS[i]), 'int32') }),
  });

function makeModel(seed: number): MultiLayerPerceptron {
  setSeed(seed);
  return new MultiLayerPerceptron({ inputDim: 4, hiddenDims: [8], outputDim: 3, dropout: 0.1 });
}

function trainer(model: MultiLayerPerceptron, options: Partial<TrainerOptions<MultiLayerPerceptron, Batch>>): Trainer<MultiLayerPerceptron, Batch> {
  return new Trainer({
    model,
    loss: (m, batch) => crossEntropyLoss(m.forward(batch.x), batch.y),
    data: data(),
    optimizer: new AdamW(model, { lr: 1e-2 }),
    progress: 'none',
    ...options,
  });
}

function weights(model: BaseModel): Record<string, number[]> {
  return Object.fromEntries(Object.entries(model.stateDict()).map(([name, v]) => [name, Array.from(v.dataSync())]));
}

/** Float64 reference of the averages: the recursion written out on the weights after each update. */
function referenceAverages(snapshots: Array<Record<string, number[]>>, decay: number, warmup: boolean): Record<string, number[]> {
  const average: Record<string, number[]> = structuredClone(snapshots[0]);
  snapshots.slice(1).forEach((snapshot, n) => {
    const d = warmup ? Math.min(decay, (1 + n) / (10 + n)) : decay;
    for (const name of Object.keys(average)) average[name] = average[name].map((a, i) => d * a + (1 - d) * snapshot[name][i]);
  });
  return average;
}

function expectClose(actual: Record<string, number[]>, expected: Record<string, number[]>, tolerance = 1e-6): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const name of Object.keys(expected)) {
    const worst = Math.max(...expected[name].map((e, i) => Math.abs(e - actual[name][i])));
    expect({ name, worst: worst < tolerance }).toEqual({ name, worst: true });
  }
}

let dir: string;

beforeAll(async () => {
  await setBackend('cpu');
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-ema-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ExponentialMovingAverage', () => {
  it.each([
    ['cpu', 0.9, true],
    ['cpu', 0.5, false],
    ['wasm', 0.99, true],
  ] as const)('follows the float64 recursion over real updates (%s, decay %f, warmup %s), without leaking', async (backend, decay, warmup) => {
    await setBackend(backend);
    const model = makeModel(1);
    const optimizer = new AdamW(model, { lr: 0.05 });
    const snapshots = [weights(model)];
    const before = tf.memory().numTensors;
    const ema = new ExponentialMovingAverage(model, { decay, warmup });
    const batches = [...data().batches(0, 0)];
    for (const batch of batches) {
      const { value, grads } = tf.variableGrads(() => crossEntropyLoss(model.forward(batch.x), batch.y) as tf.Scalar, model.trainableParameters());
      const named = Object.fromEntries(model.namedParameters().map(([name, v]) => [name, grads[v.name]]));
      optimizer.step(named);
      tf.dispose([value, ...Object.values(grads), batch.x, batch.y]);
      ema.update();
      snapshots.push(weights(model));
    }
    expect(ema.updates).toBe(batches.length);
    const trained = weights(model);
    const expected = referenceAverages(snapshots, decay, warmup);
    // The averages are not the last weights, and differ from them by the recursion's amount.
    const averaged = await ema.withAveraged(() => weights(model));
    expectClose(averaged, expected);
    expect(averaged).not.toEqual(trained);
    // withAveraged put the trained weights back.
    expect(weights(model)).toEqual(trained);
    expectClose(Object.fromEntries(Object.entries(ema.getState().tensors).map(([name, t]) => [name, Array.from(t.dataSync())])), expected);
    // Each update added nothing: the averages replace the previous ones (the optimizer holds two moments a parameter).
    const parameters = Object.keys(expected).length;
    expect(tf.memory().numTensors).toBe(before + parameters + 2 * parameters);
    ema.copyTo();
    expectClose(weights(model), expected);
    expect(tf.memory().numTensors).toBe(before + parameters + 2 * parameters);
    ema.dispose();
    expect(tf.memory().numTensors).toBe(before + 2 * parameters);
    optimizer.dispose();
    model.dispose();
    await setBackend('cpu');
  });

  it('puts the trained weights back when the function throws, and refuses calls inside it', async () => {
    const model = makeModel(2);
    const ema = new ExponentialMovingAverage(model, { decay: 0.9 });
    const original = weights(model);
    // Move the weights so that averages and weights differ.
    for (const variable of model.trainableParameters()) variable.assign(tf.tidy(() => tf.add(variable, 1)));
    const moved = weights(model);
    await expect(ema.withAveraged(() => {
      expect(weights(model)).toEqual(original);
      throw new Error('evaluation failed');
    })).rejects.toThrow('evaluation failed');
    expect(weights(model)).toEqual(moved);
    await ema.withAveraged(async () => {
      expect(() => ema.update()).toThrow(MieConfigError);
      expect(() => ema.copyTo()).toThrow(/inside withAveraged/);
      await expect(ema.withAveraged(() => 0)).rejects.toThrow(/ExponentialMovingAverage.withAveraged: cannot be called inside withAveraged/);
    });
    expect(weights(model)).toEqual(moved);
    ema.dispose();
    model.dispose();
  });

  it('checks its options and refuses a bad state without changing anything', () => {
    const model = makeModel(3);
    for (const decay of [1, -0.1, Number.NaN, '0.9']) {
      expect(() => new ExponentialMovingAverage(model, { decay } as never)).toThrow(/ExponentialMovingAverage: option "decay" must be a number in \[0, 1\)/);
    }
    expect(() => new ExponentialMovingAverage(model, { decay: 0.9, warmup: 1 } as never)).toThrow(/option "warmup" must be a boolean/);
    expect(() => new ExponentialMovingAverage(model, { decay: 0.9, decai: 1 } as never)).toThrow(/unknown option "decai"/);
    const ema = new ExponentialMovingAverage(model, { decay: 0.9 });
    const state = ema.getState();
    const before = Object.fromEntries(Object.entries(state.tensors).map(([name, t]) => [name, Array.from(t.dataSync())]));
    const [first, second] = ema.parameterNames;
    const wrongShape = tf.zeros([2, 2]);
    const nonFinite = tf.fill(state.tensors[second].shape, Number.NaN);
    expect(() => ema.setState({ tensors: { ...state.tensors, [first]: wrongShape, [second]: nonFinite, extra: wrongShape }, updates: -1 })).toThrow(MieSerializationError);
    const problems = ema.validateState({ tensors: { ...state.tensors, [first]: wrongShape, [second]: nonFinite, extra: wrongShape }, updates: 1.5 });
    expect(problems).toEqual([
      'updates must be an integer >= 0, got 1.5',
      '"extra" is not an averaged parameter',
      `the average of "${first}" has shape [2, 2], expected [${state.tensors[first].shape.join(', ')}]`,
      `the average of "${second}" has a NaN or infinite value`,
    ]);
    const { [first]: _dropped, ...missing } = state.tensors;
    expect(() => ema.setState({ tensors: missing, updates: 0 })).toThrow(new RegExp(`the average of "${first.replace(/\./g, '\\.')}" is missing`));
    expect(Object.fromEntries(Object.entries(ema.getState().tensors).map(([name, t]) => [name, Array.from(t.dataSync())]))).toEqual(before);
    tf.dispose([wrongShape, nonFinite]);
    ema.dispose();
    model.dispose();
  });
});

describe('Trainer option "ema"', () => {
  it('updates every `every` steps, evaluates and keeps in dir/best the averaged weights, and leaves the trained ones in the model', async () => {
    const model = makeModel(4);
    const decay = 0.8;
    const every = 2;
    const snapshots: Array<Record<string, number[]>> = [weights(model)];
    const evaluated: Array<Record<string, number[]>> = [];
    const run = trainer(model, {
      maxSteps: 8,
      ema: { decay, every },
      onStep: ({ step }) => {
        if (step % every === 0) snapshots.push(weights(model));
      },
      evalEvery: 4,
      evaluate: (m) => {
        evaluated.push(weights(m));
        return 5 - evaluated.length; // each evaluation is better: dir/best is the last
      },
      checkpointDir: dir,
    });
    // onStep runs after the update: the snapshot at an update step is the weight that update saw.
    const result = await run.fit();
    expect(result.step).toBe(8);
    expect(run.ema!.updates).toBe(4);
    expectClose(evaluated[0], referenceAverages(snapshots.slice(0, 3), decay, true));
    const expected = referenceAverages(snapshots, decay, true);
    expectClose(evaluated[1], expected);
    expect(weights(model)).toEqual(snapshots[snapshots.length - 1]);
    const best = await BaseModel.load(path.join(dir, 'best'));
    expectClose(weights(best), expected);
    best.dispose();
    run.ema!.copyTo();
    expectClose(weights(model), expected);
    run.dispose();
    model.dispose();
  });

  it('resumes exactly: N steps + resume + N steps give the uninterrupted run\'s weights and averages', async () => {
    const ema = { decay: 0.9, every: 3 };
    const straightModel = makeModel(5);
    const straight = trainer(straightModel, { maxSteps: 14, ema });
    await straight.fit();
    const firstModel = makeModel(5);
    const first = trainer(firstModel, { maxSteps: 7, ema, checkpointDir: dir });
    await first.fit();
    const resumedModel = makeModel(77);
    const resumed = trainer(resumedModel, { maxSteps: 14, ema, checkpointDir: dir });
    await resumed.fit({ resume: true });
    expect(weights(resumedModel)).toEqual(weights(straightModel));
    expect(resumed.ema!.updates).toBe(straight.ema!.updates);
    const averages = (t: Trainer<MultiLayerPerceptron, Batch>) => Object.fromEntries(Object.entries(t.ema!.getState().tensors).map(([n, v]) => [n, Array.from(v.dataSync())]));
    expect(averages(resumed)).toEqual(averages(straight));
    for (const t of [straight, first, resumed]) t.dispose();
    for (const m of [straightModel, firstModel, resumedModel]) m.dispose();
  });

  it('refuses a checkpoint whose average does not fit the run, changing nothing', async () => {
    const model = makeModel(6);
    const first = trainer(model, { maxSteps: 4, ema: { decay: 0.9 }, checkpointDir: dir });
    await first.fit();
    first.dispose();
    const attempts: Array<[Partial<TrainerOptions<MultiLayerPerceptron, Batch>>, RegExp]> = [
      [{}, /trained with a moving average of the weights \(option "ema"\), and this run keeps none/],
      [{ ema: { decay: 0.95 } }, /its weight average has decay 0.9, warmup true, every 1; this run's has decay 0.95, warmup true, every 1/],
      [{ ema: { decay: 0.9, every: 2 } }, /every 1; this run's has decay 0.9, warmup true, every 2/],
    ];
    for (const [options, message] of attempts) {
      const other = makeModel(8);
      const original = weights(other);
      const run = trainer(other, { maxSteps: 8, checkpointDir: dir, ...options });
      await expect(run.fit({ resume: true })).rejects.toThrow(message);
      await expect(run.fit({ resume: true })).rejects.toThrow(MieTrainingError);
      expect(weights(other)).toEqual(original);
      expect(run.step).toBe(0);
      run.dispose();
      other.dispose();
    }
    // A run without an average: its checkpoint cannot be resumed by one with an average.
    const plainDir = path.join(dir, 'plain');
    await trainer(makeModel(6), { maxSteps: 2, checkpointDir: plainDir }).fit();
    await expect(trainer(makeModel(6), { maxSteps: 4, ema: { decay: 0.9 }, checkpointDir: plainDir }).fit({ resume: true })).rejects.toThrow(
      /trained without a moving average of the weights, and this run keeps one/,
    );
    model.dispose();
  });

  it('refuses a checkpoint with a corrupted average (a hostile file): MieSerializationError, nothing loaded', async () => {
    const model = makeModel(9);
    const optimizer = new AdamW(model);
    const ema = new ExponentialMovingAverage(model, { decay: 0.9 });
    const state = {
      formatVersion: 1 as const, step: 2, epoch: 0, batchInEpoch: 2, seed: 0, optimizer: { lr: 1e-3, steps: {} },
      bestMetric: null, bestStep: null, evaluations: [], history: [{ step: 1, epoch: 0, loss: 1, lr: 1e-3 }, { step: 2, epoch: 0, loss: 1, lr: 1e-3 }],
    };
    // Too many updates for the steps, then a NaN average.
    ema.update();
    ema.update();
    ema.update();
    await writeTrainingCheckpoint(dir, model, optimizer, state, undefined, { average: ema, every: 1 });
    const target = new ExponentialMovingAverage(makeModel(10), { decay: 0.9 });
    await expect(readTrainingCheckpoint(dir, makeModel(10), new AdamW(makeModel(10)), { ema: { average: target, every: 1 } })).rejects.toThrow(/ema.updates must be an integer in \[0, 2\]/);
    expect(target.updates).toBe(0);
    const name = ema.parameterNames[0];
    const averages = ema.getState().tensors;
    const poisoned = tf.fill(averages[name].shape, Number.POSITIVE_INFINITY);
    ema.setState({ tensors: averages, updates: 1 });
    // setState refuses infinities, so the file is written through the state the writer reads.
    const getState = ema.getState.bind(ema);
    ema.getState = () => ({ tensors: { ...getState().tensors, [name]: poisoned }, updates: 1 });
    await writeTrainingCheckpoint(dir, model, optimizer, state, undefined, { average: ema, every: 1 });
    const reader = makeModel(11);
    const readerWeights = weights(reader);
    const error = await readTrainingCheckpoint(dir, reader, new AdamW(reader), { ema: { average: target, every: 1 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MieSerializationError);
    expect((error as Error).message).toContain(path.join(dir, TRAINING_CHECKPOINT_FILE));
    expect((error as Error).message).toMatch(new RegExp(`weight average: the average of "${name.replace(/\./g, '\\.')}" has a NaN or infinite value`));
    expect(weights(reader)).toEqual(readerWeights);
    expect(target.updates).toBe(0);
    // A file with an average read without one is refused as not of this run.
    await expect(readTrainingCheckpoint(dir, makeModel(12), new AdamW(makeModel(12)))).rejects.toThrow(MieTrainingError);
    poisoned.dispose();
    target.dispose();
    ema.dispose();
    optimizer.dispose();
    model.dispose();
  });

  it('checks the option', () => {
    const model = makeModel(13);
    expect(() => trainer(model, { maxSteps: 1, ema: { decay: 1 } })).toThrow(/Trainer option "ema": option "decay" must be a number in \[0, 1\)/);
    expect(() => trainer(model, { maxSteps: 1, ema: { decay: 0.9, every: 0 } })).toThrow(/Trainer option "ema": option "every" must be a positive integer/);
    expect(() => trainer(model, { maxSteps: 1, ema: { decay: 0.9, evry: 2 } as never })).toThrow(/unknown option "evry"/);
    expect(() => trainer(model, { maxSteps: 1, ema: { decay: 0.9, warmup: 'no' } as never })).toThrow(/option "warmup" must be a boolean/);
    expect(() => trainer(model, { maxSteps: 1, ema: 0.9 as never })).toThrow(MieConfigError);
    model.dispose();
  });
});
