import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, MieConfigError, MieSerializationError, setBackend, setSeed, tf, type FileSystem } from '@mie/core';
import { MultiLayerPerceptron } from '@mie/layers';
import { AdamW } from './adamw';
import { crossEntropyLoss } from './cross-entropy-loss';
import { ShuffledBatches } from './data-source';
import { MieTrainingError } from './errors';
import { cosineSchedule } from './learning-rate-schedules';
import { seededUniform } from './random-order';
import { Trainer, type TrainerOptions } from './trainer';
import { TRAINING_CHECKPOINT_FILE, hasTrainingCheckpoint } from './training-checkpoint';

interface Batch {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

// Synthetic 3-class data: the class is the argmax of the first three features.
const SIZE = 40;
const random = seededUniform(11);
const FEATURES = Array.from({ length: SIZE }, () => Array.from({ length: 4 }, () => random() * 2 - 1));
const LABELS = FEATURES.map((f) => f.slice(0, 3).indexOf(Math.max(...f.slice(0, 3))));

function data(seed = 5): ShuffledBatches<Batch> {
  return new ShuffledBatches({
    size: SIZE,
    batchSize: 8,
    seed,
    makeBatch: (indices) => ({ x: tf.tensor2d(indices.map((i) => FEATURES[i])), y: tf.tensor1d(indices.map((i) => LABELS[i]), 'int32') }),
  });
}

const loss = (model: MultiLayerPerceptron, batch: Batch) => crossEntropyLoss(model.forward(batch.x), batch.y, { labelSmoothing: 0.1 });

function makeModel(seed: number): MultiLayerPerceptron {
  setSeed(seed);
  // Dropout makes the run depend on the RNG, which the resume must reproduce.
  return new MultiLayerPerceptron({ inputDim: 4, hiddenDims: [16], outputDim: 3, dropout: 0.2 });
}

function trainer(model: MultiLayerPerceptron, options: Partial<TrainerOptions<MultiLayerPerceptron, Batch>>): Trainer<MultiLayerPerceptron, Batch> {
  return new Trainer({
    model,
    loss,
    data: data(),
    optimizer: new AdamW(model, { lr: 1e-2 }),
    schedule: cosineSchedule({ peakLr: 1e-2, warmupSteps: 3, totalSteps: 20, minLr: 1e-3 }),
    clipGradNorm: 1,
    progress: 'none',
    ...options,
  });
}

function weights(model: BaseModel): Record<string, number[]> {
  return Object.fromEntries(Object.entries(model.stateDict()).map(([name, v]) => [name, Array.from(v.dataSync())]));
}

let dir: string;

beforeAll(async () => {
  await setBackend('cpu');
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-training-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('Trainer resume', () => {
  it.each([
    ['cpu', 1],
    ['cpu', 2],
    ['wasm', 1],
  ] as const)('2N steps equal N steps + resume + N steps exactly (%s, accumulationSteps %i)', async (backend, accumulationSteps) => {
    await setBackend(backend);
    const N = 7; // crosses an epoch boundary (5 batches per epoch)
    const straightModel = makeModel(1);
    const straight = await trainer(straightModel, { maxSteps: 2 * N, accumulationSteps }).fit();
    expect(straight.history).toHaveLength(2 * N);
    expect(straight.stoppedBy).toBe('maxSteps');

    const firstModel = makeModel(1);
    const first = await trainer(firstModel, { maxSteps: N, accumulationSteps, checkpointDir: dir }).fit();
    expect(first.step).toBe(N);
    expect(fs.existsSync(path.join(dir, 'last', TRAINING_CHECKPOINT_FILE))).toBe(true);
    // A fresh process: a differently initialised model and a new optimizer, restored from dir/last.
    const resumedModel = makeModel(99);
    const resumed = await trainer(resumedModel, { maxSteps: 2 * N, accumulationSteps, checkpointDir: dir }).fit({ resume: true });

    expect(resumed.history).toEqual(straight.history);
    expect(resumed.epoch).toBe(straight.epoch);
    expect(resumed.batchInEpoch).toBe(straight.batchInEpoch);
    expect(weights(resumedModel)).toEqual(weights(straightModel));
    [straightModel, firstModel, resumedModel].forEach((m) => m.dispose());
    await setBackend('cpu');
  });

  it('resumes from a function data source, and refuses a missing checkpoint or another seed', async () => {
    const batches = data();
    const asFunction = (epoch: number) => batches.batches(epoch, 0);
    const straightModel = makeModel(2);
    await trainer(straightModel, { data: asFunction, maxSteps: 8 }).fit();
    const firstModel = makeModel(2);
    await trainer(firstModel, { data: asFunction, maxSteps: 3, checkpointDir: dir }).fit();
    const resumedModel = makeModel(3);
    await trainer(resumedModel, { data: asFunction, maxSteps: 8, checkpointDir: dir }).fit({ resume: true });
    expect(weights(resumedModel)).toEqual(weights(straightModel));

    await expect(trainer(makeModel(4), { maxSteps: 2, seed: 1, checkpointDir: dir }).fit({ resume: true })).rejects.toThrow(/trained with seed 0, this run has seed 1/);
    await expect(trainer(makeModel(4), { maxSteps: 2, checkpointDir: path.join(dir, 'none') }).fit({ resume: true })).rejects.toThrow(MieTrainingError);
    await expect(trainer(makeModel(4), { maxSteps: 2 }).fit({ resume: true })).rejects.toThrow(/checkpointDir/);
  });
});

describe('Trainer', () => {
  it('keeps the best checkpoint by the evaluation metric', async () => {
    const model = makeModel(1);
    const metrics = [3, 1, 2, 0.5, 0.7];
    const snapshots = new Map<number, Record<string, number[]>>();
    const modes: boolean[] = [];
    const result = await trainer(model, {
      maxSteps: 10,
      checkpointDir: dir,
      evalEvery: 2,
      evaluate: (m, { step }) => {
        modes.push(m.training);
        snapshots.set(step, weights(m));
        return metrics[step / 2 - 1];
      },
    }).fit();
    expect(modes.every((training) => !training)).toBe(true);
    expect(model.training).toBe(true);
    expect(result.evaluations).toEqual(metrics.map((metric, i) => ({ step: 2 * (i + 1), metric })));
    expect([result.bestMetric, result.bestStep]).toEqual([0.5, 8]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'best', 'best.json'), 'utf8'))).toMatchObject({ step: 8, metric: 0.5 });
    const best = await BaseModel.load(path.join(dir, 'best'));
    expect(best).toBeInstanceOf(MultiLayerPerceptron);
    expect(weights(best)).toEqual(snapshots.get(8));
    best.dispose();

    // 'max' keeps the highest.
    const maxDir = path.join(dir, 'max');
    const maxResult = await trainer(makeModel(1), { maxSteps: 6, checkpointDir: maxDir, evalEvery: 2, metricMode: 'max', evaluate: (_, { step }) => [0.2, 0.9, 0.4][step / 2 - 1] }).fit();
    expect(maxResult.bestStep).toBe(4);
    model.dispose();
  });

  it('stops with a MieTrainingError naming the step when the loss becomes NaN, without leaking', async () => {
    const model = makeModel(1);
    let calls = 0;
    const before = tf.memory().numTensors;
    const run = trainer(model, {
      maxSteps: 10,
      loss: (m, batch) => {
        calls++;
        const value = loss(m, batch);
        return (calls === 4 ? tf.mul(value, NaN) : value);
      },
    });
    await expect(run.fit()).rejects.toThrow(MieTrainingError);
    expect(run.step).toBe(3);
    calls = 10;
    const infinite = trainer(model, { maxSteps: 10, loss: (m, batch) => tf.div(loss(m, batch), 0) });
    await expect(infinite.fit()).rejects.toThrow(/the loss became Infinity at step 1 \(epoch 0, batch 0 of the epoch\)/);
    const failing = trainer(model, { maxSteps: 10, loss: (m, batch) => (++calls === 14 ? tf.mul(loss(m, batch), NaN) : loss(m, batch)) });
    await expect(failing.fit()).rejects.toThrow(/the loss became NaN at step 4 \(epoch 0, batch 3 of the epoch\)/);
    // Three optimizers' moments are alive; nothing else is.
    const moments = [run, infinite, failing].reduce((n, t) => n + Object.keys(t.optimizer.getState().tensors).length, 0);
    expect(tf.memory().numTensors).toBe(before + moments);
    model.dispose();
  });

  it('keeps memory flat: as many tensors after step 100 as after step 10', async () => {
    const model = makeModel(1);
    const counts = new Map<number, number>();
    await trainer(model, {
      maxSteps: 100,
      accumulationSteps: 2,
      onStep: ({ step }) => counts.set(step, tf.memory().numTensors),
    }).fit();
    expect(counts.get(100)).toBe(counts.get(10));
    model.dispose();
  });

  it('writes plain progress lines when not on a TTY, with tokens/s and ETA', async () => {
    const lines: string[] = [];
    const model = makeModel(1);
    await trainer(model, {
      maxSteps: 10,
      logEvery: 5,
      progress: 'auto',
      log: (line) => lines.push(line),
      countTokens: (batch) => batch.x.shape[0],
      evalEvery: 10,
      evaluate: () => 1.5,
    }).fit();
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^step 5\/10 \| epoch 0 \| loss \d+\.\d{4} \| lr \d\.\d{2}e-\d \| \d+(\.\d+)? tokens\/s \| ETA \d+:\d{2}$/);
    expect(lines[1]).toMatch(/^step 10\/10 \| epoch 1 \| /);
    expect(lines[2]).toBe('eval at step 10: metric 1.50000 (best)');
    expect(lines[3]).toBe('stopped by maxSteps at step 10 (epoch 1)');
    model.dispose();
  });

