/**
 * `mie train digits`: trains an image-to-sequence transformer (a ViT encoder over 14 x 14 patches
 * and a text decoder) to read strips of 1 to 5 handwritten MNIST digits within a wall-clock
 * budget, keeps the checkpoint with the best validation sequence accuracy, then reports test
 * sequence accuracy and digit error rate, greedy and beam, and writes:
 *
 *   DIR/model/              the best model (an ImageToSequenceTransformer; tokens: PAD 0, BOS 1, EOS 2, digit d = 3 + d)
 *   DIR/train/              the trainer's resumable state (last/), best checkpoint (best/) and the
 *                           run's architecture and schedule (digits-config.json)
 *   DIR/metrics.json        every number printed at the end
 *   DIR/loss-curve.png      training loss and validation sequence error against steps
 *   DIR/attention-N.png     test strip N with each emitted digit's cross-attention over it
 *
 * Training strips are composed on the fly from MNIST train digits 0 .. 54,999; the validation
 * strips that pick the checkpoint from train digits 55,000 .. 59,999; the 10,000 test strips from
 * MNIST test digits, with a fixed seed, used only for the final report (see digits-data.ts). The
 * same directory rules, atomic writes and resume as `mie train g2p` (see run-directory.ts).
 */
import * as path from 'node:path';
import { MieConfigError, getDevice, setSeed, tf, type DeviceInfo } from '@mie/core';
import { renderImageAttention } from '@mie/plot';
import { AdamW, Trainer, cosineSchedule, crossEntropyLoss, noDecayForBiasesAndNorms } from '@mie/training';
import { ImageToSequenceTransformer, type ImageToSequenceTransformerConfig, type ImageToSequenceTransformerOptions } from '@mie/transformer';
import {
  BOS,
  DIGITS_VOCAB_SIZE,
  EOS,
  PAD,
  STRIP_HEIGHT,
  STRIP_WIDTH,
  TARGET_LENGTH,
  TRAIN_DIGITS,
  TrainingStrips,
  digitTokens,
  loadMnist,
  renderStrips,
  stripImages,
  stripText,
  testStrips,
  tokensToDigits,
  validationStrips,
  type DigitBatch,
  type DigitSet,
  type Strip,
} from './digits-data';
import { renderLossCurve } from './loss-curve';
import { editDistance } from './metrics';
import { checkScheduleConfig, readRunConfig } from './run-config';
import { DIGITS_RUN } from './run-directory';
import { checkRunOptions, deviceLine, fitAndKeepBest, forwardAndBackward, openRun, plannedSteps, runFileWriter, type RunOptions } from './training-run';

/** The architecture options `mie train digits` chooses (image size, vocabulary and special tokens are the task's). */
export type DigitsArchitecture = Omit<ImageToSequenceTransformerOptions, 'imageSize' | 'numChannels' | 'vocabSize' | 'padTokenId' | 'bosTokenId' | 'eosTokenId' | 'maxSeqLength'>;

/**
 * The model: a ViT encoder on 14 x 14 patches (2 x 10 = 20 patches, four per digit, learned
 * positions) and a decoder over the digits (learned positions), d 64, 4 heads, d_ff 256,
 * pre-norm, GELU, 2 + 2 layers, no dropout (the strips are new every step): 0.25M parameters.
 * The PyTorch calibration of the task used 7 x 7 patches (80); on one CPU core 14 x 14 patches
 * train about 3-4 times as many steps in the same time and reach a better model within
 * 10 minutes (see the package README for both).
 */
export const DIGITS_ARCHITECTURE: DigitsArchitecture = {
  patchSize: 14,
  dModel: 64,
  numHeads: 4,
  numEncoderLayers: 2,
  numDecoderLayers: 2,
  dFf: 256,
  dropout: 0,
  positionalEncoding: 'learned',
  decoderPositionalEncoding: 'learned',
  activation: 'gelu',
  normFirst: true,
};

