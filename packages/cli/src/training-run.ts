/**
 * What every `mie train ...` job does the same way: check the common options, claim (or resume)
 * the run directory, train with the Trainer, keep the better of the final weights and the best
 * checkpoint, and save it as `OUT/model`. Each job brings its data, model and reports.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BaseModel, MieConfigError, causeMessage, checkOptions, ready, tf, type DeviceInfo } from '@mie/core';
import { valueAndGradients, type FitResult, type LearningRateSchedule, type Trainer } from '@mie/training';
import { prepareRunDirectory, writeRunFiles, type RunLayout } from './run-directory';

/** The largest `--minutes` any training job accepts. */
export const MAX_MINUTES = 100_000;

/** The options every training job takes. */
export interface RunOptions {
  /** Wall-clock minutes of training (evaluations for model selection included; the final report comes after). */
  minutes: number;
  /** Output directory. */
  out: string;
  seed: number;
  /** Continue the run in `out` (from `out/train/last`, with the architecture and schedule in its `out/train/*-config.json`). */
  resume?: boolean;
  /**
   * Start over in an `out` that holds a run: remove the files this job writes there (`train/`,
   * `model/`, `metrics.json`, pictures), never others. Without `resume` or `force`, an `out`
   * holding a run is a `MieConfigError`.
   */
  force?: boolean;
  /** Where progress lines go. Default console.log. */
  log?: (line: string) => void;
  /** Steps between progress lines (`'lines'` mode). Default 50. */
  logEvery?: number;
  /** Progress display: `'auto'` (bar on a terminal), `'lines'` or `'none'`. */
  progress?: 'auto' | 'lines' | 'none';
}

/** Checks the option keys (`known`) and `minutes`, `out`, `seed`, naming `command`. */
export function checkRunOptions(command: string, options: RunOptions, known: readonly string[]): void {
  checkOptions(command, options, known);
  const { minutes, out, seed } = options;
  if (typeof minutes !== 'number' || !Number.isFinite(minutes) || minutes <= 0 || minutes > MAX_MINUTES) {
    throw new MieConfigError(`${command}: --minutes must be a number in (0, ${MAX_MINUTES}]. Received: ${typeof minutes === 'number' ? minutes : typeof minutes}.`);
  }
  if (typeof out !== 'string' || out === '') throw new MieConfigError(`${command}: --out must be a directory path. Received: ${typeof out === 'string' ? '""' : typeof out}.`);
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) throw new MieConfigError(`${command}: --seed must be an integer >= 0. Received: ${String(seed)}.`);
}

/** A run directory, ready for training. */
export interface OpenedRun<R> {
  device: DeviceInfo;
  /** `OUT/train`: checkpoints and the run's config. */
  trainDir: string;
  /** `OUT/train/<configName>`. */
  configFile: string;
  /** What `resumeFrom` read, when resuming. */
  resumed: R | undefined;
}

/**
 * Before anything slow: refuses an existing run, or clears it with `force`, or checks it can be
 * resumed; picks the backend; with `resume`, reads the run's config through `resumeFrom(file,
 * checkpointBytes)` (which checks it against the last checkpoint's size).
 */
export async function openRun<R>(
  command: string,
  options: RunOptions,
  layout: RunLayout,
  configName: string,
  resumeFrom: (configFile: string, checkpointBytes: number) => Promise<R>,
): Promise<OpenedRun<R>> {
  await prepareRunDirectory(options.out, layout, { resume: options.resume ?? false, force: options.force ?? false });
  const device = await ready();
  const trainDir = path.join(options.out, 'train');
  const configFile = path.join(trainDir, configName);
  let resumed: R | undefined;
  if (options.resume) {
    const checkpoint = path.join(trainDir, 'last', 'checkpoint.safetensors');
    const size = await fs.stat(checkpoint).then(
      (stats) => stats.size,
      (error: unknown) => {
        throw new MieConfigError(`${command}: cannot resume: cannot read ${checkpoint}: ${causeMessage(error)}`, { cause: error });
      },
    );
    resumed = await resumeFrom(configFile, size);
  }
  return { device, trainDir, configFile, resumed };
}

