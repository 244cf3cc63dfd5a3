/**
 * @mie/training: cross-entropy with ignore index and label smoothing, AdamW, learning-rate
 * schedules, gradient clipping and accumulation, a Trainer with exact resume and best-checkpoint
 * keeping, and vocabularies, padding and length bucketing for token batches.
 */
export { MieTrainingError } from './errors';
export { crossEntropyLoss, type CrossEntropyLossOptions, type LossReduction } from './cross-entropy-loss';
export { valueAndGradients, namedTrainableParameters, type NamedGradients, type NamedParameterSource } from './gradients';
export { AdamW, noDecayForBiasesAndNorms, type AdamWConfig, type AdamWOptions, type OptimizerState } from './adamw';
export {
  inverseSquareRootSchedule,
  scaledInverseSquareRootSchedule,
  cosineSchedule,
  linearSchedule,
  constantSchedule,
  type LearningRateSchedule,
  type InverseSquareRootScheduleOptions,
  type ScaledInverseSquareRootScheduleOptions,
  type WarmupDecayScheduleOptions,
} from './learning-rate-schedules';
export { clipGradNorm, clipGradNormAsync, type ClippedGradients } from './clip-grad-norm';
export { GradientAccumulator } from './gradient-accumulator';
export { ExponentialMovingAverage, type ExponentialMovingAverageOptions, type ExponentialMovingAverageState } from './exponential-moving-average';
export { mixSeeds, seededPermutation, seededUniform } from './random-order';
export { padBatch, bucketByLength, type PaddedBatch, type PadBatchOptions, type BucketByLengthOptions } from './batching';
export { ShuffledBatches, type DataSource, type DataInput, type ShuffledBatchesOptions } from './data-source';
export {
  Vocabulary,
  SPECIAL_TOKENS,
  type VocabularyOptions,
  type VocabularyJSON,
  type UnknownTokenPolicy,
  type EncodeOptions,
  type DecodeOptions,
} from './vocabulary';
export {
  Trainer,
  BEST_METRIC_FILE,
  type TrainerOptions,
  type FitOptions,
  type FitResult,
  type LossFunction,
  type EvaluateFunction,
  type TrainerEmaOptions,
} from './trainer';
export {
  TRAINING_CHECKPOINT_FILE,
  readTrainingCheckpoint,
  writeTrainingCheckpoint,
  hasTrainingCheckpoint,
  type ReadTrainingCheckpointOptions,
  type StepRecord,
  type EvaluationRecord,
  type TrainerState,
  type EmaRecord,
  type CheckpointEma,
} from './training-checkpoint';
export {
  createProgressReporter,
  formatProgressLine,
  formatDuration,
  type ProgressMode,
  type ProgressReporter,
  type ProgressUpdate,
} from './progress';
