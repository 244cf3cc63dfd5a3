import fc from 'fast-check';
import { MieShapeError, setBackend, tf } from '@mie/core';
import { bucketByLength, padBatch } from './batching';
import { ShuffledBatches } from './data-source';
import { mixSeeds, seededPermutation } from './random-order';

describe('padBatch', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('pads on the right and marks real tokens with 1', () => {
    const { ids, mask } = padBatch([[5, 6, 7], [8]], 0);
    expect(ids.dtype).toBe('int32');
    expect(ids.arraySync()).toEqual([[5, 6, 7], [8, 0, 0]]);
    expect(mask.arraySync()).toEqual([[1, 1, 1], [1, 0, 0]]);
    tf.dispose([ids, mask]);
    const fixed = padBatch([[1]], 9, { length: 3 });
    expect(fixed.ids.arraySync()).toEqual([[1, 9, 9]]);
    tf.dispose([fixed.ids, fixed.mask]);
    expect(() => padBatch([[1, 2]], 0, { length: 1 })).toThrow(MieShapeError);
    expect(() => padBatch([], 0)).toThrow(MieShapeError);
  });
});

describe('padBatch on a huge batch', () => {
  it('pads 300,000 sequences (a spread of their lengths overflowed the stack)', () => {
    const sequences = Array.from({ length: 300_000 }, (_, i) => (i === 7 ? [1, 2, 3] : [4]));
    const { ids, mask } = padBatch(sequences);
    expect(ids.shape).toEqual([300_000, 3]);
    expect(Array.from(ids.dataSync().subarray(21, 24))).toEqual([1, 2, 3]);
    tf.dispose([ids, mask]);
  });
});

describe('bucketByLength', () => {
  it('covers every index once, respects the limits, and is deterministic in the seed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 30, max: 120 }), fc.nat(), (lengths, maxTokens, seed) => {
        const batches = bucketByLength(lengths, { maxTokens, batchSize: 8, seed });
        expect(batches.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
        for (const batch of batches) {
          expect(batch.length).toBeLessThanOrEqual(8);
          expect(batch.length * Math.max(...batch.map((i) => lengths[i]))).toBeLessThanOrEqual(maxTokens);
        }
        expect(bucketByLength(lengths, { maxTokens, batchSize: 8, seed })).toEqual(batches);
      }),
      { numRuns: 50 },
    );
  });

  it('groups similar lengths', () => {
    const lengths = [1, 10, 2, 9, 1, 10, 2, 9];
    const batches = bucketByLength(lengths, { batchSize: 2, shuffle: false });
    expect(batches.map((b) => b.map((i) => lengths[i]))).toEqual([[1, 1], [2, 2], [9, 9], [10, 10]]);
    expect(() => bucketByLength(lengths, {})).toThrow(/maxTokens, batchSize or both/);
  });
});

describe('ShuffledBatches and seeded order', () => {
  it('gives each epoch its own seeded order, the same on every call, and starts anywhere', () => {
    const data = new ShuffledBatches({ size: 10, batchSize: 3, seed: 7, makeBatch: (indices) => indices });
    const epoch0 = [...data.batches(0, 0)];
    expect(epoch0.map((b) => b.length)).toEqual([3, 3, 3, 1]);
    expect(epoch0.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...data.batches(0, 2)]).toEqual(epoch0.slice(2));
    expect([...data.batches(1, 0)]).not.toEqual(epoch0);
    const again = new ShuffledBatches({ size: 10, batchSize: 3, seed: 7, dropLast: true, makeBatch: (indices) => indices });
    expect([...again.batches(0, 0)]).toEqual(epoch0.slice(0, 3));
    expect(seededPermutation(5, mixSeeds(1, 2))).toEqual(seededPermutation(5, mixSeeds(1, 2)));
    expect(mixSeeds(1, 2)).not.toBe(mixSeeds(2, 1));
  });

  it('buckets by length when given lengths and maxTokens', () => {
    const lengths = [3, 3, 8, 8, 3, 8];
    const data = new ShuffledBatches({ size: 6, lengths, maxTokens: 16, makeBatch: (indices) => indices.map((i) => lengths[i]) });
    for (const batch of data.batches(0, 0)) expect(new Set(batch).size).toBe(1);
  });
});
