/**
 * Test helpers: the PyTorch reference fixtures written by scripts/fixtures/positional.py, and
 * small tensor comparisons. Not part of the published package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '@mie/core';

/** A tensor as stored in the fixtures: shape and flat row-major values. */
export interface FixtureTensor {
  shape: number[];
  values: number[];
}

/** Reads `packages/positional/fixtures/<name>`. */
export function loadFixture<T>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '../../fixtures', name), 'utf8')) as T;
}

/** A float32 tensor from a fixture entry. */
export function fromFixture(t: FixtureTensor): tf.Tensor {
  return tf.tensor(t.values, t.shape, 'float32');
}

/** Largest |actual - expected| after checking that the shapes agree. */
export function maxAbsDifference(actual: tf.Tensor, expected: FixtureTensor | tf.Tensor): number {
  const shape = expected instanceof tf.Tensor ? expected.shape : expected.shape;
  expect(actual.shape).toEqual(shape);
  const a = actual.dataSync();
  const b = expected instanceof tf.Tensor ? expected.dataSync() : expected.values;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}


/** `fixtures/positions-advanced.json`, written by scripts/fixtures/positions_advanced.py. */
export interface AdvancedPositionsFixture {
  headDim: number;
  maxSeqLength: number;
  /** `[1, 5, 2, headDim]` and `[1, 5, 1, headDim]`, float32-representable. */
  q: FixtureTensor;
  k: FixtureTensor;
  rope: Array<{
    type: 'linear' | 'dynamic' | 'yarn';
    factor: number;
    base: number;
    originalMaxSeqLength: number | null;
    /** YaRN only: HF's truncated correction range. */
    correctionRange?: [number, number];
    /** The angles of `positions` in a sequence of `length` positions; cos/sin are the first headDim/2 columns. */
    tables: Array<{ length: number; invFreq: number[]; attentionFactor: number; positions: number[]; cos: FixtureTensor; sin: FixtureTensor }>;
    /** One forward at positions offset .. offset + 4 (sequence length offset + 5). */
    rotations: Array<{ interleaved: boolean; offset: number; qRotated: FixtureTensor; kRotated: FixtureTensor }>;
  }>;
  /** The distances (key - query) every bucket case covers. */
  relativePositions: number[];
  buckets: Array<{ bidirectional: boolean; numBuckets: number; maxDistance: number; buckets: number[]; float64Differs: number[] }>;
  bias: Array<{
    bidirectional: boolean;
    numBuckets: number;
    maxDistance: number;
    numHeads: number;
    weight: FixtureTensor;
    cases: Array<{ queryLength: number; keyLength: number; offset: number; bias: FixtureTensor }>;
  }>;
}
