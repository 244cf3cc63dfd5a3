/** Test helpers: the PyTorch reference values written by scripts/fixtures/training.py. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, type BackendChoice } from '@mie/core';

/** A tensor as stored in a fixture. */
export interface EncodedTensor {
  shape: number[];
  data: number[];
}

/** The backends every fixture test runs on. */
export const FIXTURE_BACKENDS: BackendChoice[] = ['cpu', 'wasm'];

/** Absolute and relative tolerance of every comparison with PyTorch. */
export const TOLERANCE = 1e-5;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Fixture = any;

let cached: Fixture | undefined;

/** `fixtures/training.json`. */
export function loadFixture(): Fixture {
  cached ??= JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'training.json'), 'utf8'));
  return cached;
}

/** A tensor from a fixture entry. */
export function toTensor(encoded: EncodedTensor, dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  return tf.tensor(encoded.data, encoded.shape, dtype);
}

/** Throws unless `actual` has the shape of `expected` and |a - e| <= tol * (1 + |e|) everywhere. */
export function expectClose(actual: tf.Tensor, expected: EncodedTensor, label: string, tolerance = TOLERANCE): void {
  if (!tf.util.arraysEqual(actual.shape, expected.shape)) {
    throw new Error(`${label}: shape [${actual.shape}] != expected [${expected.shape}]`);
  }
  const values = actual.dataSync();
  expected.data.forEach((e, i) => {
    if (!(Math.abs(values[i] - e) <= tolerance * (1 + Math.abs(e)))) {
      throw new Error(`${label}: element ${i} is ${values[i]}, expected ${e} (tolerance ${tolerance})`);
    }
  });
}
