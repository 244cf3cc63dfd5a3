import {
  BaseModel,
  MieConfigError,
  WEIGHTS_FILE,
  checkBoolean,
  checkOneOf,
  MieSerializationError,
  causeMessage,
  checkOptions,
  checkPositiveInteger,
  describeValue,
  encodeSafetensors,
  errorMessage,
  setSeed,
  tf,
  writeFilesAtomically,
  type CheckpointFiles,
  type FileSystem,
  type Module,
} from '@mie/core';
import { AdamW } from './adamw';
import { clipGradNormTensors } from './clip-grad-norm';
import type { DataInput, DataSource } from './data-source';
import { MieTrainingError } from './errors';
import { ExponentialMovingAverage, checkDecay } from './exponential-moving-average';
import { GradientAccumulator } from './gradient-accumulator';
import { valueAndGradients, type NamedGradients } from './gradients';
import { constantSchedule, type LearningRateSchedule } from './learning-rate-schedules';
import { createProgressReporter, type ProgressMode, type ProgressReporter } from './progress';
import { mixSeeds } from './random-order';
import {
  TRAINING_CHECKPOINT_FILE,
  hasTrainingCheckpoint,
  readTrainingCheckpointFrom,
  writeTrainingCheckpointFrom,
  type EvaluationRecord,
  type StepRecord,
  type CheckpointEma,
  type TrainerState,
} from './training-checkpoint';

/** Computes a batch's loss, a scalar tensor, from the model (it runs inside a gradient tape). */
export type LossFunction<M extends Module, B> = (model: M, batch: B) => tf.Tensor;

/** Computes an evaluation metric (the model is in evaluation mode during the call). */
export type EvaluateFunction<M extends Module> = (model: M, info: { step: number; epoch: number }) => number | Promise<number>;

/** The Trainer's `ema` option: a moving average of the weights ({@link ExponentialMovingAverage}). */
export interface TrainerEmaOptions {
  /** Weight of the old average at each update, in [0, 1). Required. */
  decay: number;
  /** Optimizer steps between updates (the average spans about `every / (1 - decay)` steps). Default `1`. */
  every?: number;
  /** Ramp the decay up over the first updates (see {@link ExponentialMovingAverage}). Default `true`. */
  warmup?: boolean;
}

/** Options of {@link Trainer}. */
export interface TrainerOptions<M extends Module, B> {
  /** The model to train (put in training mode while training). Required. */
  model: M;
  /** `(model, batch) => scalar loss`, e.g. `crossEntropyLoss(model.forward(batch.x), batch.y)`. Required. */
  loss: LossFunction<M, B>;
  /**
   * The batches: a {@link DataSource} (`batches(epoch, start)`, e.g. {@link ShuffledBatches}) or a
   * function `(epoch) => Iterable<batch>`; both must give the same batches for the same epoch.
   * The Trainer owns what they yield and disposes every tensor in a batch after using it (see
   * `disposeBatches`). Required.
   */
  data: DataInput<B>;
  /** The optimizer. Default `new AdamW(model)` (lr 1e-3, weight decay 0.01). */
  optimizer?: AdamW;
  /** Learning rate of each 1-based step, set on the optimizer before the step. Default: the optimizer's initial `lr`, constant. */
  schedule?: LearningRateSchedule;
  /** Stop after this many optimizer steps in total (counting steps before a resume). */
  maxSteps?: number;
  /** Stop after this many epochs in total. */
  maxEpochs?: number;
  /** Stop after this many minutes of wall-clock time in this call to `fit` (checked before each step). */
  maxMinutes?: number;
  /** Micro-batches whose gradients are averaged into one optimizer step. Default `1`. */
  accumulationSteps?: number;
  /** Clip the global gradient L2 norm to this value before each update ({@link clipGradNorm}). Default: no clipping. */
  clipGradNorm?: number;
  /** Seed of the run: step `s` runs after `setSeed(mixSeeds(seed, s))` (dropout masks). Default `0`. */
  seed?: number;
  /** Called every `evalEvery` steps in evaluation mode; returns the metric that picks the best checkpoint. */
  evaluate?: EvaluateFunction<M>;
  /** Steps between evaluations (required with `evaluate`). */
  evalEvery?: number;
  /** Whether a lower (`'min'`, default: a loss) or higher (`'max'`: an accuracy) metric is better. */
  metricMode?: 'min' | 'max';
  /**
   * Directory for checkpoints: `dir/last` (resumable: weights, optimizer, step, epoch, data
   * position, seed, history) and `dir/best` (the best model by the evaluation metric, loadable
   * with `BaseModel.load`). A failed write (a full disk, a path under a regular file) stops `fit`
   * with a `MieSerializationError` naming the directory, the system error as its `cause`; the
   * previous checkpoint stays whole. Default: no checkpoints.
   */
  checkpointDir?: string;
  /** Steps between saves of `dir/last` (it is also saved when `fit` returns). Default: only at the end. */
  saveEvery?: number;
  /** Steps between progress reports. Default `10`. */
  logEvery?: number;
  /** `'auto'` (default): a progress bar when stdout is a TTY and no `log` is given, else lines; or `'bar'`, `'lines'`, `'none'`. */
  progress?: ProgressMode;
  /** Receives the plain log lines. Default `console.log`. */
  log?: (line: string) => void;
  /** Tokens in a batch, for the tokens/s figure. Default: throughput is reported in batches/s. */
  countTokens?: (batch: B) => number;
  /** Called after every optimizer step. */
  onStep?: (record: StepRecord) => void;
  /**
   * Keep a moving average of the weights ({@link Trainer.ema}), updated every `every` steps after
   * the optimizer's update. Evaluations (and so `dir/best`) use the averaged weights; training goes
   * on from the trained ones, and `dir/last` keeps both. After `fit` the model holds the trained
   * weights: `trainer.ema.copyTo()` puts the averages in. Default: none.
   */
  ema?: TrainerEmaOptions;
  /** Whether to dispose the tensors of each batch after its step (the Trainer owns batches). Default `true`. */
  disposeBatches?: boolean;
  /**
   * The file system checkpoints are written through (`writeFilesAtomically`'s `FileSystem`: tests
   * inject a full disk with it). Default `node:fs/promises`.
   */
  fileSystem?: FileSystem;
}

