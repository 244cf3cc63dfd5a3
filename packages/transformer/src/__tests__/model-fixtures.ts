/**
 * Test helpers: the whole-model reference fixture written by scripts/fixtures/transformer_models.py
 * (one safetensors file; each case's state dict under `<case>/state/<name>`: PyTorch names for
 * `Transformer` cases, MIE names for `DecoderOnlyTransformer` cases). Not part of the published package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors, tf } from '@mie/core';

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
  const bytes = fs.readFileSync(MODEL_FIXTURE_FILE);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as { __metadata__: Record<string, string> };
  return JSON.parse(header.__metadata__['cases']) as Record<string, ModelCase>;
}

/** Every tensor of one case: `state` and the named inputs and outputs. The caller disposes them. */
export function loadModelCase(name: string): { state: Record<string, tf.Tensor>; tensors: Record<string, tf.Tensor> } {
  const { tensors: all } = readSafetensors(new Uint8Array(fs.readFileSync(MODEL_FIXTURE_FILE)));
  const state: Record<string, tf.Tensor> = {};
  const tensors: Record<string, tf.Tensor> = {};
  for (const [key, tensor] of Object.entries(all)) {
    if (key.startsWith(`${name}/state/`)) state[key.slice(`${name}/state/`.length)] = tensor;
    else if (key.startsWith(`${name}/`)) tensors[key.slice(name.length + 1)] = tensor;
    else tensor.dispose();
  }
  return { state, tensors };
}
