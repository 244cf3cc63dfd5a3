/**
 * The resumable checkpoint of a training run, `dir/last/checkpoint.safetensors`: ONE file, so that
 * one atomic rename (`writeFilesAtomically`) replaces it whole and a crash never pairs new
 * weights with an old optimizer state. Tensors: `model.<parameter>` (the model's state dict),
 * `optimizer.<expAvg|expAvgSq>.<parameter>` and, for a run that averages its weights,
 * `ema.<parameter>`; metadata `mie.trainer`: the {@link TrainerState} JSON.
 *
 * The file is written streamed (the values go from the backend to the file in chunks), so a
 * checkpoint of any size is one file. Reading treats it as untrusted: only a regular file within a
 * size bound is opened (a FIFO or device is refused, not waited on), its header is validated
 * before the values are read tensor by tensor, every field of the state and every tensor is
 * checked against the others and against the model and optimizer, and only then is anything
 * loaded, so a refused file changes nothing.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import {
  MieError,
  MieSerializationError,
  SAFETENSORS_MAX_HEADER_BYTES,
  causeMessage,
  describeValue,
  encodeSafetensors,
  parseStrictJson,
  readSafetensorsFile,
  readSync,
  tf,
  writeFilesAtomically,
  type FileSystem,
  type Module,
  type NamedTensors,
  type SafetensorsContents,
} from '@mie/core';
import type { AdamW, OptimizerState } from './adamw';
import { MieTrainingError } from './errors';
import type { ExponentialMovingAverage } from './exponential-moving-average';

/** File name of the resumable checkpoint inside `dir/last`. */
export const TRAINING_CHECKPOINT_FILE = 'checkpoint.safetensors';


/** One optimizer step of a run's history. */
export interface StepRecord {
  /** 1-based optimizer step. */
  step: number;
  /** 0-based epoch of the step's last batch. */
  epoch: number;
  /** Mean loss over the step's micro-batches. */
  loss: number;
  /** Learning rate the update used. */
  lr: number;
  /** Global gradient L2 norm before clipping (only with `clipGradNorm`). */
  gradNorm?: number;
}

/** One evaluation of a run. */
export interface EvaluationRecord {
  /** The step after which the evaluation ran. */
  step: number;
  /** What `evaluate` returned. */
  metric: number;
}

/** Everything besides tensors that a resumed run needs (the checkpoint's JSON). */
export interface TrainerState {
  formatVersion: 1;
  /** Optimizer steps done. The schedule's position: the next update uses `schedule(step + 1)`. */
  step: number;
  /** Current epoch (0-based) and batches of it consumed: the data order position. */
  epoch: number;
  batchInEpoch: number;
  /** The run's seed; the RNG state at step `s` is `setSeed(mixSeeds(seed, s))`, so it needs no more. */
  seed: number;
  /** The optimizer's learning rate and per-parameter step counts (its moments are tensors in the file). */
  optimizer: OptimizerState['json'];
  /** The best evaluation metric so far and its step (null before any evaluation). */
  bestMetric: number | null;
  bestStep: number | null;
  /** Every step of the run, and every evaluation. */
  history: StepRecord[];
  evaluations: EvaluationRecord[];
  /**
   * The run's moving average of the weights (the Trainer's `ema` option; its averages are the
   * `ema.*` tensors): its configuration, and the updates done. Absent for a run without one.
   */
  ema?: EmaRecord;
}

/** The JSON of a run's weight average in its checkpoint. */
export interface EmaRecord {
  decay: number;
  warmup: boolean;
  /** Optimizer steps between updates. */
  every: number;
  updates: number;
}

/** A run's weight average and how often it is updated, for {@link writeTrainingCheckpoint} and {@link readTrainingCheckpoint}. */
export interface CheckpointEma {
  average: ExponentialMovingAverage;
  /** Optimizer steps between updates. */
  every: number;
}

