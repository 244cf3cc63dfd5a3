/**
 * Training checkpoints under a failing disk and hostile resume files, on the backend of this run
 * of the suite (wasm and cpu). Each probe that throws must give the expected typed error naming
 * the Trainer and the directory or file, leave the model and optimizer bit-identical, leak no
 * tensor, and leave the backend computing. Refusal times are measured and bounded.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieError, MieSerializationError, readSafetensors, setBackend, setSeed, tf, writeSafetensors, type FileSystem } from '@mie/core';
import { MultiLayerPerceptron } from '@mie/layers';
import { AdamW, MieTrainingError, ShuffledBatches, TRAINING_CHECKPOINT_FILE, Trainer, crossEntropyLoss, seededUniform, type TrainerOptions, type TrainerState } from '@mie/training';
import { expectBackendHealthy, testBackend } from './helpers';

interface Batch {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

const random = seededUniform(17);
const FEATURES = Array.from({ length: 48 }, () => Array.from({ length: 6 }, () => random() * 2 - 1));
const LABELS = FEATURES.map((f) => (f[0] + f[1] > 0 ? 1 : 0));

function makeModel(seed: number): MultiLayerPerceptron {
  setSeed(seed);
  return new MultiLayerPerceptron({ inputDim: 6, hiddenDims: [12], outputDim: 2, dropout: 0.1 });
}

function trainer(model: MultiLayerPerceptron, optimizer: AdamW, options: Partial<TrainerOptions<MultiLayerPerceptron, Batch>>): Trainer<MultiLayerPerceptron, Batch> {
  return new Trainer({
    model,
    optimizer,
    loss: (m, batch) => crossEntropyLoss(m.forward(batch.x), batch.y),
    data: new ShuffledBatches<Batch>({
      size: FEATURES.length,
      batchSize: 8,
      seed: 2,
      makeBatch: (indices) => ({ x: tf.tensor2d(indices.map((i) => FEATURES[i])), y: tf.tensor1d(indices.map((i) => LABELS[i]), 'int32') }),
    }),
    maxSteps: 10,
    progress: 'none',
    ...options,
  });
}

/** Every number of the model and the optimizer, as bytes. */
function snapshot(model: MultiLayerPerceptron, optimizer: AdamW): Record<string, string> {
  const state = optimizer.getState();
  const bytes = (t: tf.Tensor) => Buffer.from(t.dataSync().slice().buffer).toString('base64');
  return {
    ...Object.fromEntries(Object.entries(model.stateDict()).map(([name, t]) => [`model.${name}`, bytes(t)])),
    ...Object.fromEntries(Object.entries(state.tensors).map(([name, t]) => [`optimizer.${name}`, bytes(t)])),
    json: JSON.stringify(state.json),
  };
}

