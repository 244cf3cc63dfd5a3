/**
 * `mie train lm`: trains a character-level decoder-only transformer on the Brown Corpus within a
 * wall-clock budget (random windows of the training text, next-character prediction), keeps the
 * checkpoint with the best validation bits per character, then reports validation and test bpc
 * against the unigram and bigram baselines, with a few sampled continuations, and writes:
 *
 *   DIR/model/          the best model (config.json + model.safetensors, characters inside)
 *   DIR/train/          the trainer's resumable state (last/), best checkpoint (best/) and the
 *                       run's architecture and schedule (lm-config.json)
 *   DIR/metrics.json    every number printed at the end
 *   DIR/loss-curve.png  training loss and validation bpc against steps
 *
 * The model is picked on a fixed sample of validation windows; the whole validation and test
 * splits are scored only after training. The same directory rules, atomic writes and resume as
 * `mie train g2p` (see run-directory.ts).
 */
import * as path from 'node:path';
import { MieConfigError, getDevice, setSeed, tf, type DeviceInfo } from '@mie/core';
import { AdamW, Trainer, cosineSchedule, crossEntropyLoss, noDecayForBiasesAndNorms } from '@mie/training';
import { CharLanguageModel, type CharLanguageModelConfig, type CharTransformerOptions } from './char-language-model';
import { CharVocabulary, PAD, RandomWindows, loadLMSplits, ngramBaselines, scoringWindows, type BitsPerCharacter, type LMDocument, type ScoringWindow, type WindowBatch } from './lm-data';
import { renderLossCurve } from './loss-curve';
import { checkScheduleConfig, readRunConfig } from './run-config';
import { LM_RUN } from './run-directory';
import { checkRunOptions, deviceLine, fitAndKeepBest, forwardAndBackward, openRun, plannedSteps, runFileWriter, type RunOptions } from './training-run';

/** Options of {@link trainLM}. */
export interface TrainLMOptions extends RunOptions {
  /** Stop after this many steps in total (tests, smoke runs); also the length of the learning-rate schedule. */
  maxSteps?: number;
  /** Use only the first this many training documents (tests). */
  trainDocuments?: number;
  /** Score only the first this many validation documents, and test documents, in the final report (tests). Default: all. */
  validationDocuments?: number;
  testDocuments?: number;
  /** Validation windows that pick the best checkpoint (spread over the whole split). Default 256. */
  selectionWindows?: number;
  /** Windows per batch. Default 32. */
  batchSize?: number;
  /** Overrides the architecture ({@link LM_ARCHITECTURE}); `maxSeqLength` is the training window. */
  transformer?: Partial<CharTransformerOptions>;
  /** Sampled continuations in the report. Default 3. */
  samples?: number;
  /** Characters of each sampled continuation. Default 160. */
  sampleLength?: number;
}

/** The architecture and schedule a run keeps in `train/lm-config.json`. */
export interface LMRunConfig {
  model: CharLanguageModelConfig;
  /** Windows per batch. */
  batchSize: number;
  /** Steps of the cosine schedule (planned from the budget and the device's measured speed, or `maxSteps`). */
  scheduleSteps: number;
  warmupSteps: number;
  peakLr: number;
  /** Steps between evaluations on the validation sample (and saves of `train/last`). */
  evalEvery: number;
}

/** Scores of the model and the baselines on one split. */
export interface SplitReport {
  documents: number;
  /** Predicted tokens (characters and document ends). */
  tokens: number;
  model: number;
  unigram: number;
  bigram: number;
  seconds: number;
}

/** Everything `mie train lm` reports (also written to metrics.json). */
export interface LMMetrics {
  device: DeviceInfo;
  parameters: number;
  config: LMRunConfig;
  training: {
    minutes: number;
    steps: number;
    epochs: number;
    stoppedBy: string;
    trainDocuments: number;
    trainTokens: number;
    tokensSeen: number;
    selectionWindows: number;
    bestValidationBpc: number;
    bestStep: number | null;
  };
  /** Bits per character (bpc) of the model and the baselines. */
  validation: SplitReport;
  test: SplitReport;
  samples: Array<{ prompt: string; continuation: string; temperature: number; seed: number }>;
}

