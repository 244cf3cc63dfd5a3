/**
 * Test helpers: the PyTorch reference fixture written by scripts/fixtures/transformer.py (one
 * safetensors file; each case's PyTorch state dict under `<case>/state/<torch name>`), and tensor
 * comparisons. Not part of the published package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors, tf } from '@mie/core';

/** What the fixture's `cases` metadata says about one case. */
export interface ParityCase {
  kind: 'MultiHeadAttention' | 'TransformerEncoderLayer' | 'TransformerDecoderLayer' | 'EncoderDecoderTransformer';
  /** The MIE options of the module. */
  options: Record<string, unknown>;
  /** Whether the (self-)attention was causal. */
  causal?: boolean;
  /** `state_dict().keys()` of the PyTorch module, in order. */
  torchKeys: string[];
  parameterCount?: number;
  exampleParameterCount?: number;
}

export const FIXTURE_FILE = path.join(__dirname, '../../fixtures/transformer-parity.safetensors');

/** The fixture's case descriptions, from the file's header alone (no tensors, so no backend needed). */
export function parityCases(): Record<string, ParityCase> {
  return fixtureCases<ParityCase>(FIXTURE_FILE);
}

/** The `cases` metadata of a fixture file written by scripts/fixtures/*.py, read from its header alone. */
export function fixtureCases<T>(file: string): Record<string, T> {
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as { __metadata__: Record<string, string> };
  return JSON.parse(header.__metadata__['cases']) as Record<string, T>;
}

/** Every tensor of one case: `state` (PyTorch names) and the named inputs and outputs. The caller disposes them. */
export function loadCase(name: string, file = FIXTURE_FILE): { state: Record<string, tf.Tensor>; tensors: Record<string, tf.Tensor> } {
  const { tensors: all } = readSafetensors(new Uint8Array(fs.readFileSync(file)));
  const state: Record<string, tf.Tensor> = {};
  const tensors: Record<string, tf.Tensor> = {};
  for (const [key, tensor] of Object.entries(all)) {
    if (key.startsWith(`${name}/state/`)) state[key.slice(`${name}/state/`.length)] = tensor;
    else if (key.startsWith(`${name}/`)) tensors[key.slice(name.length + 1)] = tensor;
    else tensor.dispose();
  }
  return { state, tensors };
}

/** Largest |actual - expected|, after checking that the shapes agree. */
export function maxAbsDifference(actual: tf.Tensor, expected: tf.Tensor): number {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  const b = expected.dataSync();
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