/** Node's file system, where writing a data file under `under` fails like a full disk. */
function fullDisk(under: string, injected: unknown[]): FileSystem {
  return {
    ...fsp,
    open: (async (file: string, flags?: string | number, mode?: number) => {
      const handle = await fsp.open(file, flags, mode);
      if (!String(file).startsWith(under + path.sep) || !path.basename(String(file)).startsWith('.mie-tmp-')) return handle;
      return new Proxy(handle, {
        get(target, property) {
          if (property === 'write') {
            return async () => {
              const error: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device, write');
              error.code = 'ENOSPC';
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

let root: string;
const timings: Array<[string, number]> = [];

beforeAll(async () => {
  await setBackend(testBackend());
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-training-checkpoints-'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  const sorted = [...timings].sort((a, b) => b[1] - a[1]);
  const shown = sorted.map(([name, ms]) => `${name} ${ms.toFixed(1)} ms`).join('; ');
  console.log(`${testBackend()}: ${timings.length} hostile resumes refused: ${shown}`);
});

describe(`training checkpoints (${testBackend()})`, () => {
  it('a full disk while saving dir/last or dir/best is a MieSerializationError naming the Trainer and the directory, with the cause', async () => {
    for (const which of ['last', 'best'] as const) {
      const dir = path.join(root, `full-${which}`);
      const model = makeModel(1);
      const optimizer = new AdamW(model, { lr: 1e-2 });
      // One good save first (step 2), then the disk fills up.
      await trainer(model, optimizer, { maxSteps: 2, checkpointDir: dir, evalEvery: 2, evaluate: () => 1 }).fit();
      const good = fs.readFileSync(path.join(dir, 'last', TRAINING_CHECKPOINT_FILE));
      const injected: unknown[] = [];
      const before = tf.memory().numTensors;
      let metric = 1;
      const failing = trainer(model, optimizer, {
        maxSteps: 6,
        checkpointDir: dir,
        saveEvery: 2,
        evalEvery: 2,
        evaluate: () => (metric /= 2),
        fileSystem: fullDisk(path.join(dir, which), injected),
      });
      const error = (await failing.fit().catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(MieSerializationError);
      expect(error.message).toBe(`Trainer: could not write the ${which === 'last' ? 'training' : 'best'} checkpoint of step 2 to ${path.join(dir, which)}: ENOSPC: no space left on device, write`);
      expect(error.cause).toBe(injected[0]);
      expect(tf.memory().numTensors).toBe(before);
      expectBackendHealthy();
      // The good checkpoint is whole.
      expect(fs.readFileSync(path.join(dir, 'last', TRAINING_CHECKPOINT_FILE)).equals(good)).toBe(true);
      model.dispose();
      optimizer.dispose();
    }
  });

  it('a checkpoint directory under a regular file is a MieSerializationError naming it, at the first save', async () => {
    const file = path.join(root, 'regular-file');
    fs.writeFileSync(file, 'x');
    const model = makeModel(1);
    const optimizer = new AdamW(model);
    await trainer(model, optimizer, { maxSteps: 1 }).fit();
    const before = tf.memory().numTensors;
    const error = (await trainer(model, optimizer, { maxSteps: 3, checkpointDir: path.join(file, 'run') }).fit().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(MieSerializationError);
    expect(error.message).toContain(`Trainer: could not write the training checkpoint of step 3 to ${path.join(file, 'run', 'last')}: ENOTDIR`);
    expect(tf.memory().numTensors).toBe(before);
    expectBackendHealthy();
    model.dispose();
    optimizer.dispose();
  });

  describe('hostile resume files', () => {
    let good: Uint8Array;
    beforeAll(async () => {
      const model = makeModel(1);
      const optimizer = new AdamW(model, { lr: 1e-2 });
      await trainer(model, optimizer, { maxSteps: 6, checkpointDir: path.join(root, 'good'), evalEvery: 3, evaluate: (_, { step }) => 1 / step }).fit();
      good = new Uint8Array(fs.readFileSync(path.join(root, 'good', 'last', TRAINING_CHECKPOINT_FILE)));
      model.dispose();
      optimizer.dispose();
    });

    let count = 0;
    /** A run directory whose checkpoint is `make()`'s bytes, or the good one rewritten by `edit`. */
    function runWith(contents: { edit?: (state: TrainerState, tensors: Record<string, tf.Tensor>) => string | void; place?: (file: string) => void }): string {
      const dir = path.join(root, `hostile-${count++}`);
      const file = path.join(dir, 'last', TRAINING_CHECKPOINT_FILE);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (contents.place) {
        contents.place(file);
        return dir;
      }
      const { tensors, metadata } = readSafetensors(good);
      const created = Object.values(tensors);
      const state = JSON.parse(metadata['mie.trainer']) as TrainerState;
      const text = contents.edit?.(state, tensors);
      fs.writeFileSync(file, writeSafetensors(tensors, { ...metadata, 'mie.trainer': typeof text === 'string' ? text : JSON.stringify(state) }));
      tf.dispose([...created, ...Object.values(tensors)]);
      return dir;
    }

    const setMoment = (kind: string, value: number) => (_: TrainerState, tensors: Record<string, tf.Tensor>) => {
      const name = Object.keys(tensors).find((n) => n.startsWith(`optimizer.${kind}.`))!;
      const values = tensors[name].dataSync().slice();
      values[values.length - 1] = value;
      tensors[name] = tf.tensor(values, tensors[name].shape);
    };
    const raw = (text: string) => () => text;

    it.each<[string, Parameters<typeof runWith>[0], typeof MieError, RegExp]>([
      ['a FIFO', { place: (file) => execFileSync('mkfifo', [file]) }, MieSerializationError, /checkpoint\.safetensors must be a regular file\. Received: a FIFO\.$/],
      ['a directory', { place: (file) => fs.mkdirSync(file) }, MieSerializationError, /checkpoint\.safetensors must be a regular file\. Received: a directory\.$/],
      ['a sparse 64 GiB file', { place: (file) => (fs.writeFileSync(file, ''), fs.truncateSync(file, 64 * 2 ** 30)) }, MieSerializationError, /checkpoint\.safetensors is 68719476736 bytes, above the \d+-byte limit/],
      ['random bytes', { place: (file) => fs.writeFileSync(file, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131) % 256))) }, MieSerializationError, /cannot resume from/],
      ['mie.trainer "null"', { edit: raw('null') }, MieSerializationError, /the trainer state must be a JSON object\. Received: null/],
      ['a hostile constructor', { edit: raw('{"constructor":{"name":{"toString":1}}}') }, MieSerializationError, /unexpected field "constructor"/],
      ['a __proto__ key', { edit: (state) => `{"__proto__":{"toString":1},${JSON.stringify(state).slice(1)}` }, MieSerializationError, /unexpected field "__proto__"/],
      ['history nested 100,000 deep', { edit: (state) => JSON.stringify({ ...state, history: 0 }).replace('"history":0', `"history":${'['.repeat(100_000)}${']'.repeat(100_000)}`) }, MieSerializationError, /nested deeper than 64 levels/],
      ['a history record with hostile values', { edit: (state) => void Object.assign(state.history[3], { loss: { toString: 1, valueOf: 1 } }) }, MieSerializationError, /history\[3\]\.loss must be a finite number\. Received: an object/],
      ['2,000,000 evaluations', { edit: (state) => JSON.stringify({ ...state, evaluations: 0 }).replace('"evaluations":0', `"evaluations":[${'{},'.repeat(1_999_999)}{}]`) }, MieSerializationError, /"evaluations" must be an array of at most 6 records/],
      ['a wrong best metric', { edit: (state) => void (state.bestStep = 3) }, MieSerializationError, /"bestMetric" and "bestStep" must name one of its evaluations/],
      ['a step count above the step', { edit: (state) => void Object.keys(state.optimizer.steps).forEach((k) => (state.optimizer.steps[k] = 99)) }, MieSerializationError, /must be an integer in \[1, 6\]\. Received: 99/],
      ['a negative second moment', { edit: setMoment('expAvgSq', -1e-3) }, MieSerializationError, /"expAvgSq\.[^"]+" holds -0\.00[0-9]+ at index \d+ \(second moments must be finite and >= 0\)/],
      ['an infinite second moment', { edit: setMoment('expAvgSq', Infinity) }, MieSerializationError, /"expAvgSq\.[^"]+" holds Infinity/],
      ['a NaN first moment', { edit: setMoment('expAvg', NaN) }, MieSerializationError, /"expAvg\.[^"]+" holds NaN/],
      ['another seed', { edit: (state) => void (state.seed = 5) }, MieTrainingError, /it was trained with seed 5, this run has seed 0/],
    ])('refuses %s, naming the file, changing and leaking nothing', async (name, contents, type, message) => {
      const dir = runWith(contents);
      const model = makeModel(42);
      const optimizer = new AdamW(model, { lr: 1e-2 });
      await trainer(model, optimizer, { maxSteps: 2 }).fit();
      const before = snapshot(model, optimizer);
      const tensors = tf.memory().numTensors;
      const run = trainer(model, optimizer, { checkpointDir: dir });
      const started = performance.now();
      const error = (await run.fit({ resume: true }).catch((e: unknown) => e)) as Error;
      const elapsed = performance.now() - started;
      timings.push([name, elapsed]);
      expect(error).toBeInstanceOf(type);
      expect(error.message.startsWith(`Trainer.fit: cannot resume from ${path.join(dir, 'last', TRAINING_CHECKPOINT_FILE)}: `)).toBe(true);
      expect(error.message).toMatch(message);
      expect(tf.memory().numTensors).toBe(tensors);
      expect(snapshot(model, optimizer)).toEqual(before);
      expect(run.step).toBe(0);
      expectBackendHealthy();
      // Refused at once: no hostile file costs more than a few seconds (the 2,000,000-record one is a 6 MB header).
      expect(elapsed).toBeLessThan(5000);
      model.dispose();
      optimizer.dispose();
    });

    it('after a refused resume the same Trainer resumes the good run exactly', async () => {
      const straightModel = makeModel(1);
      const straightOptimizer = new AdamW(straightModel, { lr: 1e-2 });
      const straight = await trainer(straightModel, straightOptimizer, { maxSteps: 10, evalEvery: 3, evaluate: (_, { step }) => 1 / step }).fit();

      const model = makeModel(42);
      const optimizer = new AdamW(model, { lr: 1e-2 });
      const bad = runWith({ edit: setMoment('expAvgSq', -1) });
      const dir = path.join(root, 'retry');
      fs.cpSync(bad, dir, { recursive: true });
      const run = trainer(model, optimizer, { maxSteps: 10, checkpointDir: dir, evalEvery: 3, evaluate: (_, { step }) => 1 / step });
      await expect(run.fit({ resume: true })).rejects.toThrow(MieSerializationError);
      fs.copyFileSync(path.join(root, 'good', 'last', TRAINING_CHECKPOINT_FILE), path.join(dir, 'last', TRAINING_CHECKPOINT_FILE));
      const resumed = await run.fit({ resume: true });
      expect(resumed.history).toEqual(straight.history);
      expect(snapshot(model, optimizer)).toEqual(snapshot(straightModel, straightOptimizer));
      [model, straightModel].forEach((m) => m.dispose());
      [optimizer, straightOptimizer].forEach((o) => o.dispose());
    });
  });
});
