/** Loads the PyTorch reference values written by scripts/fixtures/attention.py (tests only). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '@mie/core';

export interface Stored {
  shape: number[];
  data: number[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const fixture: any = JSON.parse(fs.readFileSync(path.join(__dirname, '../../fixtures/attention.json'), 'utf8'));

/** A stored tensor as a float32 tensor (the caller disposes it). */
export function tensor(stored: Stored): tf.Tensor {
  return tf.tensor(stored.data, stored.shape, 'float32');
}

/** Stored tensors by name. */
export function tensors(stored: Record<string, Stored>): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(stored).map(([key, value]) => [key, tensor(value)]));
}

/** Largest absolute difference between a tensor and stored values (shapes must match). */
export function maxDifference(actual: tf.Tensor, expected: Stored): number {
  expect(actual.shape).toEqual(expected.shape);
  const values = actual.dataSync();
  let worst = 0;
  for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - expected.data[i]));
  return worst;
}