/** Options of {@link trainDigits}. */
export interface TrainDigitsOptions extends RunOptions {
  /** Stop after this many steps in total (tests, smoke runs); also the length of the learning-rate schedule. */
  maxSteps?: number;
  /** Compose training strips from only the first this many train digits (tests). Default 55,000. */
  trainDigits?: number;
  /** Validation strips that pick the best checkpoint. Default 1,000. */
  validationStrips?: number;
  /** Test strips reported (the first this many of the 10,000). Default 10,000. */
  testStrips?: number;
  /** Strips per batch. Default 64. */
  batchSize?: number;
  /** Peak learning rate (AdamW, after a linear warm-up, then cosine). Default 2e-3. */
  peakLr?: number;
  /** Overrides the architecture ({@link DIGITS_ARCHITECTURE}). */
  transformer?: Partial<DigitsArchitecture>;
  /** Beams of the beam-search report (0 skips it). Default 5. */
  numBeams?: number;
  /** Test strips drawn with their attention (`attention-N.png`). Default 4. */
  attentionStrips?: number;
}

/** The architecture and schedule a run keeps in `train/digits-config.json`. */
export interface DigitsRunConfig {
  model: ImageToSequenceTransformerConfig;
  batchSize: number;
  scheduleSteps: number;
  warmupSteps: number;
  peakLr: number;
  evalEvery: number;
}

/** What one decoding strategy scored on the test strips. */
export interface StripReport {
  /** Strips whose whole digit string is right. */
  sequenceAccuracy: number;
  /** Summed edit distance to the true strings over their summed lengths. */
  digitErrorRate: number;
  strips: number;
  /** Wall-clock seconds of decoding the strips (batches of 500 images; beam search: 100). */
  seconds: number;
}

/** Everything `mie train digits` reports (also written to metrics.json). */
export interface DigitsMetrics {
  device: DeviceInfo;
  parameters: number;
  config: DigitsRunConfig;
  training: {
    minutes: number;
    steps: number;
    epochs: number;
    stoppedBy: string;
    trainDigits: number;
    stripsSeen: number;
    validationStrips: number;
    /** Best validation sequence accuracy (greedy) and its step. */
    bestValidationAccuracy: number;
    bestStep: number | null;
  };
  test: { greedy: StripReport; beam?: StripReport & { numBeams: number } };
  samples: Array<{ strip: number; truth: string; predicted: string; correct: boolean }>;
}

const NAME = 'mie train digits';
const OPTIONS = [
  'minutes', 'out', 'seed', 'resume', 'force', 'log', 'maxSteps', 'trainDigits', 'validationStrips', 'testStrips', 'batchSize', 'peakLr', 'transformer',
  'numBeams', 'attentionStrips', 'logEvery', 'progress',
] as const;
/** Evaluations on the validation strips in a run (about). */
const EVALUATIONS = 10;
const writeRunFiles = runFileWriter(NAME);

function checkTrainOptions(options: TrainDigitsOptions): void {
  checkRunOptions(NAME, options, OPTIONS);
  for (const key of ['maxSteps', 'trainDigits', 'validationStrips', 'testStrips', 'batchSize', 'numBeams', 'attentionStrips'] as const) {
    const value = options[key];
    const min = key === 'numBeams' || key === 'attentionStrips' ? 0 : 1;
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= min)) throw new MieConfigError(`${NAME}: option "${key}" must be an integer >= ${min}. Received: ${String(value)}.`);
  }
  if (options.trainDigits !== undefined && options.trainDigits > TRAIN_DIGITS) {
    throw new MieConfigError(`${NAME}: option "trainDigits" must be at most ${TRAIN_DIGITS} (the rest are the validation digits). Received: ${options.trainDigits}.`);
  }
  if (options.testStrips !== undefined && options.testStrips > 10_000) throw new MieConfigError(`${NAME}: option "testStrips" must be at most 10000. Received: ${options.testStrips}.`);
  if (options.peakLr !== undefined && !(typeof options.peakLr === 'number' && options.peakLr > 0 && options.peakLr < 1)) {
    throw new MieConfigError(`${NAME}: option "peakLr" must be a number in (0, 1). Received: ${String(options.peakLr)}.`);
  }
}

/** The model of an architecture: strips of 28 x 140 grey pixels, the digit vocabulary, targets of up to 5 digits. */
export function digitsModel(architecture: DigitsArchitecture): ImageToSequenceTransformer {
  return new ImageToSequenceTransformer({
    ...architecture,
    imageSize: [STRIP_HEIGHT, STRIP_WIDTH],
    numChannels: 1,
    vocabSize: DIGITS_VOCAB_SIZE,
    maxSeqLength: TARGET_LENGTH + 1,
    padTokenId: PAD,
    bosTokenId: BOS,
    eosTokenId: EOS,
  });
}

