import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieSerializationError, readSafetensors, setBackend, setSeed, tf, writeSafetensors } from '@mie/core';
import { MultiLayerPerceptron } from '@mie/layers';
import { AdamW } from './adamw';
import { crossEntropyLoss } from './cross-entropy-loss';
import { ShuffledBatches } from './data-source';
import { MieTrainingError } from './errors';
import { seededUniform } from './random-order';
import { Trainer, type TrainerOptions } from './trainer';
import { TRAINING_CHECKPOINT_FILE, readTrainingCheckpoint, type TrainerState } from './training-checkpoint';

interface Batch {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
}

const random = seededUniform(3);
const FEATURES = Array.from({ length: 40 }, () => Array.from({ length: 4 }, () => random() * 2 - 1));
const LABELS = FEATURES.map((f) => f.slice(0, 3).indexOf(Math.max(...f.slice(0, 3))));
const data = () =>
  new ShuffledBatches<Batch>({
    size: 40,
    batchSize: 8,
    seed: 5,
    makeBatch: (indices) => ({ x: tf.tensor2d(indices.map((i) => FEATURES[i])), y: tf.tensor1d(indices.map((i) => LABELS[i]), 'int32') }),
  });

function makeModel(seed: number, hidden = 16): MultiLayerPerceptron {
  setSeed(seed);
  return new MultiLayerPerceptron({ inputDim: 4, hiddenDims: [hidden], outputDim: 3, dropout: 0.2 });
}

const METRICS = [0.9, 0.5, 0.7];

function trainer(model: MultiLayerPerceptron, optimizer: AdamW, options: Partial<TrainerOptions<MultiLayerPerceptron, Batch>>): Trainer<MultiLayerPerceptron, Batch> {
  return new Trainer({
    model,
    optimizer,
    loss: (m, batch) => crossEntropyLoss(m.forward(batch.x), batch.y),
    data: data(),
    clipGradNorm: 1,
    progress: 'none',
    maxSteps: 8,
    ...options,
  });
}

let root: string;
/** The bytes of a good checkpoint: 6 steps (across an epoch boundary), evaluations at 2, 4, 6. */
let pristine: Uint8Array;

