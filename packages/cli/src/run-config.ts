/**
 * The architecture file a training run keeps beside its resumable checkpoint
 * (`train/g2p-config.json`, `train/lm-config.json`): read back on `--resume`, so the run continues
 * with the model it started with, whatever the device or the options are now.
 */
import { MieConfigError, causeMessage, checkOptions, readRegularFile } from '@mie/core';

/** A run's config file is a few kilobytes; anything above this is not one. */
export const MAX_RUN_CONFIG_BYTES = 1 << 20;

/** What {@link readRunConfig} needs to know about the file. */
export interface RunConfigFile<T> {
  /** The command, for messages (`mie train g2p`). */
  command: string;
  /** The file. */
  file: string;
  /** Size of the checkpoint the config goes with: it bounds every number in the file. */
  checkpointBytes: number;
  /** The keys a config holds, for the message about a value that is not an object (`{ graphemes, phonemes, transformer }`). */
  shape: string;
  /** What the config describes, for messages (`a G2P model`). */
  kind: string;
  /** Builds the model (or whatever the config describes) from the parsed object; may throw. */
  build: (value: object) => T;
}

/**
 * Reads a run's config and builds what it describes. A file that is not one (bad JSON, not an
 * object, nested too deep, a number larger than any size the checkpoint can hold, or a value
 * `build` refuses) is a `MieConfigError` "COMMAND: cannot resume: FILE ..." naming what is wrong;
 * a FIFO or a device in its place is refused before it is opened. `checkpointBytes` bounds every
 * number, as `BaseModel.load` does: no size of a model exceeds its number of weights.
 */
export async function readRunConfig<T>({ command, file, checkpointBytes, shape, kind, build }: RunConfigFile<T>): Promise<T> {
  const fail = (detail: string, cause?: unknown): never => {
    throw new MieConfigError(`${command}: cannot resume: ${file} ${detail}`, { cause: cause });
  };
  const bytes = await readRegularFile(file, MAX_RUN_CONFIG_BYTES, `${command}: cannot resume`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail(`is not valid JSON (${causeMessage(error)}).`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`must hold a JSON object ${shape}.`);
  const limit = Math.max(4096, Math.floor(checkpointBytes / 4));
  const visit = (item: unknown, where: string, depth: number): void => {
    if (typeof item === 'number' && Math.abs(item) > limit) fail(`has ${where} = ${item}, larger than any size the ${checkpointBytes}-byte checkpoint can describe (limit ${limit}).`);
    if (typeof item === 'object' && item !== null) {
      if (depth > 8) fail(`is nested deeper than a config of ${kind} (at ${where}).`);
      for (const [key, child] of Object.entries(item)) visit(child, `${where}.${key}`, depth + 1);
    }
  };
  visit(value, 'config', 0);
  try {
    return build(value as object);
  } catch (error) {
    return fail(`does not describe ${kind}: ${causeMessage(error)}`, error);
  }
}

/** The schedule a resumable run keeps beside its model config. */
export interface ScheduleConfig {
  model: unknown;
  batchSize: number;
  scheduleSteps: number;
  warmupSteps: number;
  peakLr: number;
  evalEvery: number;
  /** The moving average of the weights the run keeps (the Trainer's `ema` option); absent: none (a run of an earlier version). */
  ema?: { decay: number; every: number };
}

/**
 * Checks a run's `{ model, batchSize, scheduleSteps, warmupSteps, peakLr, evalEvery, ema? }` (the
 * model config is the job's to check); a bad value is a `MieConfigError` naming it and `file`.
 */
export function checkScheduleConfig(file: string, value: unknown): ScheduleConfig {
  const config = checkOptions(file, value as ScheduleConfig, ['model', 'batchSize', 'scheduleSteps', 'warmupSteps', 'peakLr', 'evalEvery', 'ema']);
  for (const key of ['batchSize', 'scheduleSteps', 'evalEvery'] as const) {
    if (!(Number.isSafeInteger(config[key]) && config[key] >= 1)) throw new MieConfigError(`"${key}" must be an integer >= 1. Received: ${String(config[key])}.`);
  }
  if (!(Number.isSafeInteger(config.warmupSteps) && config.warmupSteps >= 0 && config.warmupSteps < config.scheduleSteps)) {
    throw new MieConfigError(`"warmupSteps" must be an integer in [0, scheduleSteps). Received: ${String(config.warmupSteps)}.`);
  }
  if (!(typeof config.peakLr === 'number' && config.peakLr > 0 && config.peakLr < 1)) throw new MieConfigError(`"peakLr" must be a number in (0, 1). Received: ${String(config.peakLr)}.`);
  if (config.ema !== undefined) {
    const ema = checkOptions(`${file} "ema"`, config.ema, ['decay', 'every']);
    if (!(typeof ema.decay === 'number' && ema.decay >= 0 && ema.decay < 1)) throw new MieConfigError(`"ema.decay" must be a number in [0, 1). Received: ${String(ema.decay)}.`);
    if (!(Number.isSafeInteger(ema.every) && ema.every >= 1)) throw new MieConfigError(`"ema.every" must be an integer >= 1. Received: ${String(ema.every)}.`);
  }
  return config;
}