/** Options of {@link Trainer.fit}. */
export interface FitOptions {
  /**
   * Continue from `checkpointDir/last` (an error when there is none). The file is checked whole
   * before anything is loaded (see `readTrainingCheckpoint`): a bad file is a
   * `MieSerializationError`, one of another run (seed, model, metric mode) a `MieTrainingError`,
   * both naming it, and after either the model, the optimizer and the Trainer are unchanged.
   * Default `false`.
   */
  resume?: boolean;
}

/** What {@link Trainer.fit} returns. */
export interface FitResult {
  /** Optimizer steps done in total. */
  step: number;
  /** The current epoch (0-based) and batches of it consumed. */
  epoch: number;
  batchInEpoch: number;
  /** Why training stopped. */
  stoppedBy: 'maxSteps' | 'maxEpochs' | 'maxMinutes';
  /** Every step since the start of the run (resumed runs include the steps before the resume). */
  history: StepRecord[];
  /** Every evaluation. */
  evaluations: EvaluationRecord[];
  /** The best metric and its step, or null without evaluations. */
  bestMetric: number | null;
  bestStep: number | null;
}

const OPTIONS = [
  'model', 'loss', 'data', 'optimizer', 'schedule', 'maxSteps', 'maxEpochs', 'maxMinutes', 'accumulationSteps', 'clipGradNorm', 'seed',
  'evaluate', 'evalEvery', 'metricMode', 'checkpointDir', 'saveEvery', 'logEvery', 'progress', 'log', 'countTokens', 'onStep', 'disposeBatches',
  'fileSystem', 'ema',
] as const;
const NAME = 'Trainer';

/** `dir/name` without Node's path module (the Trainer also runs in browsers, where it has no checkpoints). */
function joinPath(dir: string, name: string): string {
  return /[\\/]$/.test(dir) ? `${dir}${name}` : `${dir}/${name}`;
}

/** File in `dir/best` with the metric and step of the saved model. */
export const BEST_METRIC_FILE = 'best.json';

function toDataSource<B>(data: DataInput<B>, disposeBatches: boolean): DataSource<B> {
  if (typeof data === 'function') {
    return {
      *batches(epoch: number, start: number): Generator<B> {
        let index = 0;
        for (const batch of data(epoch)) {
          if (index++ >= start) yield batch;
          else if (disposeBatches) tf.dispose(batch as tf.TensorContainer);
        }
      },
    };
  }
  if (typeof data !== 'object' || data === null || typeof (data as DataSource<B>).batches !== 'function') {
    throw new MieConfigError(errorMessage(NAME, 'option "data"', 'must be a DataSource (with batches(epoch, start)) or a function (epoch) => Iterable<batch>', data));
  }
  return data;
}