/** The device line each job logs first. */
export function deviceLine(device: DeviceInfo): string {
  const matmul = device.matmul ? `, matmul ${device.matmul}${device.blasLibrary ? ` ${device.blasLibrary}` : ''}` : '';
  const kernel = device.gemmKernel ? `, kernel ${device.gemmKernel}` : '';
  const threads = device.threads !== undefined && device.matmul !== 'blas' ? `, ${device.threads} thread${device.threads === 1 ? '' : 's'}` : '';
  return `device: ${device.backend} (${device.package}${matmul}${kernel}${threads})`;
}

/** What {@link fitAndKeepBest} settled on. */
export interface KeptModel<M> {
  result: FitResult;
  /** The better of the final weights and the best checkpoint, in eval mode, saved as `OUT/model`. */
  best: M;
  /** Its selection metric (lower is better). */
  bestMetric: number;
  /** The step it comes from. */
  bestStep: number | null;
}

/**
 * Runs `trainer.fit` (freeing `dispose` afterwards: the optimizer), evaluates the final weights
 * with `evaluate` (the final weights may beat the last evaluation), keeps the better of them and
 * the `best` checkpoint, and saves it to `OUT/model`. A loaded checkpoint is pushed to `models`
 * (the caller frees them all); the final model is freed when the checkpoint wins.
 */
export async function fitAndKeepBest<M extends BaseModel<object>, B>(
  trainer: Trainer<M, B>,
  { model, out, trainDir, resume, evaluate, dispose, models }: {
    model: M;
    out: string;
    trainDir: string;
    resume: boolean;
    evaluate: (model: M) => Promise<number>;
    dispose: () => void;
    models: M[];
  },
): Promise<KeptModel<M>> {
  let result: FitResult;
  try {
    result = await trainer.fit({ resume });
    // With a moving average of the weights, the run's evaluations measured the averaged weights:
    // the final evaluation does too, and the model keeps them.
    trainer.ema?.copyTo();
  } finally {
    dispose();
    trainer.dispose();
  }
  model.eval();
  const finalMetric = await evaluate(model);
  let best = model;
  let bestMetric = finalMetric;
  let bestStep: number | null = result.step;
  if (result.bestMetric !== null && result.bestMetric < finalMetric) {
    best = (await BaseModel.load(path.join(trainDir, 'best'))) as M;
    models.push(best);
    bestMetric = result.bestMetric;
    bestStep = result.bestStep;
    model.dispose();
  }
  best.eval();
  await best.save(path.join(out, 'model'));
  return { result, best, bestMetric, bestStep };
}

/**
 * One training step's forward and backward pass for {@link plannedSteps}: `model` in training
 * mode, `loss()` differentiated, its value read back, everything freed; no update.
 */