/** Options of {@link readTrainingCheckpoint}: what the run that resumes expects of the file. */
export interface ReadTrainingCheckpointOptions {
  /** The seed of the resuming run: a checkpoint of another seed is a `MieTrainingError`. Default: any seed. */
  seed?: number;
  /** The resuming run's metric mode: the file's best metric must be the lowest (`'min'`) or highest (`'max'`) evaluation. Default: either. */
  metricMode?: 'min' | 'max';
  /**
   * The resuming run's weight average, loaded from the file's `ema.*` tensors. A file with an
   * average read without one, or without one read with one, or of another decay, warm-up or
   * `every`, is a `MieTrainingError`. Default: none.
   */
  ema?: CheckpointEma;
}

/**
 * Writes the checkpoint into `dir` atomically, as {@link writeTrainingCheckpoint}; a failed write
 * is a `MieSerializationError` from `where` naming `dir`, with the system error as `cause`.
 * @internal
 */
export async function writeTrainingCheckpointFrom(
  where: string,
  dir: string,
  model: Module,
  optimizer: AdamW,
  state: TrainerState,
  fileSystem?: FileSystem,
  ema?: CheckpointEma,
): Promise<void> {
  const optimizerState = optimizer.getState();
  const tensors: NamedTensors = {};
  for (const [name, tensor] of Object.entries(model.stateDict())) tensors[`model.${name}`] = tensor;
  for (const [name, tensor] of Object.entries(optimizerState.tensors)) tensors[`optimizer.${name}`] = tensor;
  const json: TrainerState = { ...state, optimizer: optimizerState.json };
  delete json.ema;
  if (ema !== undefined) {
    const averaged = ema.average.getState();
    for (const [name, tensor] of Object.entries(averaged.tensors)) tensors[`ema.${name}`] = tensor;
    json.ema = { decay: ema.average.decay, warmup: ema.average.warmup, every: ema.every, updates: averaged.updates };
  }
  // Streamed: the values go from the backend to the file in chunks, so a checkpoint of any size (weights
  // and both moments: above 2 GiB from ~179M parameters) is written with bounded extra memory.
  const encoding = encodeSafetensors(tensors, { format: 'mie-training-checkpoint', 'mie.trainer': JSON.stringify(json) });
  try {
    await writeFilesAtomically(dir, [[TRAINING_CHECKPOINT_FILE, encoding]], { fs: fileSystem });
  } catch (error) {
    throw new MieSerializationError(`${where}: could not write the training checkpoint of step ${state.step} to ${dir}: ${causeMessage(error)}`, { cause: error });
  }
}

/**
 * Writes the checkpoint into `dir` atomically (a crash leaves the previous one whole). A failed
 * write (a full disk, a path that cannot be a directory) is a `MieSerializationError` naming
 * `dir`, with the system error as `cause`. `fileSystem` replaces `node:fs/promises` (tests);
 * `ema`, a weight average to keep with the run (its `ema.*` tensors and `state.ema`).
 */
export async function writeTrainingCheckpoint(dir: string, model: Module, optimizer: AdamW, state: TrainerState, fileSystem?: FileSystem, ema?: CheckpointEma): Promise<void> {
  await writeTrainingCheckpointFrom('writeTrainingCheckpoint', dir, model, optimizer, state, fileSystem, ema);
}