/**
 * A training loop: batches from a seeded, resumable data order, AdamW updates under a learning
 * rate schedule, optional gradient accumulation and clipping, periodic evaluation keeping the best
 * model in `checkpointDir/best`, and a resumable checkpoint in `checkpointDir/last` from which a
 * run continues exactly as if it had never stopped (same weights, same loss curve).
 *
 * Exact resume: the model's weights, the optimizer's moments and step counts, the step (the
 * schedule's position), the epoch and the batch position within it, and the history are saved
 * in one file. Randomness needs no saved state: before step `s` the Trainer calls
 * `setSeed(mixSeeds(seed, s))`, so dropout masks are a pure function of the seed and the step.
 * A NaN or infinite loss (or gradient norm, when clipping) stops training with a
 * {@link MieTrainingError} naming the step; a checkpoint that cannot be written, with a
 * `MieSerializationError` naming the directory.
 */
export class Trainer<M extends Module, B> {
  readonly #options: TrainerOptions<M, B>;
  readonly #data: DataSource<B>;
  /** The optimizer the Trainer updates the model with. */
  readonly optimizer: AdamW;
  /** The moving average of the weights (option `ema`), or null. Freed with `dispose()`. */
  readonly ema: ExponentialMovingAverage | null;
  readonly #emaEvery: number;
  readonly #ownsOptimizer: boolean;
  readonly #schedule: LearningRateSchedule;
  #state: TrainerState;
  #iterator: Iterator<B> | null = null;