/**
 * The model `mie train lm` trains: d 128, 4 heads, 4 pre-norm layers, d_ff 512, GELU, rotary
 * positions, tied embeddings, context 128, no dropout (the budget sees the training text about
 * once). With OpenBLAS on one core it trains about 10,000 tokens per second in batches of 32.
 */
export const LM_ARCHITECTURE: CharTransformerOptions = {
  dModel: 128,
  numHeads: 4,
  numLayers: 4,
  dFf: 512,
  dropout: 0,
  maxSeqLength: 128,
  positionalEncoding: 'rotary',
  activation: 'gelu',
  normFirst: true,
  tieEmbeddings: true,
};

const NAME = 'mie train lm';
const OPTIONS = [
  'minutes', 'out', 'seed', 'resume', 'force', 'log', 'maxSteps', 'trainDocuments', 'validationDocuments', 'testDocuments', 'selectionWindows',
  'batchSize', 'transformer', 'samples', 'sampleLength', 'logEvery', 'progress',
] as const;
const LN2 = Math.log(2);
/** Evaluations on the validation sample in a run (about). */
const EVALUATIONS = 10;
/** Sampling of the report's continuations. */
const SAMPLE_TEMPERATURE = 0.8;

const writeRunFiles = runFileWriter(NAME);

function checkTrainOptions(options: TrainLMOptions): void {
  checkRunOptions(NAME, options, OPTIONS);
  for (const key of ['maxSteps', 'trainDocuments', 'validationDocuments', 'testDocuments', 'selectionWindows', 'batchSize', 'samples', 'sampleLength'] as const) {
    const value = options[key];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= (key === 'samples' ? 0 : 1))) {
      throw new MieConfigError(`${NAME}: option "${key}" must be an integer >= ${key === 'samples' ? 0 : 1}. Received: ${String(value)}.`);
    }
  }
}

/** Reads `train/lm-config.json` and builds its model (a bad file is a `MieConfigError` naming it; see `readRunConfig`). */
async function resumedRun(file: string, checkpointBytes: number): Promise<{ config: LMRunConfig; model: CharLanguageModel }> {
  return readRunConfig({
    command: NAME, file, checkpointBytes, shape: '{ model, batchSize, scheduleSteps, warmupSteps, peakLr, evalEvery }', kind: 'a language-model run',
    build: (value) => {
      const config = checkScheduleConfig('lm-config.json', value) as unknown as LMRunConfig;
      const model = new CharLanguageModel(config.model);
      return { config: { ...config, model: model.config }, model };
    },
  });
}

/**
 * Bits per character of `model` on `windows` ({@link scoringWindows}): the summed cross-entropy
 * of every scored target, in bits, over their number. Batches of 64 windows; frees what it computes.
 */
export async function scoreWindows(model: CharLanguageModel, windows: readonly ScoringWindow[], batchSize = 64): Promise<BitsPerCharacter> {
  let nats = 0;
  let tokens = 0;
  const length = windows[0]?.input.length ?? 0;
  for (let start = 0; start < windows.length; start += batchSize) {
    const chunk = windows.slice(start, start + batchSize);
    const input = tf.tensor2d(chunk.map((w) => w.input), [chunk.length, length], 'int32');
    const target = tf.tensor2d(chunk.map((w) => w.target), [chunk.length, length], 'int32');
    const loss = tf.tidy(() => crossEntropyLoss(model.forward(input), target, { ignoreIndex: PAD, reduction: 'sum' }));
    try {
      nats += (await loss.data())[0];
    } finally {
      tf.dispose([input, target, loss]);
    }
    tokens += chunk.reduce((n, w) => n + w.target.filter((id) => id !== PAD).length, 0);
  }
  return { bpc: tokens ? nats / LN2 / tokens : NaN, tokens };
}

/** `count` windows spread evenly over `windows` (all of them when there are fewer). */
function spread<T>(windows: readonly T[], count: number): T[] {
  if (windows.length <= count) return [...windows];
  return Array.from({ length: count }, (_, i) => windows[Math.floor((i * windows.length) / count)]);
}

