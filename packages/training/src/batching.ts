import { MieConfigError, MieShapeError, checkOptions, checkPositiveInteger, errorMessage, tf } from '@mie/core';
import { mixSeeds, seededPermutation } from './random-order';

/** What {@link padBatch} returns; the caller disposes both tensors. */
export interface PaddedBatch {
  /** int32 `[batch, length]`, each sequence followed by `padId`. */
  ids: tf.Tensor2D;
  /** int32 `[batch, length]`, 1 for real tokens and 0 for padding (MIE's `keyPaddingMask` polarity). */
  mask: tf.Tensor2D;
}

/** Options of {@link padBatch}. */
export interface PadBatchOptions {
  /** Pad to this length instead of the longest sequence's; a longer sequence is an error. */
  length?: number;
}

/**
 * Pads token-id sequences on the right to one length: `ids` and `mask`, both int32
 * `[batch, length]`. `padId` defaults to 0 (the `<pad>` id of a {@link Vocabulary}).
 */
export function padBatch(sequences: ReadonlyArray<ArrayLike<number>>, padId = 0, options: PadBatchOptions = {}): PaddedBatch {
  const name = 'padBatch';
  const { length } = checkOptions(name, options, ['length']);
  if (!Array.isArray(sequences) || sequences.length === 0) {
    throw new MieShapeError(errorMessage(name, 'sequences', 'must be a non-empty array of token-id arrays', sequences));
  }
  if (!Number.isSafeInteger(padId)) throw new MieConfigError(errorMessage(name, 'padId', 'must be an integer', padId));
  const longest = sequences.reduce((most, s) => Math.max(most, s.length), 0); // no spread: batches may be huge
  const width = length === undefined ? longest : checkPositiveInteger(name, 'length', length);
  if (longest > width) {
    throw new MieShapeError(`${name}: a sequence has ${longest} tokens, more than length ${width}.`);
  }
  const ids = new Int32Array(sequences.length * width).fill(padId);
  const mask = new Int32Array(sequences.length * width);
  sequences.forEach((sequence, row) => {
    for (let i = 0; i < sequence.length; i++) {
      const id = sequence[i];
      if (!Number.isSafeInteger(id)) throw new MieShapeError(`${name}: sequence ${row} holds ${id} at position ${i}, not an integer token id.`);
      ids[row * width + i] = id;
      mask[row * width + i] = 1;
    }
  });
  return { ids: tf.tensor2d(ids, [sequences.length, width], 'int32'), mask: tf.tensor2d(mask, [sequences.length, width], 'int32') };
}

/** Options of {@link bucketByLength}. */
export interface BucketByLengthOptions {
  /** Most padded tokens per batch: `batch size x longest length in the batch`. At least one of `maxTokens`, `batchSize`. */
  maxTokens?: number;
  /** Most sequences per batch. */
  batchSize?: number;
  /** Seed of the shuffling. Default `0`. */
  seed?: number;
  /** Whether to shuffle the order of the batches (and of equal-length sequences). Default `true`. */
  shuffle?: boolean;
}

/**
 * Groups sequences of similar length into batches, to waste little padding: sorts the indices by
 * length (ties broken by a seeded shuffle), cuts them into consecutive batches that respect
 * `maxTokens` (counting padding) and `batchSize`, then shuffles the batch order with the seed.
 * Returns the batches as arrays of indices into `lengths`; the same seed gives the same batches.
 * Pass `mixSeeds(seed, epoch)` as the seed for a new order each epoch. A sequence longer than
 * `maxTokens` gets a batch of its own.
 */
export function bucketByLength(lengths: readonly number[], options: BucketByLengthOptions): number[][] {
  const name = 'bucketByLength';
  const { maxTokens, batchSize, seed = 0, shuffle = true } = checkOptions(name, options, ['maxTokens', 'batchSize', 'seed', 'shuffle']);
  if (maxTokens === undefined && batchSize === undefined) {
    throw new MieConfigError(`${name}: give maxTokens, batchSize or both. Received: neither.`);
  }
  if (maxTokens !== undefined) checkPositiveInteger(name, 'maxTokens', maxTokens);
  if (batchSize !== undefined) checkPositiveInteger(name, 'batchSize', batchSize);
  lengths.forEach((length, i) => {
    if (!Number.isSafeInteger(length) || length < 0) throw new MieShapeError(`${name}: lengths[${i}] must be an integer >= 0. Received: ${length}.`);
  });
  const tieOrder = shuffle ? seededPermutation(lengths.length, mixSeeds(seed, 1)) : lengths.map((_, i) => i);
  const rank = new Array<number>(lengths.length);
  tieOrder.forEach((index, position) => (rank[index] = position));
  const sorted = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || rank[a] - rank[b]);
  const batches: number[][] = [];
  let current: number[] = [];
  let longest = 0;
  for (const index of sorted) {
    const nextLongest = Math.max(longest, lengths[index]);
    const tooMany = batchSize !== undefined && current.length + 1 > batchSize;
    const tooLong = maxTokens !== undefined && (current.length + 1) * nextLongest > maxTokens;
    if (current.length > 0 && (tooMany || tooLong)) {
      batches.push(current);
      current = [];
      longest = 0;
    }
    current.push(index);
    longest = Math.max(longest, lengths[index]);
  }
  if (current.length > 0) batches.push(current);
  if (!shuffle) return batches;
  return seededPermutation(batches.length, mixSeeds(seed, 2)).map((i) => batches[i]);
}