  constructor(options: TrainerOptions<M, B>) {
    checkOptions(NAME, options, OPTIONS);
    const { model, loss, data, maxSteps, maxEpochs, maxMinutes, accumulationSteps = 1, seed = 0, evaluate, evalEvery, metricMode = 'min' } = options;
    if (typeof model !== 'object' || model === null || typeof (model as Module).namedParameters !== 'function') {
      throw new MieConfigError(errorMessage(NAME, 'option "model"', 'must be a Module', model));
    }
    if (typeof loss !== 'function') throw new MieConfigError(errorMessage(NAME, 'option "loss"', 'must be a function (model, batch) => scalar', loss));
    this.#data = toDataSource(data, options.disposeBatches ?? true);
    if (maxSteps === undefined && maxEpochs === undefined && maxMinutes === undefined) {
      throw new MieConfigError(`${NAME}: give at least one of maxSteps, maxEpochs and maxMinutes.`);
    }
    if (maxSteps !== undefined) checkPositiveInteger(NAME, 'maxSteps', maxSteps);
    if (maxEpochs !== undefined) checkPositiveInteger(NAME, 'maxEpochs', maxEpochs);
    if (maxMinutes !== undefined && (typeof maxMinutes !== 'number' || !(maxMinutes > 0))) {
      throw new MieConfigError(errorMessage(NAME, 'option "maxMinutes"', 'must be a number > 0', maxMinutes));
    }
    checkPositiveInteger(NAME, 'accumulationSteps', accumulationSteps);
    if (options.clipGradNorm !== undefined && (typeof options.clipGradNorm !== 'number' || !(options.clipGradNorm > 0))) {
      throw new MieConfigError(errorMessage(NAME, 'option "clipGradNorm"', 'must be a number > 0', options.clipGradNorm));
    }
    checkPositiveInteger(NAME, 'seed', seed, 0);
    if (evaluate !== undefined) {
      if (typeof evaluate !== 'function') throw new MieConfigError(errorMessage(NAME, 'option "evaluate"', 'must be a function', evaluate));
      checkPositiveInteger(NAME, 'evalEvery', evalEvery);
    }
    checkOneOf(NAME, 'metricMode', metricMode, ['min', 'max'] as const);
    for (const key of ['saveEvery', 'logEvery'] as const) if (options[key] !== undefined) checkPositiveInteger(NAME, key, options[key]);
    if (options.saveEvery !== undefined && options.checkpointDir === undefined) {
      throw new MieConfigError(`${NAME}: option "saveEvery" needs "checkpointDir".`);
    }
    checkOneOf(NAME, 'progress', options.progress ?? 'auto', ['auto', 'bar', 'lines', 'none'] as const);
    this.#options = { ...options, accumulationSteps, seed, metricMode };
    this.optimizer = options.optimizer ?? new AdamW(model);
    this.#ownsOptimizer = options.optimizer === undefined;
    if (!(this.optimizer instanceof AdamW)) throw new MieConfigError(errorMessage(NAME, 'option "optimizer"', 'must be an AdamW', this.optimizer));
    this.#schedule = options.schedule ?? constantSchedule(this.optimizer.config.lr);
    if (options.ema !== undefined) {
      const where = `${NAME} option "ema"`;
      const ema = checkOptions(where, options.ema, ['decay', 'every', 'warmup']);
      this.#emaEvery = checkPositiveInteger(where, 'every', ema.every ?? 1);
      // Checked here too, so that a bad value is named as the Trainer's option.
      const decay = checkDecay(where, ema.decay);
      const warmup = checkBoolean(where, 'warmup', ema.warmup ?? true);
      this.ema = new ExponentialMovingAverage(model, { decay, warmup });
    } else {
      this.#emaEvery = 1;
      this.ema = null;
    }
    this.#state = {
      formatVersion: 1, step: 0, epoch: 0, batchInEpoch: 0, seed,
      optimizer: { lr: this.optimizer.lr, steps: {} }, bestMetric: null, bestStep: null, history: [], evaluations: [],
    };
  }

  /** Frees what the Trainer made: its weight average, and its optimizer when it made it (no `optimizer` option). */
  dispose(): void {
    this.ema?.dispose();
    if (this.#ownsOptimizer) this.optimizer.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Optimizer steps done so far. */
  get step(): number {
    return this.#state.step;
  }

  /** The current epoch (0-based). */
  get epoch(): number {
    return this.#state.epoch;
  }

  /** Every step so far (a copy). */
  get history(): StepRecord[] {
    return [...this.#state.history];
  }

  /** `checkpointDir/last`, or undefined. */
  get lastCheckpointDir(): string | undefined {
    return this.#options.checkpointDir === undefined ? undefined : joinPath(this.#options.checkpointDir, 'last');
  }

  /** `checkpointDir/best`, or undefined. */
  get bestCheckpointDir(): string | undefined {
    return this.#options.checkpointDir === undefined ? undefined : joinPath(this.#options.checkpointDir, 'best');
  }

  /** Trains until `maxSteps`, `maxEpochs` or `maxMinutes` is reached, whichever comes first. */
  async fit({ resume = false }: FitOptions = {}): Promise<FitResult> {
    const options = this.#options;
    const { model, maxSteps, maxEpochs, maxMinutes } = options;
    if (resume) await this.#resume();
    const reporter = createProgressReporter(options.progress ?? 'auto', options.log);
    const started = performance.now();
    const startStep = this.#state.step;
    let window = { time: started, tokens: 0, batches: 0 };
    const logEvery = options.logEvery ?? 10;
    model.train();
    let stoppedBy: FitResult['stoppedBy'] | null = null;
    try {
      for (;;) {
        if (maxSteps !== undefined && this.#state.step >= maxSteps) stoppedBy = 'maxSteps';
        else if (maxEpochs !== undefined && this.#state.epoch >= maxEpochs) stoppedBy = 'maxEpochs';
        else if (maxMinutes !== undefined && performance.now() - started >= maxMinutes * 60_000) stoppedBy = 'maxMinutes';
        if (stoppedBy !== null) break;
        const done = await this.#trainStep();
        if (done === null) {
          stoppedBy = 'maxEpochs';
          break;
        }
        window.tokens += done.tokens;
        window.batches += done.batches;
        const record = done.record;
        options.onStep?.(record);
        const step = record.step;
        if (step % logEvery === 0 || step === maxSteps) {
          const now = performance.now();
          const seconds = Math.max(1e-9, (now - window.time) / 1000);
          const perStep = (now - started) / 1000 / (step - startStep);
          const etaBySteps = maxSteps === undefined ? undefined : (maxSteps - step) * perStep;
          const etaByTime = maxMinutes === undefined ? undefined : Math.max(0, maxMinutes * 60 - (now - started) / 1000);
          const etas = [etaBySteps, etaByTime].filter((x): x is number => x !== undefined);
          reporter.update({
            step, totalSteps: maxSteps, epoch: record.epoch, loss: record.loss, lr: record.lr,
            throughput: (options.countTokens ? window.tokens : window.batches) / seconds,
            throughputUnit: options.countTokens ? 'tokens/s' : 'batches/s',
            etaSeconds: etas.length ? Math.min(...etas) : undefined,
          });
          window = { time: now, tokens: 0, batches: 0 };
        }
        if (options.evaluate !== undefined && step % options.evalEvery! === 0) await this.#evaluate(reporter);
        if (options.saveEvery !== undefined && step % options.saveEvery === 0) await this.#saveLast();
      }
      if (options.checkpointDir !== undefined) await this.#saveLast();
      reporter.message(`stopped by ${stoppedBy} at step ${this.#state.step} (epoch ${this.#state.epoch})`);
    } finally {
      this.#closeIterator();
      reporter.stop();
    }
    const { step, epoch, batchInEpoch, history, evaluations, bestMetric, bestStep } = this.#state;
    return { step, epoch, batchInEpoch, stoppedBy, history: [...history], evaluations: [...evaluations], bestMetric, bestStep };
  }

  /** The next batch, moving to the next epoch when one ends; `null` once `maxEpochs` is reached. */
  #nextBatch(): B | null {
    const { maxEpochs } = this.#options;
    for (;;) {
      if (maxEpochs !== undefined && this.#state.epoch >= maxEpochs) return null;
      this.#iterator ??= this.#data.batches(this.#state.epoch, this.#state.batchInEpoch)[Symbol.iterator]();
      const next = this.#iterator.next();
      if (!next.done) {
        this.#state.batchInEpoch++;
        return next.value;
      }
      this.#closeIterator();
      if (this.#state.batchInEpoch === 0) {
        throw new MieTrainingError(`${NAME}: the data source gave no batch for epoch ${this.#state.epoch}.`);
      }
      this.#state.epoch++;
      this.#state.batchInEpoch = 0;
    }
  }

  #closeIterator(): void {
    this.#iterator?.return?.();
    this.#iterator = null;
  }

  /** One optimizer step over `accumulationSteps` micro-batches; null when the data is exhausted. */
  async #trainStep(): Promise<{ record: StepRecord; tokens: number; batches: number } | null> {
    const { model, loss, accumulationSteps = 1, countTokens, disposeBatches = true } = this.#options;
    const state = this.#state;
    const step = state.step + 1;
    const lr = this.#schedule(step);
    // The RNG state is a pure function of (seed, step): a resumed run draws the same masks.
    setSeed(mixSeeds(state.seed, step));
    const accumulator = new GradientAccumulator();
    let lossSum = 0;
    let tokens = 0;
    let batches = 0;
    let gradNorm: number | undefined;
    try {
      for (let micro = 0; micro < accumulationSteps; micro++) {
        const batch = this.#nextBatch();
        if (batch === null) break;
        try {
          batches++;
          tokens += countTokens?.(batch) ?? 0;
          const { value, grads } = valueAndGradients(model, () => loss(model, batch));
          let lossValue: number;
          try {
            lossValue = (await value.data())[0]; // asynchronous: a GPU backend keeps working meanwhile
          } catch (error) {
            tf.dispose([value, ...Object.values(grads)]);
            throw error;
          }
          if (!Number.isFinite(lossValue)) {
            tf.dispose([value, ...Object.values(grads)]);
            throw new MieTrainingError(
              `${NAME}: the loss became ${lossValue} at step ${step} (epoch ${state.epoch}, batch ${state.batchInEpoch - 1} of the epoch); ` +
                'stopping. Lower the learning rate, clip gradients (clipGradNorm) or check the data.',
            );
          }
          lossSum += lossValue;
          accumulator.add(grads);
          tf.dispose([value, ...Object.values(grads)]);
        } finally {
          if (disposeBatches) tf.dispose(batch as tf.TensorContainer);
        }
      }
      if (batches === 0) return null;
      let grads: NamedGradients = accumulator.average();
      if (this.#options.clipGradNorm !== undefined) {
        const clipped = clipGradNormTensors(grads, this.#options.clipGradNorm);
        tf.dispose(Object.values(grads));
        grads = clipped.grads;
        try {
          gradNorm = (await clipped.norm.data())[0];
        } catch (error) {
          tf.dispose(Object.values(grads));
          throw error;
        } finally {
          clipped.norm.dispose();
        }
        if (!Number.isFinite(gradNorm)) {
          tf.dispose(Object.values(grads));
          throw new MieTrainingError(`${NAME}: the gradient norm became ${gradNorm} at step ${step} (epoch ${state.epoch}); stopping.`);
        }
      }
      this.optimizer.lr = lr;
      this.optimizer.step(grads);
      tf.dispose(Object.values(grads));
    } finally {
      accumulator.dispose();
    }
    state.step = step;
    if (this.ema !== null && step % this.#emaEvery === 0) this.ema.update();
    const record: StepRecord = { step, epoch: state.epoch, loss: lossSum / batches, lr };
    if (gradNorm !== undefined) record.gradNorm = gradNorm;
    state.history.push(record);
    return { record, tokens, batches };
  }

  async #evaluate(reporter: ProgressReporter): Promise<void> {
    // With a weight average, the averaged weights are evaluated and, when best, saved.
    if (this.ema !== null) await this.ema.withAveraged(() => this.#evaluateAndKeep(reporter));
    else await this.#evaluateAndKeep(reporter);
  }

  async #evaluateAndKeep(reporter: ProgressReporter): Promise<void> {
    const { model, evaluate, metricMode, checkpointDir } = this.#options;
    const modes = model.modules().map((module) => [module, module.training] as const);
    model.eval();
    let metric: number;
    try {
      metric = await evaluate!(model, { step: this.#state.step, epoch: this.#state.epoch });
    } finally {
      for (const [module, training] of modes) module.training = training;
    }
    // Finite: JSON (the resumable checkpoint) has no NaN or infinity.
    if (typeof metric !== 'number' || !Number.isFinite(metric)) {
      throw new MieTrainingError(`${NAME}: evaluate returned ${describeValue(metric)} at step ${this.#state.step}; it must return a finite number.`);
    }
    const state = this.#state;
    state.evaluations.push({ step: state.step, metric });
    const better = state.bestMetric === null || (metricMode === 'max' ? metric > state.bestMetric : metric < state.bestMetric);
    reporter.message(`eval at step ${state.step}: metric ${metric.toPrecision(6)}${better ? ' (best)' : ''}`);
    if (!better) return;
    state.bestMetric = metric;
    state.bestStep = state.step;
    if (checkpointDir !== undefined) await this.#saveBest(metric);
  }

  /**
   * Saves the model as `BaseModel.save` does (config.json + model.safetensors, or shards for a model
   * above 5 GB; streamed) plus best.json, in one atomic write.
   */
  async #saveBest(metric: number): Promise<void> {
    const { model } = this.#options;
    const info = new TextEncoder().encode(`${JSON.stringify({ step: this.#state.step, epoch: this.#state.epoch, metric })}\n`);
    const plan: CheckpointFiles =
      model instanceof BaseModel
        ? model.checkpointFiles()
        : { files: [[WEIGHTS_FILE, encodeSafetensors(model.stateDict(), { format: 'mie' })]], keepPrevious: [], remove: () => false };
    const dir = this.bestCheckpointDir!;
    try {
      await writeFilesAtomically(dir, [...plan.files, [BEST_METRIC_FILE, info]], { fs: this.#options.fileSystem, keepPrevious: plan.keepPrevious, remove: plan.remove });
    } catch (error) {
      throw new MieSerializationError(`${NAME}: could not write the best checkpoint of step ${this.#state.step} to ${dir}: ${causeMessage(error)}`, { cause: error });
    }
  }

  /** The weight average as the checkpoint keeps it, or undefined without one. */
  #checkpointEma(): CheckpointEma | undefined {
    return this.ema === null ? undefined : { average: this.ema, every: this.#emaEvery };
  }

  async #saveLast(): Promise<void> {
    await writeTrainingCheckpointFrom(NAME, this.lastCheckpointDir!, this.#options.model, this.optimizer, this.#state, this.#options.fileSystem, this.#checkpointEma());
  }

  /**
   * Loads `dir/last` into the model and optimizer, after checking all of it (see
   * `readTrainingCheckpoint`): a refused file leaves the model, the optimizer and this Trainer as
   * they were.
   */
  async #resume(): Promise<void> {
    const dir = this.lastCheckpointDir;
    if (dir === undefined) throw new MieConfigError(`${NAME}.fit: resume needs the option "checkpointDir".`);
    if (this.#state.step > 0) throw new MieTrainingError(`${NAME}.fit: cannot resume a Trainer that has already trained (step ${this.#state.step}).`);
    if (!(await hasTrainingCheckpoint(dir))) {
      throw new MieTrainingError(`${NAME}.fit: cannot resume: there is no checkpoint in ${dir} (${TRAINING_CHECKPOINT_FILE} is missing).`);
    }
    const { seed, metricMode, evaluate } = this.#options;
    const saved = await readTrainingCheckpointFrom(`${NAME}.fit`, dir, this.#options.model, this.optimizer, {
      seed,
      // Without evaluate the mode is unused, and the file's evaluations may be of either.
      metricMode: evaluate === undefined ? undefined : metricMode,
      ema: this.#checkpointEma(),
    });
    this.#closeIterator();
    this.#state = saved;
  }
}