/** Reads `train/digits-config.json` and builds its model (a bad file is a `MieConfigError` naming it). */
async function resumedRun(file: string, checkpointBytes: number): Promise<{ config: DigitsRunConfig; model: ImageToSequenceTransformer }> {
  return readRunConfig({
    command: NAME, file, checkpointBytes, shape: '{ model, batchSize, scheduleSteps, warmupSteps, peakLr, evalEvery }', kind: 'a digit-strip reader',
    build: (value) => {
      const config = checkScheduleConfig('digits-config.json', value) as unknown as DigitsRunConfig;
      const model = new ImageToSequenceTransformer(config.model);
      const { imageSize, numChannels, vocabSize } = model.config;
      if (imageSize[0] !== STRIP_HEIGHT || imageSize[1] !== STRIP_WIDTH || numChannels !== 1 || vocabSize !== DIGITS_VOCAB_SIZE) {
        model.dispose();
        throw new MieConfigError(`"model" must read ${STRIP_HEIGHT} x ${STRIP_WIDTH} grey strips into ${DIGITS_VOCAB_SIZE} tokens.`);
      }
      return { config: { ...config, model: model.config }, model };
    },
  });
}

/** Options of {@link readStrips}. */
export interface ReadStripsOptions {
  /** Beam search with this many beams; 1 (default) is greedy. */
  numBeams?: number;
  /** Images per generate call. Default 500 (greedy) or `500 / numBeams`. */
  batchSize?: number;
}

/**
 * Reads `strips` of `set` with `model` (greedy or beam search, cached) and resolves to each
 * strip's digits and the wall-clock seconds it took. Frees what it computes.
 */
export async function readStrips(model: ImageToSequenceTransformer, set: DigitSet, strips: readonly Strip[], options: ReadStripsOptions = {}): Promise<{ predictions: number[][]; seconds: number }> {
  const { numBeams = 1 } = options;
  const batchSize = options.batchSize ?? Math.max(1, Math.floor(500 / numBeams));
  const started = performance.now();
  const predictions: number[][] = [];
  for (let start = 0; start < strips.length; start += batchSize) {
    const images = stripImages(set, strips.slice(start, start + batchSize));
    try {
      const { sequences } = await model.generate(images, { maxNewTokens: TARGET_LENGTH, numBeams, eosTokenId: EOS, bosTokenId: BOS });
      predictions.push(...sequences.map(tokensToDigits));
    } finally {
      images.dispose();
    }
  }
  return { predictions, seconds: (performance.now() - started) / 1000 };
}

/** Sequence accuracy and digit error rate of `predictions` against the strips' digits. */
export function stripScores(predictions: readonly (readonly number[])[], strips: readonly Strip[]): { sequenceAccuracy: number; digitErrorRate: number } {
  let right = 0;
  let edits = 0;
  let length = 0;
  strips.forEach((strip, i) => {
    const truth = strip.digits.map(String);
    const distance = editDistance(predictions[i].map(String), truth);
    if (distance === 0) right++;
    edits += distance;
    length += truth.length;
  });
  return { sequenceAccuracy: strips.length ? right / strips.length : 0, digitErrorRate: length ? edits / length : 0 };
}

/** The loss of a batch: cross-entropy with label smoothing 0.1 over the target tokens (digits and EOS). */
function batchLoss(model: ImageToSequenceTransformer, batch: DigitBatch): tf.Tensor {
  return crossEntropyLoss(model.forward(batch.images, batch.input), batch.target, { ignoreIndex: PAD, labelSmoothing: 0.1 });
}

/**
 * Each emitted token's cross-attention over the patches: the mean over the decoder's layers and
 * heads of `[t, s]` for the prediction fed back as the target (`[BOS, digits]`), one row per
 * emitted digit and a last row for the end of the string.
 */
async function digitAttention(model: ImageToSequenceTransformer, images: tf.Tensor, digits: readonly number[]): Promise<number[][]> {
  const maps = tf.tidy(() => {
    const tgt = tf.tensor2d([[BOS, ...digitTokens(digits)]], [1, digits.length + 1], 'int32');
    const { crossAttention, logits, encoderSelfAttention, decoderSelfAttention } = model.forward(images, tgt, { returnAttention: true });
    tf.dispose([logits, ...encoderSelfAttention, ...decoderSelfAttention]);
    const mean = tf.mean(tf.stack(crossAttention), [0, 2]); // [layers, 1, h, t, s] -> [1, t, s]
    return tf.reshape(mean, mean.shape.slice(1)); // -> [t, s]
  });
  try {
    return (await maps.array()) as number[][];
  } finally {
    maps.dispose();
  }
}

