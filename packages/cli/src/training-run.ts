/**
 * What every `mie train ...` job does the same way: check the common options, claim (or resume)
 * the run directory, train with the Trainer, keep the better of the final weights and the best
 * checkpoint, and save it as `OUT/model`. Each job brings its data, model and reports.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BaseModel, MieConfigError, causeMessage, checkOptions, ready, type DeviceInfo } from '@mie/core';
import type { FitResult, Trainer } from '@mie/training';
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
  } finally {
    dispose();
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

/** Writes `files` into `dir` atomically for `command`; a failure is a `MieSerializationError` naming the directory. */
export function runFileWriter(command: string): (dir: string, files: Array<[string, Uint8Array]>) => Promise<void> {
  return (dir, files) => writeRunFiles(command, dir, files);
}
