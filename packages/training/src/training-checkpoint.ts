/**
 * The resumable checkpoint of a training run, `dir/last/checkpoint.safetensors`: ONE file, so that
 * one atomic rename (`writeFilesAtomically`) replaces it whole and a crash never pairs new
 * weights with an old optimizer state. Tensors: `model.<parameter>` (the model's state dict) and
 * `optimizer.<expAvg|expAvgSq>.<parameter>`; metadata `mie.trainer`: the {@link TrainerState} JSON.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { MieSerializationError, readSafetensors, tf, writeFilesAtomically, writeSafetensors, type Module, type NamedTensors } from '@mie/core';
import type { AdamW, OptimizerState } from './adamw';

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
}

/** Writes the checkpoint into `dir` atomically. */
export async function writeTrainingCheckpoint(dir: string, model: Module, optimizer: AdamW, state: TrainerState): Promise<void> {
  const optimizerState = optimizer.getState();
  const tensors: NamedTensors = {};
  for (const [name, tensor] of Object.entries(model.stateDict())) tensors[`model.${name}`] = tensor;
  for (const [name, tensor] of Object.entries(optimizerState.tensors)) tensors[`optimizer.${name}`] = tensor;
  const bytes = writeSafetensors(tensors, { format: 'mie-training-checkpoint', 'mie.trainer': JSON.stringify({ ...state, optimizer: optimizerState.json }) });
  await writeFilesAtomically(dir, [[TRAINING_CHECKPOINT_FILE, bytes]]);
}

/** Whether `dir` holds a training checkpoint. */
export async function hasTrainingCheckpoint(dir: string): Promise<boolean> {
  try {
    await fsp.access(path.join(dir, TRAINING_CHECKPOINT_FILE));
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a checkpoint written by {@link writeTrainingCheckpoint} and loads it into `model` (strict
 * state dict) and `optimizer`. Returns the trainer state. A malformed file is a `MieSerializationError`.
 */
export async function readTrainingCheckpoint(dir: string, model: Module, optimizer: AdamW): Promise<TrainerState> {
  const file = path.join(dir, TRAINING_CHECKPOINT_FILE);
  const where = `readTrainingCheckpoint(${JSON.stringify(dir)})`;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await fsp.readFile(file));
  } catch (error) {
    throw new MieSerializationError(`${where}: cannot read ${file}: ${(error as Error).message}`);
  }
  const { tensors, metadata } = readSafetensors(bytes);
  try {
    if (metadata.format !== 'mie-training-checkpoint' || metadata['mie.trainer'] === undefined) {
      throw new MieSerializationError(`${where}: ${TRAINING_CHECKPOINT_FILE} is not a MIE training checkpoint (metadata format ${JSON.stringify(metadata.format)}).`);
    }
    let state: TrainerState;
    try {
      state = JSON.parse(metadata['mie.trainer']) as TrainerState;
    } catch (error) {
      throw new MieSerializationError(`${where}: the trainer state is not valid JSON (${(error as Error).message}).`);
    }
    const integers: Array<keyof TrainerState> = ['step', 'epoch', 'batchInEpoch', 'seed'];
    for (const key of integers) {
      if (!Number.isSafeInteger(state[key]) || (state[key] as number) < 0) {
        throw new MieSerializationError(`${where}: trainer state field "${key}" must be an integer >= 0. Received: ${JSON.stringify(state[key])}.`);
      }
    }
    if (state.formatVersion !== 1 || !Array.isArray(state.history) || !Array.isArray(state.evaluations)) {
      throw new MieSerializationError(`${where}: unsupported trainer state (formatVersion ${JSON.stringify(state.formatVersion)}).`);
    }
    const modelTensors: NamedTensors = {};
    const optimizerTensors: NamedTensors = {};
    for (const [name, tensor] of Object.entries(tensors)) {
      if (name.startsWith('model.')) modelTensors[name.slice('model.'.length)] = tensor;
      else if (name.startsWith('optimizer.')) optimizerTensors[name.slice('optimizer.'.length)] = tensor;
      else throw new MieSerializationError(`${where}: unexpected tensor "${name}".`);
    }
    // Check the optimizer first: model.loadStateDict writes, and a failed resume should change nothing.
    const previous = optimizer.getState();
    const backup = { tensors: Object.fromEntries(Object.entries(previous.tensors).map(([k, t]) => [k, tf.clone(t)])), json: previous.json };
    optimizer.setState({ tensors: optimizerTensors, json: state.optimizer });
    try {
      model.loadStateDict(modelTensors, { strict: true });
    } catch (error) {
      optimizer.setState(backup);
      throw error;
    } finally {
      tf.dispose(Object.values(backup.tensors));
    }
    return state;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