  it('stops by epochs or by wall-clock time', async () => {
    const model = makeModel(1);
    const byEpochs = await trainer(model, { maxEpochs: 2 }).fit();
    expect([byEpochs.stoppedBy, byEpochs.step, byEpochs.epoch]).toEqual(['maxEpochs', 10, 2]);
    const byTime = await trainer(model, { maxMinutes: 0.2 / 60, maxSteps: 1e9 }).fit();
    expect(byTime.stoppedBy).toBe('maxMinutes');
    expect(byTime.step).toBeGreaterThan(0);
    model.dispose();
  });

  it('checks its options', () => {
    const model = makeModel(1);
    expect(() => trainer(model, {})).toThrow(/maxSteps, maxEpochs and maxMinutes/);
    expect(() => trainer(model, { maxSteps: 1, evaluate: () => 0 })).toThrow(/evalEvery/);
    expect(() => trainer(model, { maxSteps: 1, saveEvery: 2 })).toThrow(/checkpointDir/);
    expect(() => trainer(model, { maxSteps: 1, data: [] as never })).toThrow(MieConfigError);
    expect(() => trainer(model, { maxSteps: 1, stepz: 1 } as never)).toThrow(/unknown option "stepz"/);
    model.dispose();
  });
});

/** A system error as Node makes them (`code`, `syscall`). */
function systemError(code: string, syscall: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${code === 'ENOSPC' ? 'no space left on device' : 'failure'}, ${syscall}`);
  error.code = code;
  error.syscall = syscall;
  return error;
}

/** Node's file system, except that every write to a data file (not the lock) whose path `fails(path)` is a full disk. */
function fullDisk(fails: (file: string) => boolean, injected: NodeJS.ErrnoException[]): FileSystem {
  return {
    ...fsp,
    open: (async (file: string, flags?: string | number, mode?: number) => {
      const handle = await fsp.open(file, flags, mode);
      if (!path.basename(String(file)).startsWith('.mie-tmp-') || !fails(String(file))) return handle;
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'write') {
            return async () => {
              const error = systemError('ENOSPC', 'write');
              injected.push(error);
              throw error;
            };
          }
          const value = Reflect.get(target, property, target) as unknown;
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    }) as FileSystem['open'],
  };
}

describe('Trainer checkpoint write failures', () => {
  it('a full disk while saving dir/last is a MieSerializationError naming the Trainer, the directory and the cause; the earlier checkpoint stays', async () => {
    const model = makeModel(1);
    const injected: NodeJS.ErrnoException[] = [];
    let failing = false;
    const run = trainer(model, {
      maxSteps: 6,
      saveEvery: 2,
      checkpointDir: dir,
      fileSystem: fullDisk(() => failing, injected),
      onStep: ({ step }) => {
        failing = step >= 3;
      },
    });
    const error = await run.fit().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MieSerializationError);
    const last = path.join(dir, 'last');
    expect((error as Error).message).toBe(`Trainer: could not write the training checkpoint of step 4 to ${last}: ENOSPC: no space left on device, write`);
    expect((error as Error).cause).toBe(injected[0]);
    // The step-2 checkpoint is whole, and no temporary file is left beside it.
    expect(fs.readdirSync(last).filter((name) => name.startsWith('.mie-tmp-'))).toEqual([]);
    const resumed = await trainer(makeModel(9), { maxSteps: 2, checkpointDir: dir }).fit({ resume: true });
    expect(resumed.step).toBe(2);
    model.dispose();
  });

  it('a full disk while saving dir/best is a MieSerializationError naming the best directory', async () => {
    const model = makeModel(1);
    const injected: NodeJS.ErrnoException[] = [];
    const best = path.join(dir, 'best');
    const run = trainer(model, { maxSteps: 4, evalEvery: 2, evaluate: () => 1, checkpointDir: dir, fileSystem: fullDisk((file) => file.startsWith(best + path.sep), injected) });
    const error = (await run.fit().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(MieSerializationError);
    expect(error.message).toBe(`Trainer: could not write the best checkpoint of step 2 to ${best}: ENOSPC: no space left on device, write`);
    expect(error.cause).toBe(injected[0]);
    model.dispose();
  });

  it('a checkpoint directory under a regular file fails at the first save, naming it', async () => {
    const model = makeModel(1);
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const error = (await trainer(model, { maxSteps: 2, checkpointDir: path.join(file, 'x') }).fit().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(MieSerializationError);
    expect(error.message).toMatch(new RegExp(`^Trainer: could not write the training checkpoint of step 2 to ${path.join(file, 'x', 'last').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: ENOTDIR`));
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOTDIR');
    expect(await hasTrainingCheckpoint(path.join(file, 'x', 'last'))).toBe(false);
    model.dispose();
  });

  it('refuses a non-finite metric (a checkpoint could not hold it)', async () => {
    const model = makeModel(1);
    await expect(trainer(model, { maxSteps: 2, evalEvery: 1, evaluate: () => Infinity }).fit()).rejects.toThrow(
      'Trainer: evaluate returned Infinity at step 1; it must return a finite number.',
    );
    model.dispose();
  });
});