export function forwardAndBackward(model: BaseModel<object>, loss: () => tf.Tensor): () => Promise<void> {
  return async () => {
    model.train();
    const { value, grads } = valueAndGradients(model, loss);
    try {
      await value.data();
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  };
}

/** What {@link plannedSteps} times. */
export interface StepPlan {
  /** One training step's forward and backward pass (no update), awaited until its loss is read. */
  step: () => Promise<void>;
  /** One model-selection evaluation. */
  evaluate: () => Promise<unknown>;
  minutes: number;
  /** Evaluations the run will make: their time is kept out of the steps. */
  evaluations: number;
  /** Steps timed after the untimed warm-up; their median counts. */
  timedSteps: number;
  /**
   * Seconds of untimed steps first (at least one step): the JavaScript JIT keeps speeding a step
   * up for seconds, so timing the first steps plans too few of them. Default 0 (one step).
   */
  warmupSeconds?: number;
  /** Multiplies the step's time: the update and the data cost a few percent more. */
  overhead: number;
}

/**
 * Steps of a schedule that fill `minutes` on this device: times `timedSteps` training steps after
 * a warm-up (kernels, packed weights, the JIT) and one evaluation, then plans the steps that
 * leave room for `evaluations` evaluations; at least 50. The planning itself comes before the
 * budget (the Trainer's clock starts after it). The median step counts (the mean of the middle two for
 * an even count): on a shared machine a single slow step (another process taking the core) would
 * otherwise shorten the whole schedule. The caller leaves the model as it found it.
 */
export async function plannedSteps({ step, evaluate, minutes, evaluations, timedSteps, overhead, warmupSeconds = 0 }: StepPlan): Promise<number> {
  const warmupStarted = performance.now();
  do await step();
  while (performance.now() - warmupStarted < warmupSeconds * 1000);
  const times: number[] = [];
  for (let i = 0; i < timedSteps; i++) {
    const started = performance.now();
    await step();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const middle = times.length >> 1;
  const median = times.length % 2 === 1 ? times[middle] : (times[middle - 1] + times[middle]) / 2;
  const stepSeconds = (median / 1000) * overhead;
  const started = performance.now();
  await evaluate();
  const evalSeconds = (performance.now() - started) / 1000;
  return Math.max(50, Math.floor((minutes * 60 - evaluations * evalSeconds) / stepSeconds));
}

/** What {@link BudgetSchedule} re-plans. */
export interface BudgetScheduleOptions {
  /** The budget, in minutes; its clock starts at {@link BudgetSchedule.start}. */
  minutes: number;
  /** The steps planned before training ({@link plannedSteps}). */
  plannedSteps: number;
  /** The schedule over `totalSteps` steps. */
  scheduleFor: (totalSteps: number) => LearningRateSchedule;
  /** The fewest steps a re-plan gives (a warm-up-decay schedule needs more than its warm-up). */
  minSteps: number;
}

/**
 * A schedule over the steps that fill a wall-clock budget, re-planned as the run goes. A plan made
 * before training from a few timed steps misses: on this machine a G2P step kept getting faster
 * for the whole hour (the JIT, the machine), and a 60-minute run made 12,913 steps of the 9,009
 * planned, its last 3,900 at the floor rate. Each {@link replan} (the jobs call it after every
 * evaluation) takes the time per step since the previous one (evaluations and checkpoints
 * included, as they recur) and sets the total to the steps made plus those that fit in the time
 * left. Between re-plans the schedule is the pure function `scheduleFor(totalSteps)`, so the
 * caller can keep `totalSteps` in the run's config and a resume continues from the last plan.
 */
export class BudgetSchedule {
  readonly #options: BudgetScheduleOptions;
  #totalSteps: number;
  #current: LearningRateSchedule;
  #since: { time: number; step: number } | null = null;
  #end = Number.NaN;
  /** The learning rate of each step, under the latest plan. */
  readonly schedule: LearningRateSchedule = (step) => this.#current(step);

  constructor(options: BudgetScheduleOptions) {
    this.#options = options;
    this.#totalSteps = Math.max(options.minSteps, options.plannedSteps);
    this.#current = options.scheduleFor(this.#totalSteps);
  }

  /** The steps of the latest plan. */
  get totalSteps(): number {
    return this.#totalSteps;
  }

  /** Starts the budget's clock at `step` (0 for a fresh run). */
  start(step = 0): void {
    const time = performance.now();
    this.#since = { time, step };
    this.#end = time + this.#options.minutes * 60_000;
  }

  /**
   * Re-plans at `step` from the time per step since the previous re-plan (or the start); returns
   * the new total and that time, or null when no step was made since.
   */
  replan(step: number): { totalSteps: number; stepMs: number } | null {
    if (this.#since === null) throw new Error('BudgetSchedule.replan: call start() first.');
    const now = performance.now();
    const steps = step - this.#since.step;
    if (steps <= 0) return null;
    const stepMs = (now - this.#since.time) / steps;
    const left = Math.max(0, this.#end - now);
    this.#since = { time: now, step };
    this.#totalSteps = Math.max(this.#options.minSteps, step + Math.floor(left / stepMs));
    this.#current = this.#options.scheduleFor(this.#totalSteps);
    return { totalSteps: this.#totalSteps, stepMs };
  }
}

/** Writes `files` into `dir` atomically for `command`; a failure is a `MieSerializationError` naming the directory. */
export function runFileWriter(command: string): (dir: string, files: Array<[string, Uint8Array]>) => Promise<void> {
  return (dir, files) => writeRunFiles(command, dir, files);
}