/** Trains, evaluates and writes the artefacts; resolves to the metrics. */
export async function trainDigits(options: TrainDigitsOptions): Promise<DigitsMetrics> {
  checkTrainOptions(options);
  const log = options.log ?? ((line: string) => console.log(line));
  const { device, trainDir, resumed } = await openRun(NAME, options, DIGITS_RUN, 'digits-config.json', resumedRun);
  const models: ImageToSequenceTransformer[] = resumed ? [resumed.model] : [];
  try {
    setSeed(options.seed);
    const { train, test } = loadMnist();
    const validation = validationStrips(train, options.validationStrips ?? 1000);
    const tests = testStrips(test).slice(0, options.testStrips ?? 10_000);
    const trainDigits = options.trainDigits ?? TRAIN_DIGITS;
    const selectionMetric = async (m: ImageToSequenceTransformer) => 1 - stripScores((await readStrips(m, train, validation)).predictions, validation).sequenceAccuracy;

    let model: ImageToSequenceTransformer;
    let config: DigitsRunConfig;
    if (resumed) {
      ({ config, model } = resumed);
    } else {
      model = digitsModel({ ...DIGITS_ARCHITECTURE, ...options.transformer });
      models.push(model);
      const batchSize = options.batchSize ?? 64;
      let scheduleSteps = options.maxSteps;
      if (scheduleSteps === undefined) {
        const probe = new TrainingStrips({ train, batchSize, seed: options.seed, digits: trainDigits }).batch(0, 0);
        try {
          scheduleSteps = await plannedSteps({
            step: forwardAndBackward(model, () => batchLoss(model, probe)),
            evaluate: () => {
              model.eval();
              return selectionMetric(model);
            },
            minutes: options.minutes,
            evaluations: EVALUATIONS,
            timedSteps: 5,
            overhead: 1.1,
          });
        } finally {
          tf.dispose([probe.images, probe.input, probe.target]);
        }
      }
      const warmupSteps = Math.min(200, Math.floor(scheduleSteps / 10));
      const peakLr = options.peakLr ?? 2e-3;
      config = { model: model.config, batchSize, scheduleSteps, warmupSteps, peakLr, evalEvery: Math.max(1, Math.round(scheduleSteps / EVALUATIONS)) };
      await writeRunFiles(trainDir, [['digits-config.json', new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n')]]);
    }
    const data = new TrainingStrips({ train, batchSize: config.batchSize, seed: options.seed, digits: trainDigits });
    log(deviceLine(device));
    log(`data: MNIST strips of 1-5 digits (28 x 140), on the fly from ${trainDigits.toLocaleString('en')} train digits; ${validation.length.toLocaleString('en')} validation strips (train digits 55,000-59,999), ${tests.length.toLocaleString('en')} test strips (test digits)`);
    log(`model: ${model.countParameters().toLocaleString('en')} parameters, ViT on ${config.model.patchSize} x ${config.model.patchSize} patches (${model.encoder.numPatches}), ${config.model.numEncoderLayers} + ${config.model.numDecoderLayers} layers, d ${config.model.dModel}`);
    log(`schedule: cosine over ${config.scheduleSteps} steps of ${config.batchSize} strips, warm-up ${config.warmupSteps}, peak lr ${config.peakLr}, evaluation every ${config.evalEvery} steps`);

    const optimizer = new AdamW(model, { lr: config.peakLr, betas: [0.9, 0.98], weightDecay: 0.05, noDecay: noDecayForBiasesAndNorms });
    const trainer = new Trainer<ImageToSequenceTransformer, DigitBatch>({
      model,
      data,
      optimizer,
      schedule: cosineSchedule({ peakLr: config.peakLr, warmupSteps: config.warmupSteps, totalSteps: config.scheduleSteps, minLr: config.peakLr / 20 }),
      loss: batchLoss,
      maxMinutes: options.minutes,
      ...(options.maxSteps !== undefined ? { maxSteps: options.maxSteps } : {}),
      clipGradNorm: 1,
      seed: options.seed,
      evaluate: (m) => selectionMetric(m),
      evalEvery: config.evalEvery,
      metricMode: 'min',
      checkpointDir: trainDir,
      saveEvery: config.evalEvery,
      logEvery: options.logEvery ?? 50,
      progress: options.progress ?? 'auto',
      log,
      countTokens: (batch) => batch.tokens,
    });
    const { result, best, bestMetric, bestStep } = await fitAndKeepBest(trainer, {
      model,
      out: options.out,
      trainDir,
      resume: options.resume ?? false,
      evaluate: selectionMetric,
      dispose: () => optimizer.dispose(),
      models,
    });
    log(`training: ${result.step} steps, ${result.epoch} full epochs, stopped by ${result.stoppedBy}; best validation sequence accuracy ${(100 * (1 - bestMetric)).toFixed(1)}% (step ${bestStep})`);

    const report = async (numBeams: number): Promise<StripReport> => {
      const { predictions, seconds } = await readStrips(best, test, tests, { numBeams });
      const scores = stripScores(predictions, tests);
      const name = numBeams > 1 ? `beam ${numBeams}` : 'greedy';
      log(`test (${name}): sequence accuracy ${(100 * scores.sequenceAccuracy).toFixed(2)}%, digit error rate ${(100 * scores.digitErrorRate).toFixed(2)}% on ${tests.length.toLocaleString('en')} strips (${seconds.toFixed(1)} s)`);
      return { ...scores, strips: tests.length, seconds };
    };
    const greedy = await report(1);
    const numBeams = options.numBeams ?? 5;
    const beam = numBeams > 1 ? { ...(await report(numBeams)), numBeams } : undefined;

    // A few test strips of several digits, with where the model looked for each digit.
    const files: Array<[string, Uint8Array]> = [];
    const samples: DigitsMetrics['samples'] = [];
    const shown = tests.map((strip, i) => [strip, i] as const).filter(([strip]) => strip.digits.length >= 3).slice(0, options.attentionStrips ?? 4);
    const { predictions } = await readStrips(best, test, shown.map(([strip]) => strip));
    for (const [k, [strip, index]] of shown.entries()) {
      const predicted = predictions[k];
      const pixels = renderStrips(test, [strip]);
      const images = tf.tensor4d(pixels, [1, STRIP_HEIGHT, STRIP_WIDTH, 1], 'float32');
      let maps: number[][];
      try {
        maps = await digitAttention(best, images, predicted);
      } finally {
        images.dispose();
      }
      const truth = stripText(strip);
      const text = predicted.join('');
      samples.push({ strip: index, truth, predicted: text, correct: text === truth });
      log(`  test strip ${index}: ${truth} -> ${text}${text === truth ? '' : ' (wrong)'}`);
      const patch = best.config.patchSize;
      const grid: [number, number] = [STRIP_HEIGHT / patch, STRIP_WIDTH / patch];
      // A class token (not the default) is the first key: the grid is the rest.
      const offset = best.config.classToken ? 1 : 0;
      files.push([
        `attention-${index}.png`,
        await renderImageAttention({
          pixels, imageSize: [STRIP_HEIGHT, STRIP_WIDTH], grid, maps: maps.map((row) => row.slice(offset)), labels: [...predicted.map(String), 'end'],
          title: `test strip ${index}: ${truth}, read as ${text || '(nothing)'}`,
        }),
      ]);
    }

    const metrics: DigitsMetrics = {
      device: getDevice(),
      parameters: best.countParameters(),
      config,
      training: {
        minutes: options.minutes,
        steps: result.step,
        epochs: result.epoch,
        stoppedBy: result.stoppedBy,
        trainDigits,
        stripsSeen: result.step * config.batchSize,
        validationStrips: validation.length,
        bestValidationAccuracy: 1 - bestMetric,
        bestStep,
      },
      test: beam ? { greedy, beam } : { greedy },
      samples,
    };
    files.unshift(['metrics.json', new TextEncoder().encode(JSON.stringify(metrics, null, 2) + '\n')]);
    const curve = await renderLossCurve(result, { title: 'Reading MNIST digit strips', yLabel: 'loss (nats) / validation sequence error', metricName: 'validation sequence error' });
    if (curve !== null) files.push(['loss-curve.png', curve]);
    await writeRunFiles(options.out, files);
    log(`wrote ${path.join(options.out, 'model')}, metrics.json, loss-curve.png and ${files.filter(([name]) => name.startsWith('attention-')).length} attention pictures`);
    return metrics;
  } finally {
    for (const m of models) m.dispose();
  }
}