/** Whether `dir` holds a training checkpoint (something by that name: reading it checks what it is). */
export async function hasTrainingCheckpoint(dir: string): Promise<boolean> {
  try {
    await fsp.access(path.join(dir, TRAINING_CHECKPOINT_FILE));
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a checkpoint written by {@link writeTrainingCheckpoint}, checks all of it, then loads it
 * into `model` (strict state dict) and `optimizer` and returns the trainer state. A malformed or
 * inconsistent file is a `MieSerializationError`, a sound file that does not fit this run (another
 * seed, another model's parameters, another metric mode) a `MieTrainingError`; both name the file,
 * and after either the model and optimizer are exactly as before.
 */
export async function readTrainingCheckpoint(dir: string, model: Module, optimizer: AdamW, options: ReadTrainingCheckpointOptions = {}): Promise<TrainerState> {
  return readTrainingCheckpointFrom('readTrainingCheckpoint', dir, model, optimizer, options);
}

/** {@link readTrainingCheckpoint} with errors from `where`. @internal */
export async function readTrainingCheckpointFrom(
  where: string,
  dir: string,
  model: Module,
  optimizer: AdamW,
  options: ReadTrainingCheckpointOptions = {},
): Promise<TrainerState> {
  const file = path.join(dir, TRAINING_CHECKPOINT_FILE);
  const prefix = `${where}: cannot resume from ${file}`;
  const bad = (detail: string): never => {
    throw new MieSerializationError(`${prefix}: ${detail}.`);
  };
  const unfit = (detail: string): never => {
    throw new MieTrainingError(`${prefix}: ${detail}.`);
  };
  const own = model.stateDict();
  let contents: SafetensorsContents;
  try {
    contents = await readSafetensorsFile(file, { where: prefix, maxBytes: checkpointByteLimit(own, optimizer, options.ema?.average) });
  } catch (error) {
    if (error instanceof MieError && error.message.startsWith(prefix)) throw error;
    throw new MieSerializationError(`${prefix}: ${causeMessage(error)}`, { cause: error });
  }
  const { tensors, metadata } = contents;
  try {
    if (metadata.format !== 'mie-training-checkpoint' || typeof metadata['mie.trainer'] !== 'string') {
      bad(`it is not a MIE training checkpoint (metadata "format" is ${describeValue(metadata.format)}, expected "mie-training-checkpoint", with "mie.trainer")`);
    }
    let parsed: unknown;
    try {
      // Strict: a duplicate key would otherwise resolve silently (the last one wins).
      parsed = parseStrictJson(metadata['mie.trainer']);
    } catch (error) {
      throw new MieSerializationError(`${prefix}: the trainer state (metadata "mie.trainer") is not valid JSON (${causeMessage(error)}).`, { cause: error });
    }
    const state = checkTrainerState(parsed, bad);
    // The tensors: model.<name> exactly the model's state dict, optimizer.<moment>.<name> for the optimizer.
    // Null-prototype objects: a tensor named "model.__proto__" must stay a key, not a prototype.
    const modelTensors: NamedTensors = Object.create(null);
    const optimizerTensors: NamedTensors = Object.create(null);
    const emaTensors: NamedTensors = Object.create(null);
    for (const [name, tensor] of Object.entries(tensors)) {
      if (name.startsWith('model.')) modelTensors[name.slice('model.'.length)] = tensor;
      else if (name.startsWith('optimizer.')) optimizerTensors[name.slice('optimizer.'.length)] = tensor;
      else if (name.startsWith('ema.') && state.ema !== undefined) emaTensors[name.slice('ema.'.length)] = tensor;
      else bad(`unexpected tensor ${describeValue(name)} (expected "model.*", "optimizer.*"${state.ema ? ' and "ema.*"' : ''} tensors only)`);
    }
    checkModelTensors(modelTensors, own, optimizer, bad, unfit);
    checkOptimizerState(state, optimizerTensors, optimizer, bad, unfit);
    checkEma(state, emaTensors, options.ema, bad, unfit);
    // The file is sound; does it fit this run?
    if (options.seed !== undefined && state.seed !== options.seed) {
      unfit(`it was trained with seed ${state.seed}, this run has seed ${options.seed}; resuming would not reproduce the run`);
    }
    if (options.metricMode !== undefined && state.bestMetric !== null) {
      const { lowest, highest } = extremes(state.evaluations);
      const extreme = options.metricMode === 'min' ? lowest : highest;
      if (state.bestMetric !== extreme) {
        unfit(`its best metric ${state.bestMetric} is not the ${options.metricMode === 'min' ? 'lowest' : 'highest'} of its evaluations, so it was not trained with metricMode "${options.metricMode}"`);
      }
    }
    // Everything is checked: load. setState and loadStateDict check again and change nothing on failure.
    const previous = optimizer.getState();
    const backup = { tensors: Object.fromEntries(Object.entries(previous.tensors).map(([k, t]) => [k, tf.clone(t)])), json: { lr: previous.json.lr, steps: { ...previous.json.steps } } };
    try {
      optimizer.setState({ tensors: optimizerTensors, json: state.optimizer });
      try {
        model.loadStateDict(modelTensors, { strict: true });
      } catch (error) {
        optimizer.setState(backup);
        throw error;
      }
    } catch (error) {
      if (error instanceof MieError) throw new MieSerializationError(`${prefix}: ${error.message}`, { cause: error });
      throw error;
    } finally {
      tf.dispose(Object.values(backup.tensors));
    }
    // Validated by checkEma: it cannot refuse the state now.
    if (state.ema !== undefined) options.ema!.average.setState({ tensors: emaTensors, updates: state.ema.updates });
    return state;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** The lowest and highest metric of the evaluations (a loop: spreading a huge array into Math.min overflows the stack). */
function extremes(evaluations: readonly EvaluationRecord[]): { lowest: number; highest: number } {
  let lowest = Infinity;
  let highest = -Infinity;
  for (const { metric } of evaluations) {
    if (metric < lowest) lowest = metric;
    if (metric > highest) highest = metric;
  }
  return { lowest, highest };
}

/** Bytes per element of a dtype in a safetensors file written by `writeSafetensors`. */
function bytesPerElement(dtype: string): number {
  return dtype === 'bool' ? 1 : 4;
}

/**
 * The largest file a checkpoint of this model and optimizer can be: the model's tensors, both
 * moments of every optimized parameter (float32), the 8-byte length and the largest header the
 * safetensors reader accepts (the trainer state, with its history, lives there).
 */
function checkpointByteLimit(own: NamedTensors, optimizer: AdamW, ema?: ExponentialMovingAverage): number {
  let bytes = 8 + SAFETENSORS_MAX_HEADER_BYTES;
  for (const tensor of Object.values(own)) bytes += tensor.size * bytesPerElement(tensor.dtype);
  for (const name of optimizer.parameterNames) bytes += 2 * 4 * (optimizer.parameterShape(name) ?? []).reduce((a, b) => a * b, 1);
  if (ema !== undefined) for (const tensor of Object.values(ema.getState().tensors)) bytes += 4 * tensor.size;
  return bytes;
}

type Fail = (detail: string) => never;

/** An own property of a parsed JSON object (never one from the prototype chain). */
function field(object: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}

/** Whether `value` is an object as `JSON.parse` makes them (not an array, not null). */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks that `object` has exactly the `required` keys plus any of `optional`. */
function checkKeys(object: Record<string, unknown>, label: string, required: readonly string[], optional: readonly string[], fail: Fail): void {
  const allowed = new Set([...required, ...optional]);
  const unknown = Object.keys(object).filter((key) => !allowed.has(key));
  if (unknown.length) fail(`${label} has the unexpected field${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 3).map((k) => describeValue(k)).join(', ')}${unknown.length > 3 ? ` and ${unknown.length - 3} more` : ''}`);
  const missing = required.filter((key) => !Object.prototype.hasOwnProperty.call(object, key));
  if (missing.length) fail(`${label} lacks the field${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')}`);
}

function integer(value: unknown, label: string, minimum: number, maximum: number, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
    fail(`${label} must be an integer in [${minimum}, ${maximum}]. Received: ${describeValue(value)}`);
  }
  return value as number;
}

function finite(value: unknown, label: string, minimum: number, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < minimum) {
    fail(`${label} must be a finite number${minimum === -Infinity ? '' : ` >= ${minimum}`}. Received: ${describeValue(value)}`);
  }
  return value as number;
}

const STATE_KEYS = ['formatVersion', 'step', 'epoch', 'batchInEpoch', 'seed', 'optimizer', 'bestMetric', 'bestStep', 'history', 'evaluations'] as const;
const MAX = Number.MAX_SAFE_INTEGER;

/**
 * Checks every field of the parsed trainer state, and that they agree with each other as the
 * Trainer writes them (one history record per step, numbered 1..step; evaluations at increasing
 * steps; the best metric one of them; the optimizer's lr the last step's and its step counts at
 * most the step). Returns a fresh object holding only the known fields.
 */
function checkTrainerState(value: unknown, fail: Fail): TrainerState {
  if (!isRecord(value)) fail(`the trainer state must be a JSON object. Received: ${describeValue(value)}`);
  const raw = value as Record<string, unknown>;
  checkKeys(raw, 'the trainer state', STATE_KEYS, ['ema'], fail);
  if (field(raw, 'formatVersion') !== 1) fail(`unsupported trainer state formatVersion ${describeValue(field(raw, 'formatVersion'))} (this version reads 1)`);
  const step = integer(field(raw, 'step'), 'trainer state field "step"', 0, MAX, fail);
  const epoch = integer(field(raw, 'epoch'), 'trainer state field "epoch"', 0, MAX, fail);
  const batchInEpoch = integer(field(raw, 'batchInEpoch'), 'trainer state field "batchInEpoch"', 0, MAX, fail);
  const seed = integer(field(raw, 'seed'), 'trainer state field "seed"', 0, MAX, fail);

  const rawHistory = field(raw, 'history');
  if (!Array.isArray(rawHistory) || rawHistory.length !== step) {
    fail(`trainer state field "history" must be an array of ${step} step records (one per step). Received: ${Array.isArray(rawHistory) ? `${rawHistory.length} records` : describeValue(rawHistory)}`);
  }
  const history: StepRecord[] = [];
  let lastEpoch = 0;
  (rawHistory as unknown[]).forEach((item, i) => {
    const label = `history[${i}]`;
    if (!isRecord(item)) fail(`${label} must be an object { step, epoch, loss, lr, gradNorm? }. Received: ${describeValue(item)}`);
    const record = item as Record<string, unknown>;
    checkKeys(record, label, ['step', 'epoch', 'loss', 'lr'], ['gradNorm'], fail);
    if (field(record, 'step') !== i + 1) fail(`${label}.step must be ${i + 1}. Received: ${describeValue(field(record, 'step'))}`);
    const recordEpoch = integer(field(record, 'epoch'), `${label}.epoch`, lastEpoch, epoch, fail);
    lastEpoch = recordEpoch;
    const checked: StepRecord = {
      step: i + 1,
      epoch: recordEpoch,
      loss: finite(field(record, 'loss'), `${label}.loss`, -Infinity, fail),
      lr: finite(field(record, 'lr'), `${label}.lr`, 0, fail),
    };
    if (Object.prototype.hasOwnProperty.call(record, 'gradNorm')) checked.gradNorm = finite(field(record, 'gradNorm'), `${label}.gradNorm`, 0, fail);
    history.push(checked);
  });
  // The data position: at most one epoch past the last step's (an epoch that ended right after it), then at its start.
  if (step === 0 && (epoch !== 0 || batchInEpoch !== 0)) fail(`trainer state at step 0 must be at epoch 0, batch 0. Received: epoch ${epoch}, batch ${batchInEpoch}`);
  if (step > 0 && (epoch > lastEpoch + 1 || (epoch === lastEpoch + 1 && batchInEpoch !== 0))) {
    fail(`trainer state position (epoch ${epoch}, batch ${batchInEpoch}) does not follow the last step's epoch ${lastEpoch}`);
  }

  const rawEvaluations = field(raw, 'evaluations');
  if (!Array.isArray(rawEvaluations) || rawEvaluations.length > step) {
    fail(`trainer state field "evaluations" must be an array of at most ${step} records (one per evaluated step). Received: ${Array.isArray(rawEvaluations) ? `${rawEvaluations.length} records` : describeValue(rawEvaluations)}`);
  }
  const evaluations: EvaluationRecord[] = [];
  let lastEvaluated = 0;
  (rawEvaluations as unknown[]).forEach((item, i) => {
    const label = `evaluations[${i}]`;
    if (!isRecord(item)) fail(`${label} must be an object { step, metric }. Received: ${describeValue(item)}`);
    const record = item as Record<string, unknown>;
    checkKeys(record, label, ['step', 'metric'], [], fail);
    const evaluated = integer(field(record, 'step'), `${label}.step`, lastEvaluated + 1, step, fail);
    lastEvaluated = evaluated;
    evaluations.push({ step: evaluated, metric: finite(field(record, 'metric'), `${label}.metric`, -Infinity, fail) });
  });

  const bestMetric = field(raw, 'bestMetric');
  const bestStep = field(raw, 'bestStep');
  if (evaluations.length === 0) {
    if (bestMetric !== null || bestStep !== null) fail(`trainer state fields "bestMetric" and "bestStep" must be null without evaluations. Received: ${describeValue(bestMetric)} and ${describeValue(bestStep)}`);
  } else {
    const best = evaluations.find((e) => e.step === bestStep);
    if (best === undefined || best.metric !== bestMetric) {
      fail(`trainer state fields "bestMetric" and "bestStep" must name one of its evaluations. Received: ${describeValue(bestMetric)} at step ${describeValue(bestStep)}`);
    }
    const { lowest, highest } = extremes(evaluations);
    if (bestMetric !== lowest && bestMetric !== highest) {
      fail(`trainer state field "bestMetric" (${describeValue(bestMetric)}) is neither the lowest nor the highest of its evaluations`);
    }
  }

  const rawOptimizer = field(raw, 'optimizer');
  if (!isRecord(rawOptimizer)) fail(`trainer state field "optimizer" must be an object { lr, steps }. Received: ${describeValue(rawOptimizer)}`);
  const optimizerJson = rawOptimizer as Record<string, unknown>;
  checkKeys(optimizerJson, 'trainer state field "optimizer"', ['lr', 'steps'], [], fail);
  const lr = finite(field(optimizerJson, 'lr'), 'optimizer.lr', 0, fail);
  if (step > 0 && lr !== history[step - 1].lr) fail(`optimizer.lr (${lr}) must be the learning rate of the last step, ${history[step - 1].lr}`);
  const rawSteps = field(optimizerJson, 'steps');
  if (!isRecord(rawSteps)) fail(`optimizer.steps must be an object of per-parameter step counts. Received: ${describeValue(rawSteps)}`);
  const steps: Record<string, number> = {};
  for (const [name, count] of Object.entries(rawSteps as Record<string, unknown>)) {
    // defineProperty: a parameter named "__proto__" must stay a plain key.
    Object.defineProperty(steps, name, { value: integer(count, `optimizer.steps[${describeValue(name)}]`, 1, step, fail), enumerable: true, writable: true, configurable: true });
  }
  const checked: TrainerState = {
    formatVersion: 1,
    step,
    epoch,
    batchInEpoch,
    seed,
    optimizer: { lr, steps },
    bestMetric: evaluations.length ? (bestMetric as number) : null,
    bestStep: evaluations.length ? (bestStep as number) : null,
    history,
    evaluations,
  };
  if (Object.prototype.hasOwnProperty.call(raw, 'ema')) checked.ema = checkEmaRecord(field(raw, 'ema'), step, fail);
  return checked;
}

/** The `ema` field of the trainer state: its configuration, and at most one update per step. */
function checkEmaRecord(value: unknown, step: number, fail: Fail): EmaRecord {
  if (!isRecord(value)) fail(`trainer state field "ema" must be an object { decay, warmup, every, updates }. Received: ${describeValue(value)}`);
  const raw = value as Record<string, unknown>;
  checkKeys(raw, 'trainer state field "ema"', ['decay', 'warmup', 'every', 'updates'], [], fail);
  const decay = field(raw, 'decay');
  if (typeof decay !== 'number' || !Number.isFinite(decay) || decay < 0 || decay >= 1) fail(`ema.decay must be a number in [0, 1). Received: ${describeValue(decay)}`);
  const warmup = field(raw, 'warmup');
  if (typeof warmup !== 'boolean') fail(`ema.warmup must be a boolean. Received: ${describeValue(warmup)}`);
  const every = integer(field(raw, 'every'), 'ema.every', 1, MAX, fail);
  const updates = integer(field(raw, 'updates'), 'ema.updates', 0, Math.floor(step / every), fail);
  return { decay: decay as number, warmup: warmup as boolean, every, updates };
}

/** The file's weight average against the resuming run's: both or neither, the same configuration, sound tensors. */
function checkEma(state: TrainerState, tensors: NamedTensors, ema: CheckpointEma | undefined, bad: Fail, unfit: Fail): void {
  const saved = state.ema;
  if (saved === undefined) {
    if (ema !== undefined) unfit('it was trained without a moving average of the weights, and this run keeps one (option "ema")');
    return;
  }
  if (ema === undefined) unfit('it was trained with a moving average of the weights (option "ema"), and this run keeps none');
  const { average, every } = ema!;
  if (saved.decay !== average.decay || saved.warmup !== average.warmup || saved.every !== every) {
    unfit(`its weight average has decay ${saved.decay}, warmup ${saved.warmup}, every ${saved.every}; this run's has decay ${average.decay}, warmup ${average.warmup}, every ${every}`);
  }
  const problems = average.validateState({ tensors, updates: saved.updates });
  if (problems.length) bad(`weight average: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; ${problems.length - 10} more problems` : ''}`);
}

/** The first NaN or infinite value of a float tensor, or null. */
function firstNonFinite(tensor: tf.Tensor): { index: number; value: number } | null {
  if (tensor.dtype !== 'float32') return null;
  const values = readSync(tensor, 'readTrainingCheckpoint', 'a checkpoint decoded from its bytes') as Float32Array;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return { index: i, value: values[i] };
  return null;
}

/** The model tensors: exactly the model's state dict, same shapes, and finite optimized parameters. */
function checkModelTensors(tensors: NamedTensors, own: NamedTensors, optimizer: AdamW, bad: Fail, unfit: Fail): void {
  const has = (object: object, key: string) => Object.prototype.hasOwnProperty.call(object, key);
  const missing = Object.keys(own).filter((key) => !has(tensors, key));
  const unexpected = Object.keys(tensors).filter((key) => !has(own, key));
  const list = (keys: string[]) => `${keys.slice(0, 5).map((k) => describeValue(`model.${k}`)).join(', ')}${keys.length > 5 ? ` and ${keys.length - 5} more` : ''}`;
  if (missing.length || unexpected.length) {
    unfit(`its weights are not this model's (${[missing.length ? `missing ${list(missing)}` : '', unexpected.length ? `unexpected ${list(unexpected)}` : ''].filter(Boolean).join('; ')})`);
  }
  for (const [name, variable] of Object.entries(own)) {
    const tensor = tensors[name];
    if (!tf.util.arraysEqual(tensor.shape, variable.shape)) {
      unfit(`its weights are not this model's: "model.${name}" has shape [${tensor.shape.join(', ')}], this model's is [${variable.shape.join(', ')}]`);
    }
    if (tensor.dtype === 'string' || tensor.dtype === 'complex64') bad(`"model.${name}" has dtype ${tensor.dtype}, expected ${variable.dtype}`);
  }
  for (const name of optimizer.parameterNames) {
    if (!has(tensors, name)) continue;
    const found = firstNonFinite(tensors[name]);
    if (found !== null) bad(`"model.${name}" holds ${found.value} at index ${found.index} (weights must be finite)`);
  }
}

/** The optimizer's moments against its step counts and parameters, and the step counts against the state's step. */
function checkOptimizerState(state: TrainerState, tensors: NamedTensors, optimizer: AdamW, bad: Fail, unfit: Fail): void {
  const foreign = Object.keys(state.optimizer.steps).filter((name) => optimizer.parameterShape(name) === undefined);
  if (foreign.length) {
    unfit(`its optimizer state is for other parameters than this optimizer's (${foreign.slice(0, 5).map((k) => describeValue(k)).join(', ')}${foreign.length > 5 ? ` and ${foreign.length - 5} more` : ''})`);
  }
  const problems = optimizer.validateState({ tensors, json: state.optimizer });
  if (problems.length) bad(`optimizer state: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; ${problems.length - 10} more problems` : ''}`);
}