/** Trains, evaluates and writes the artefacts; resolves to the metrics. */
export async function trainLM(options: TrainLMOptions): Promise<LMMetrics> {
  checkTrainOptions(options);
  const log = options.log ?? ((line: string) => console.log(line));
  // A resumed run keeps its architecture and schedule; its config is checked before the corpus is read.
  const { device, trainDir, resumed } = await openRun(NAME, options, LM_RUN, 'lm-config.json', resumedRun);
  // Whatever fails from here on, the models are freed (dispose is idempotent).
  const models: CharLanguageModel[] = resumed ? [resumed.model] : [];
  try {
    setSeed(options.seed);
    const splits = loadLMSplits();
    const trainDocuments = options.trainDocuments ? splits.train.slice(0, options.trainDocuments) : splits.train;
    // The vocabulary comes from the whole training split, whatever part of it is used.
    const vocabulary = resumed?.model.vocabulary ?? CharVocabulary.fromTexts(splits.train.map((d) => d.text));
    const encode = (documents: readonly LMDocument[]) => documents.map((d) => vocabulary.encodeDocument(d.text));
    const train = encode(trainDocuments);
    const validation = encode(options.validationDocuments ? splits.validation.slice(0, options.validationDocuments) : splits.validation);
    const test = encode(options.testDocuments ? splits.test.slice(0, options.testDocuments) : splits.test);

    let model: CharLanguageModel;
    let config: LMRunConfig;
    let data: RandomWindows;
    let selection: ScoringWindow[];
    if (resumed) {
      ({ config, model } = resumed);
      const context = model.contextLength;
      data = new RandomWindows({ documents: train, length: context, batchSize: config.batchSize, seed: options.seed });
      selection = spread(scoringWindows(validation, context, context / 2), options.selectionWindows ?? 256);
    } else {
      const transformer = { ...LM_ARCHITECTURE, ...options.transformer };
      model = new CharLanguageModel({ characters: [...vocabulary.characters], transformer });
      models.push(model);
      const context = model.contextLength;
      const batchSize = options.batchSize ?? 32;
      data = new RandomWindows({ documents: train, length: context, batchSize, seed: options.seed });
      selection = spread(scoringWindows(validation, context, Math.max(1, Math.floor(context / 2))), options.selectionWindows ?? 256);
      let scheduleSteps = options.maxSteps;
      if (scheduleSteps === undefined) {
        const probe = data.batch(0, 0);
        try {
          scheduleSteps = await plannedSteps({
            step: forwardAndBackward(model, () => crossEntropyLoss(model.forward(probe.input), probe.target, { ignoreIndex: PAD })),
            evaluate: () => {
              model.eval();
              return scoreWindows(model, selection);
            },
            minutes: options.minutes,
            evaluations: EVALUATIONS,
            timedSteps: 2,
            overhead: 1.05,
          });
        } finally {
          tf.dispose([probe.input, probe.target]);
        }
      }
      const warmupSteps = Math.min(100, Math.floor(scheduleSteps / 10));
      config = { model: model.config, batchSize, scheduleSteps, warmupSteps, peakLr: 2e-3, evalEvery: Math.max(1, Math.round(scheduleSteps / EVALUATIONS)) };
      await writeRunFiles(trainDir, [['lm-config.json', new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n')]]);
    }
    const trainTokens = train.reduce((n, ids) => n + ids.length, 0);
    log(deviceLine(device));
    log(`data: Brown Corpus, ${trainDocuments.length} train / ${splits.validation.length} validation / ${splits.test.length} test documents; ${trainTokens.toLocaleString('en')} training tokens, ${vocabulary.size} ids`);
    log(`model: ${model.countParameters().toLocaleString('en')} parameters, ${JSON.stringify(config.model.transformer)}`);
    log(`schedule: cosine over ${config.scheduleSteps} steps of ${config.batchSize} x ${model.contextLength} tokens, peak lr ${config.peakLr}, evaluation every ${config.evalEvery} steps`);

    const optimizer = new AdamW(model, { lr: config.peakLr, betas: [0.9, 0.99], weightDecay: 0.1, noDecay: noDecayForBiasesAndNorms });
    const trainer = new Trainer<CharLanguageModel, WindowBatch>({
      model,
      data,
      optimizer,
      schedule: cosineSchedule({ peakLr: config.peakLr, warmupSteps: config.warmupSteps, totalSteps: config.scheduleSteps, minLr: config.peakLr / 10 }),
      loss: (m, batch) => crossEntropyLoss(m.forward(batch.input), batch.target, { ignoreIndex: PAD }),
      maxMinutes: options.minutes,
      ...(options.maxSteps !== undefined ? { maxSteps: options.maxSteps } : {}),
      clipGradNorm: 1,
      seed: options.seed,
      evaluate: async (m) => (await scoreWindows(m, selection)).bpc,
      evalEvery: config.evalEvery,
      metricMode: 'min',
      checkpointDir: trainDir,
      saveEvery: config.evalEvery,
      logEvery: options.logEvery ?? 50,
      progress: options.progress ?? 'auto',
      log,
      countTokens: (batch) => batch.tokens,
    });
    const { result, best, bestMetric: bestValidationBpc, bestStep } = await fitAndKeepBest(trainer, {
      model,
      out: options.out,
      trainDir,
      resume: options.resume ?? false,
      evaluate: async (m) => (await scoreWindows(m, selection)).bpc,
      dispose: () => optimizer.dispose(),
      models,
    });
    log(`training: ${result.step} steps, ${result.epoch} full epochs, stopped by ${result.stoppedBy}; best validation-sample bpc ${bestValidationBpc.toFixed(3)} (step ${bestStep})`);

    const report = async (name: string, documents: number[][]): Promise<SplitReport> => {
      const started = performance.now();
      const context = best.contextLength;
      const scored = await scoreWindows(best, scoringWindows(documents, context, Math.max(1, Math.floor(context / 2))));
      const seconds = (performance.now() - started) / 1000;
      const baselines = ngramBaselines(train, documents, vocabulary.size);
      const split: SplitReport = { documents: documents.length, tokens: scored.tokens, model: scored.bpc, unigram: baselines.unigram.bpc, bigram: baselines.bigram.bpc, seconds };
      log(`${name}: ${split.model.toFixed(3)} bits per character (unigram ${split.unigram.toFixed(3)}, bigram ${split.bigram.toFixed(3)}) on ${split.tokens.toLocaleString('en')} characters of ${split.documents} documents (${seconds.toFixed(1)} s)`);
      return split;
    };
    const validationReport = await report('validation', validation);
    const testReport = await report('test', test);

    // Continuations of the first words of test documents of different genres.
    const samples: LMMetrics['samples'] = [];
    const sampleCount = options.samples ?? 3;
    for (let i = 0; i < sampleCount; i++) {
      const document = splits.test[Math.floor((i * splits.test.length) / Math.max(1, sampleCount))];
      const prompt = document.text.slice(0, 40).replace(/\s+\S*$/, ' ');
      const seed = options.seed + i;
      const continuation = await best.generateText(prompt, { maxNewTokens: options.sampleLength ?? 160, doSample: true, temperature: SAMPLE_TEMPERATURE, seed });
      samples.push({ prompt, continuation, temperature: SAMPLE_TEMPERATURE, seed });
      log(`  sample ${i + 1} (temperature ${SAMPLE_TEMPERATURE}, seed ${seed}): ${JSON.stringify(prompt + continuation)}`);
    }

    const metrics: LMMetrics = {
      device: getDevice(),
      parameters: best.countParameters(),
      config,
      training: {
        minutes: options.minutes,
        steps: result.step,
        epochs: result.epoch,
        stoppedBy: result.stoppedBy,
        trainDocuments: trainDocuments.length,
        trainTokens,
        tokensSeen: result.step * config.batchSize * best.contextLength,
        selectionWindows: selection.length,
        bestValidationBpc,
        bestStep,
      },
      validation: validationReport,
      test: testReport,
      samples,
    };
    // Rendered first, then written together: each file is replaced whole or not at all.
    const files: Array<[string, Uint8Array]> = [['metrics.json', new TextEncoder().encode(JSON.stringify(metrics, null, 2) + '\n')]];
    const curve = await renderLossCurve(result, { title: 'Character language model (Brown Corpus)', yLabel: 'bits per character', metricName: 'validation bpc', lossName: 'training loss (bpc)', lossScale: 1 / LN2 });
    if (curve !== null) files.push(['loss-curve.png', curve]);
    await writeRunFiles(options.out, files);
    log(`wrote ${path.join(options.out, 'model')}, metrics.json and loss-curve.png`);
    return metrics;
  } finally {
    for (const m of models) m.dispose();
  }
}