beforeAll(async () => {
  await setBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-training-checkpoint-'));
  const model = makeModel(1);
  const optimizer = new AdamW(model, { lr: 1e-2 });
  await trainer(model, optimizer, { maxSteps: 6, checkpointDir: path.join(root, 'good'), evalEvery: 2, evaluate: (_, { step }) => METRICS[step / 2 - 1] }).fit();
  pristine = new Uint8Array(fs.readFileSync(path.join(root, 'good', 'last', TRAINING_CHECKPOINT_FILE)));
  model.dispose();
  optimizer.dispose();
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let cases = 0;

/** A checkpoint directory holding the good checkpoint after `mutate` (which may return the raw trainer-state text). */
function corrupted(mutate: (c: { state: TrainerState; tensors: Record<string, tf.Tensor>; metadata: Record<string, string> }) => string | void): string {
  const { tensors, metadata } = readSafetensors(pristine);
  const state = JSON.parse(metadata['mie.trainer']) as TrainerState;
  const created = Object.values(tensors);
  const text = mutate({ state, tensors, metadata });
  const trainerText = typeof text === 'string' ? text : JSON.stringify(state);
  const dir = path.join(root, `case-${cases++}`);
  fs.mkdirSync(path.join(dir, 'last'), { recursive: true });
  const out: Record<string, string> = { ...metadata };
  if (out['mie.trainer'] !== undefined) out['mie.trainer'] = trainerText;
  fs.writeFileSync(path.join(dir, 'last', TRAINING_CHECKPOINT_FILE), writeSafetensors(tensors, out));
  tf.dispose([...created, ...Object.values(tensors)]);
  return dir;
}

const firstName = (tensors: Record<string, tf.Tensor>, prefix: string) => Object.keys(tensors).find((name) => name.startsWith(prefix))!;

/** A model and optimizer that trained 2 steps of their own (so the optimizer has moments), and a copy of all their numbers. */
async function target(hidden = 16) {
  const model = makeModel(42, hidden);
  const optimizer = new AdamW(model, { lr: 1e-2 });
  await trainer(model, optimizer, { maxSteps: 2 }).fit();
  const snapshot = () => {
    const state = optimizer.getState();
    return {
      weights: Object.fromEntries(Object.entries(model.stateDict()).map(([name, v]) => [name, Buffer.from(v.dataSync().slice().buffer)])),
      moments: Object.fromEntries(Object.entries(state.tensors).map(([name, t]) => [name, Buffer.from(t.dataSync().slice().buffer)])),
      json: JSON.stringify(state.json),
    };
  };
  return { model, optimizer, snapshot, dispose: () => (model.dispose(), optimizer.dispose()) };
}

/** Resumes from `dir` and returns the error, after checking that it changed nothing and leaked nothing. */
async function refusal(dir: string, options: Partial<TrainerOptions<MultiLayerPerceptron, Batch>> = {}, hidden = 16): Promise<Error> {
  const t = await target(hidden);
  const before = t.snapshot();
  const tensors = tf.memory().numTensors;
  const run = trainer(t.model, t.optimizer, { checkpointDir: dir, ...options });
  const error = (await run.fit({ resume: true }).then(
    () => new Error('the resume succeeded'),
    (e: unknown) => e,
  )) as Error;
  expect(tf.memory().numTensors).toBe(tensors);
  // Bit-identical: the weights, the moments and the optimizer's lr and step counts.
  expect(t.snapshot()).toEqual(before);
  expect(run.step).toBe(0);
  t.dispose();
  expect(error.message).toContain(path.join(dir, 'last', TRAINING_CHECKPOINT_FILE));
  return error;
}

describe('readTrainingCheckpoint', () => {
  it('resumes from an unchanged round trip of the good checkpoint (the corruption helper itself is sound)', async () => {
    const dir = corrupted(() => undefined);
    const t = await target();
    const result = await trainer(t.model, t.optimizer, { checkpointDir: dir }).fit({ resume: true });
    expect(result.history.slice(0, 6).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect([result.bestMetric, result.bestStep]).toEqual([0.5, 4]);
    t.dispose();
  });

  it('refuses a checkpoint of another seed with a MieTrainingError, and the model and optimizer stay bit-identical', async () => {
    const dir = corrupted(() => undefined);
    const error = await refusal(dir, { seed: 7 });
    expect(error).toBeInstanceOf(MieTrainingError);
    expect(error.message).toBe(`Trainer.fit: cannot resume from ${path.join(dir, 'last', TRAINING_CHECKPOINT_FILE)}: it was trained with seed 0, this run has seed 7; resuming would not reproduce the run.`);
  });

  it('refuses a checkpoint of another model or metric mode with a MieTrainingError', async () => {
    const dir = corrupted(() => undefined);
    expect(await refusal(dir, {}, 8)).toBeInstanceOf(MieTrainingError);
    const max = await refusal(dir, { metricMode: 'max', evalEvery: 2, evaluate: () => 0 });
    expect(max).toBeInstanceOf(MieTrainingError);
    expect(max.message).toMatch(/best metric 0.5 is not the highest of its evaluations/);
  });

  const nthTensor = (prefix: string, value: number, index = 0) => (c: { tensors: Record<string, tf.Tensor> }) => {
    const name = firstName(c.tensors, prefix);
    const values = c.tensors[name].dataSync().slice();
    values[index] = value;
    c.tensors[name] = tf.tensor(values, c.tensors[name].shape);
  };
  const raw = (text: string) => () => text;
  const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

  it.each<[string, Parameters<typeof corrupted>[0], RegExp]>([
    ['mie.trainer "null"', raw('null'), /the trainer state must be a JSON object\. Received: null\.$/],
    ['mie.trainer an array', raw('[1,2]'), /the trainer state must be a JSON object\. Received: \[1, 2\]\.$/],
    ['mie.trainer not JSON', raw('{"step": 1,'), /the trainer state \(metadata "mie\.trainer"\) is not valid JSON/],
    ['no mie.trainer', (c) => void delete c.metadata['mie.trainer'], /not a MIE training checkpoint/],
    ['another format', (c) => void (c.metadata.format = 'mie'), /metadata "format" is "mie", expected "mie-training-checkpoint"/],
    ['a hostile object', raw('{"constructor":{"name":{"toString":1}}}'), /the trainer state has the unexpected field "constructor"\.$/],
    ['a __proto__ key', (c) => `{"__proto__":{"step":1},${JSON.stringify(c.state).slice(1)}`, /unexpected field "__proto__"/],
    ['an unknown field', (c) => void Object.assign(c.state, { extra: 1 }), /unexpected field "extra"/],
    ['formatVersion 2', (c) => void Object.assign(c.state, { formatVersion: 2 }), /unsupported trainer state formatVersion 2/],
    ['a string step', (c) => void Object.assign(c.state, { step: '6' }), /"step" must be an integer in \[0, \d+\]\. Received: "6"/],
    ['a fractional step', (c) => void Object.assign(c.state, { step: 5.5 }), /"step" must be an integer .* Received: 5\.5/],
    ['an infinite step (1e400)', (c) => JSON.stringify(c.state).replace('"step":6', '"step":1e400'), /"step" must be an integer .* Received: Infinity/],
    ['a negative epoch', (c) => void Object.assign(c.state, { epoch: -1 }), /"epoch" must be an integer in \[0/],
    ['a seed object', (c) => void Object.assign(c.state, { seed: { valueOf: 1 } }), /"seed" must be an integer .* Received: an object/],
    ['a short history', (c) => void c.state.history.pop(), /"history" must be an array of 6 step records \(one per step\)\. Received: 5 records/],
    ['a history of deep nesting', (c) => JSON.stringify({ ...c.state, history: 0 }).replace('"history":0', `"history":${deep(50_000)}`), /not valid JSON \(parseStrictJson: objects and arrays nested deeper than 64 levels/],
    ['a renumbered record', (c) => void (c.state.history[2].step = 9), /history\[2\]\.step must be 3\. Received: 9/],
    ['a string loss', (c) => void Object.assign(c.state.history[0], { loss: '1' }), /history\[0\]\.loss must be a finite number\. Received: "1"/],
    ['an extra record field', (c) => void Object.assign(c.state.history[1], { note: 'x' }), /history\[1\] has the unexpected field "note"/],
    ['a negative gradNorm', (c) => void (c.state.history[1].gradNorm = -1), /history\[1\]\.gradNorm must be a finite number >= 0/],
    ['a negative lr', (c) => void (c.state.history[1].lr = -1), /history\[1\]\.lr must be a finite number >= 0/],
    ['epochs going back', (c) => void ((c.state.history[4].epoch = 1), (c.state.history[5].epoch = 0)), /history\[5\]\.epoch must be an integer in \[1, 1\]/],
    ['a position beyond the last step', (c) => void Object.assign(c.state, { epoch: 3 }), /position \(epoch 3, batch 1\) does not follow the last step's epoch 1/],
    ['a huge evaluations array', (c) => JSON.stringify({ ...c.state, evaluations: 0 }).replace('"evaluations":0', `"evaluations":[${'0,'.repeat(999_999)}0]`), /"evaluations" must be an array of at most 6 records.*Received: 1000000 records/],
    ['an evaluation after the last step', (c) => void (c.state.evaluations[2].step = 7), /evaluations\[2\]\.step must be an integer in \[5, 6\]/],
    ['evaluations out of order', (c) => void (c.state.evaluations[1].step = 2), /evaluations\[1\]\.step must be an integer in \[3, 6\]/],
    ['a null metric', (c) => void Object.assign(c.state.evaluations[0], { metric: null }), /evaluations\[0\]\.metric must be a finite number\. Received: null/],
    ['a best metric not evaluated', (c) => void (c.state.bestMetric = 0.1), /"bestMetric" and "bestStep" must name one of its evaluations\. Received: 0\.1 at step 4/],
    ['a best step but no evaluations', (c) => void (c.state.evaluations = []), /must be null without evaluations\. Received: 0\.5 and 4/],
    ['a best metric in the middle', (c) => void ((c.state.bestMetric = 0.7), (c.state.bestStep = 6)), /"bestMetric" \(0\.7\) is neither the lowest nor the highest/],
    ['an optimizer lr not the last step\'s', (c) => void (c.state.optimizer.lr = 0.5), /optimizer\.lr \(0\.5\) must be the learning rate of the last step/],
    ['a step count above the step', (c) => void (c.state.optimizer.steps[Object.keys(c.state.optimizer.steps)[0]] = 7), /optimizer\.steps\["[^"]+"\] must be an integer in \[1, 6\]\. Received: 7/],
    ['an optimizer array', (c) => void Object.assign(c.state, { optimizer: [] }), /"optimizer" must be an object \{ lr, steps \}\. Received: \[\]/],
    ['a negative second moment', nthTensor('optimizer.expAvgSq.', -1, 3), /optimizer state: "expAvgSq\.[^"]+" holds -1 at index 3 \(second moments must be finite and >= 0\)/],
    ['a NaN second moment', nthTensor('optimizer.expAvgSq.', NaN), /"expAvgSq\.[^"]+" holds NaN at index 0/],
    ['an infinite first moment', nthTensor('optimizer.expAvg.', Infinity, 1), /"expAvg\.[^"]+" holds Infinity at index 1 \(moments must be finite\)/],
    ['a NaN weight', nthTensor('model.', NaN, 2), /"model\.[^"]+" holds NaN at index 2 \(weights must be finite\)/],
    ['a missing moment', (c) => void delete c.tensors[firstName(c.tensors, 'optimizer.expAvg.')], /optimizer state: "expAvg\.[^"]+" is missing/],
    ['a stray tensor', (c) => void (c.tensors.extra = tf.zeros([1])), /unexpected tensor "extra"/],
    ['a misshapen moment', (c) => void (c.tensors[firstName(c.tensors, 'optimizer.expAvgSq.')] = tf.zeros([1])), /has shape \[1\], expected/],
  ])('refuses %s with a MieSerializationError naming the file, changing nothing', async (_, mutate, message) => {
    const error = await refusal(corrupted(mutate));
    expect(error).toBeInstanceOf(MieSerializationError);
    expect(error.message).toMatch(/^Trainer\.fit: cannot resume from /);
    expect(error.message).toMatch(message);
  });

  it.each<[string, Parameters<typeof corrupted>[0]]>([
    ['a model tensor of another name', (c) => {
      const name = firstName(c.tensors, 'model.');
      c.tensors['model.other'] = c.tensors[name];
      delete c.tensors[name];
    }],
    ['a model tensor of another shape', (c) => void (c.tensors[firstName(c.tensors, 'model.')] = tf.zeros([2, 2]))],
    ['step counts of a parameter this optimizer lacks', (c) => void (c.state.optimizer.steps.other = 1)],
    ['step counts of a parameter named __proto__', (c) => JSON.stringify(c.state).replace('"steps":{', '"steps":{"__proto__":1,')],
  ])('refuses %s (a sound file of another run) with a MieTrainingError', async (_, mutate) => {
    expect(await refusal(corrupted(mutate))).toBeInstanceOf(MieTrainingError);
  });

  it('refuses a FIFO, a directory, an empty and a truncated file in place of the checkpoint, without blocking', async () => {
    const fifo = path.join(root, 'fifo');
    fs.mkdirSync(path.join(fifo, 'last'), { recursive: true });
    execFileSync('mkfifo', [path.join(fifo, 'last', TRAINING_CHECKPOINT_FILE)]);
    const started = performance.now();
    expect((await refusal(fifo)).message).toMatch(/checkpoint\.safetensors must be a regular file\. Received: a FIFO\.$/);
    expect(performance.now() - started).toBeLessThan(5000);
    const directory = path.join(root, 'directory');
    fs.mkdirSync(path.join(directory, 'last', TRAINING_CHECKPOINT_FILE), { recursive: true });
    expect((await refusal(directory)).message).toMatch(/checkpoint\.safetensors must be a regular file\. Received: a directory\.$/);
    for (const [name, bytes] of [['empty', pristine.subarray(0, 0)], ['truncated', pristine.subarray(0, pristine.length - 100)]] as const) {
      const dir = path.join(root, name);
      fs.mkdirSync(path.join(dir, 'last'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'last', TRAINING_CHECKPOINT_FILE), bytes);
      expect(await refusal(dir)).toBeInstanceOf(MieSerializationError);
    }
  });

  it('refuses a file far larger than this model and optimizer can need before reading it', async () => {
    const dir = path.join(root, 'huge');
    fs.mkdirSync(path.join(dir, 'last'), { recursive: true });
    const file = path.join(dir, 'last', TRAINING_CHECKPOINT_FILE);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 8 * 2 ** 30); // sparse: costs no disk
    const error = await refusal(dir);
    expect(error).toBeInstanceOf(MieSerializationError);
    expect(error.message).toMatch(/checkpoint\.safetensors is 8589934592 bytes, above the \d+-byte limit\.$/);
  });

  it('readTrainingCheckpoint names itself and checks the seed only when asked', async () => {
    const dir = corrupted(() => undefined);
    const t = await target();
    await expect(readTrainingCheckpoint(path.join(dir, 'last'), t.model, t.optimizer, { seed: 3 })).rejects.toThrow(/^readTrainingCheckpoint: cannot resume from .*seed 0, this run has seed 3/);
    const state = await readTrainingCheckpoint(path.join(dir, 'last'), t.model, t.optimizer);
    expect([state.step, state.seed, state.history.length]).toEqual([6, 0, 6]);
    expect(Object.getPrototypeOf(state)).toBe(Object.prototype);
    t.dispose();
  });
});

