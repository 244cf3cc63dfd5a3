/**
 * Test helpers: the whole-model reference fixture written by scripts/fixtures/transformer_models.py
 * (one safetensors file; each case's state dict under `<case>/state/<name>`: PyTorch names for
 * `Transformer` cases, MIE names for `DecoderOnlyTransformer` cases). Not part of the published package.
 */
import * as path from 'node:path';
import type { tf } from '@mie/core';
import { fixtureCases, loadCase } from './fixtures';

/** What the fixture's `cases` metadata says about one case. */
export interface ModelCase {
  kind: 'Transformer' | 'DecoderOnlyTransformer';
  /** The MIE options of the model. */
  options: Record<string, unknown>;
  /** The reference model's parameter count. */
  parameterCount: number;
  /** The state-dict keys, in order. */
  stateKeys: string[];
}

export const MODEL_FIXTURE_FILE = path.join(__dirname, '../../fixtures/transformer-models.safetensors');

/** The fixture's case descriptions, from the file's header alone (no tensors, so no backend needed). */
export function modelCases(): Record<string, ModelCase> {
  return fixtureCases<ModelCase>(MODEL_FIXTURE_FILE);
}

/** Every tensor of one case: `state` and the named inputs and outputs. The caller disposes them. */
export function loadModelCase(name: string): { state: Record<string, tf.Tensor>; tensors: Record<string, tf.Tensor> } {
  return loadCase(name, MODEL_FIXTURE_FILE);
}
