/**
 * Learning-rate schedules as pure functions of the step: `schedule(step)` is the learning rate of
 * the `step`-th optimizer update, counting from 1 (the paper's `step_num`). Being pure, a schedule
 * needs no state in a checkpoint: the step number is its whole position.
 */
import { MieConfigError, checkOptions, checkPositiveInteger, errorMessage } from '@mie/core';

/** A learning rate as a function of the 1-based optimizer step. */
export type LearningRateSchedule = (step: number) => number;

function checkStep(name: string, step: number): void {
  if (!Number.isSafeInteger(step) || step < 1) {
    throw new MieConfigError(errorMessage(name, 'step', 'must be an integer >= 1 (the first update is step 1)', step));
  }
}

function checkRate(name: string, option: string, value: unknown, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new MieConfigError(errorMessage(name, `option "${option}"`, allowZero ? 'must be a finite number >= 0' : 'must be a finite number > 0', value));
  }
  return value;
}

/** Options of {@link inverseSquareRootSchedule}. */
export interface InverseSquareRootScheduleOptions {
  /** Model width `d_model`. Required. */
  dModel: number;
  /** Steps of linear warm-up. Default `4000` (the paper's). */
  warmupSteps?: number;
  /** Multiplies the whole schedule. Default `1`. */
  factor?: number;
}

/**
 * The schedule of "Attention Is All You Need" (Vaswani et al. 2017, eq. 3):
 * `factor * dModel^-0.5 * min(step^-0.5, step * warmupSteps^-1.5)`: linear warm-up to
 * `dModel^-0.5 * warmupSteps^-0.5` at `warmupSteps`, then decay as `1 / sqrt(step)`.
 */
export function inverseSquareRootSchedule(options: InverseSquareRootScheduleOptions): LearningRateSchedule {
  const name = 'inverseSquareRootSchedule';
  const { dModel, warmupSteps = 4000, factor = 1 } = checkOptions(name, options, ['dModel', 'warmupSteps', 'factor']);
  checkPositiveInteger(name, 'dModel', dModel);
  checkPositiveInteger(name, 'warmupSteps', warmupSteps);
  checkRate(name, 'factor', factor);
  return (step) => {
    checkStep(name, step);
    return factor * dModel ** -0.5 * Math.min(step ** -0.5, step * warmupSteps ** -1.5);
  };
}

/** Options of {@link scaledInverseSquareRootSchedule}. */
export interface ScaledInverseSquareRootScheduleOptions {
  /** The learning rate reached at `warmupSteps`. Required. */
  peakLr: number;
  /** Steps of linear warm-up. Default `4000`. */
  warmupSteps?: number;
}

/**
 * The paper's inverse-square-root schedule rescaled to a chosen peak:
 * `peakLr * min(step / warmupSteps, sqrt(warmupSteps / step))`.
 */
export function scaledInverseSquareRootSchedule(options: ScaledInverseSquareRootScheduleOptions): LearningRateSchedule {
  const name = 'scaledInverseSquareRootSchedule';
  const { peakLr, warmupSteps = 4000 } = checkOptions(name, options, ['peakLr', 'warmupSteps']);
  checkRate(name, 'peakLr', peakLr);
  checkPositiveInteger(name, 'warmupSteps', warmupSteps);
  return (step) => {
    checkStep(name, step);
    return peakLr * Math.sqrt(warmupSteps) * Math.min(step ** -0.5, step * warmupSteps ** -1.5);
  };
}

/** Options of {@link cosineSchedule} and {@link linearSchedule}. */
export interface WarmupDecayScheduleOptions {
  /** The learning rate reached at the end of warm-up. Required. */
  peakLr: number;
  /** Steps of linear warm-up from `peakLr / warmupSteps` to `peakLr`; 0 for none. Default `0`. */
  warmupSteps?: number;
  /** The step at which the decay reaches `minLr` (it stays there afterwards). Required, > `warmupSteps`. */
  totalSteps: number;
  /** The final learning rate. Default `0`. */
  minLr?: number;
}

function warmupDecay(name: string, options: WarmupDecayScheduleOptions, shape: (progress: number) => number): LearningRateSchedule {
  const { peakLr, warmupSteps = 0, totalSteps, minLr = 0 } = checkOptions(name, options, ['peakLr', 'warmupSteps', 'totalSteps', 'minLr']);
  checkRate(name, 'peakLr', peakLr);
  checkPositiveInteger(name, 'warmupSteps', warmupSteps, 0);
  checkPositiveInteger(name, 'totalSteps', totalSteps, warmupSteps + 1);
  checkRate(name, 'minLr', minLr, true);
  return (step) => {
    checkStep(name, step);
    if (step <= warmupSteps) return (peakLr * step) / warmupSteps;
    const progress = Math.min(1, (step - warmupSteps) / (totalSteps - warmupSteps));
    return minLr + (peakLr - minLr) * shape(progress);
  };
}

/**
 * Linear warm-up, then half a cosine from `peakLr` down to `minLr` at `totalSteps`
 * (Loshchilov & Hutter 2017, SGDR without restarts; HF `get_cosine_schedule_with_warmup` with a floor):
 * `minLr + (peakLr - minLr) * (1 + cos(pi * progress)) / 2`.
 */
export function cosineSchedule(options: WarmupDecayScheduleOptions): LearningRateSchedule {
  return warmupDecay('cosineSchedule', options, (progress) => 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Linear warm-up, then a straight line from `peakLr` down to `minLr` at `totalSteps` (HF `get_linear_schedule_with_warmup`). */
export function linearSchedule(options: WarmupDecayScheduleOptions): LearningRateSchedule {
  return warmupDecay('linearSchedule', options, (progress) => 1 - progress);
}

/** A constant learning rate (the default of the `Trainer`). */
export function constantSchedule(lr: number): LearningRateSchedule {
  checkRate('constantSchedule', 'lr', lr, true);
  return () => lr;
}
