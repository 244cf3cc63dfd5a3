/**
 * The browser's version of training-checkpoint.ts (package.json "browser"): resumable checkpoints
 * are files, and a page has no file system. A Trainer trains in a browser without `checkpointDir`;
 * with one, its first save or resume fails with a `MieBackendError` saying so.
 */
import { MieBackendError } from '@mie/core';
import type * as NodeCheckpoint from './training-checkpoint';

export type { CheckpointEma, EmaRecord, EvaluationRecord, ReadTrainingCheckpointOptions, StepRecord, TrainerState } from './training-checkpoint';

export const TRAINING_CHECKPOINT_FILE = 'checkpoint.safetensors';

const nodeOnly = (what: string): never => {
  throw new MieBackendError(`${what}: training checkpoints are files, and a browser has no file system; train without checkpointDir (or in Node).`);
};

export const writeTrainingCheckpointFrom: typeof NodeCheckpoint.writeTrainingCheckpointFrom = async (where) => nodeOnly(where);
export const writeTrainingCheckpoint: typeof NodeCheckpoint.writeTrainingCheckpoint = async () => nodeOnly('writeTrainingCheckpoint');
export const hasTrainingCheckpoint: typeof NodeCheckpoint.hasTrainingCheckpoint = async () => false;
export const readTrainingCheckpoint: typeof NodeCheckpoint.readTrainingCheckpoint = async () => nodeOnly('readTrainingCheckpoint');
export const readTrainingCheckpointFrom: typeof NodeCheckpoint.readTrainingCheckpointFrom = async (where) => nodeOnly(where);
