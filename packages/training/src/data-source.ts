import { MieConfigError, checkOptions, checkPositiveInteger, errorMessage } from '@mie/core';
import { bucketByLength } from './batching';
import { mixSeeds, seededPermutation } from './random-order';

/**
 * Where a {@link Trainer} gets its batches. `batches(epoch, start)` yields the batches of epoch
 * `epoch` (0-based) from batch number `start` on, and must be deterministic: the same epoch
 * gives the same batches in the same order, whatever `start` is, so that a resumed run continues
 * exactly where the interrupted one stopped. A plain function `(epoch) => Iterable<B>` works too
 * (the Trainer then skips `start` batches by iterating).
 */
export interface DataSource<B> {
  batches(epoch: number, start: number): Iterable<B>;
}

/** A data source object, or a function of the epoch returning that epoch's batches. */
export type DataInput<B> = DataSource<B> | ((epoch: number) => Iterable<B>);

/** Options of {@link ShuffledBatches}. */
export interface ShuffledBatchesOptions<B> {
  /** Number of examples. Required. */
  size: number;
  /** Examples per batch, unless `lengths` and `maxTokens` bucket them by length instead. */
  batchSize?: number;
  /** Lengths of the examples, with `maxTokens`: batches of similar length (see {@link bucketByLength}). */
  lengths?: readonly number[];
  /** Most padded tokens per batch, with `lengths`. */
  maxTokens?: number;
  /** Seed of the order; epoch `e` uses `mixSeeds(seed, e)`. Default `0`. */
  seed?: number;
  /** Whether to reshuffle every epoch. Default `true`. */
  shuffle?: boolean;
  /** Whether to drop a last batch smaller than `batchSize`. Default `false`. */
  dropLast?: boolean;
  /** Builds a batch (usually fresh tensors, which the Trainer disposes) from example indices. Required. */
  makeBatch: (indices: number[]) => B;
}

/**
 * A {@link DataSource} over `size` examples: each epoch a seeded permutation cut into batches
 * (or length buckets), each built by `makeBatch(indices)` only when reached, so skipping to a
 * resume position costs nothing.
 */
export class ShuffledBatches<B> implements DataSource<B> {
  readonly #options: Required<Pick<ShuffledBatchesOptions<B>, 'size' | 'seed' | 'shuffle' | 'dropLast'>> & ShuffledBatchesOptions<B>;
  #cachedEpoch = -1;
  #cachedGroups: number[][] = [];

  constructor(options: ShuffledBatchesOptions<B>) {
    const name = 'ShuffledBatches';
    const { size, batchSize, lengths, maxTokens, seed = 0, shuffle = true, dropLast = false, makeBatch } = checkOptions(name, options, [
      'size', 'batchSize', 'lengths', 'maxTokens', 'seed', 'shuffle', 'dropLast', 'makeBatch',
    ]);
    checkPositiveInteger(name, 'size', size);
    if (batchSize !== undefined) checkPositiveInteger(name, 'batchSize', batchSize);
    if (batchSize === undefined && (lengths === undefined || maxTokens === undefined)) {
      throw new MieConfigError(`${name}: give batchSize, or lengths with maxTokens.`);
    }
    if (lengths !== undefined && lengths.length !== size) {
      throw new MieConfigError(errorMessage(name, 'option "lengths"', `must have one entry per example (${size})`, lengths.length));
    }
    if (typeof makeBatch !== 'function') throw new MieConfigError(errorMessage(name, 'option "makeBatch"', 'must be a function', makeBatch));
    this.#options = { size, batchSize, lengths, maxTokens, seed, shuffle, dropLast, makeBatch };
  }

  /** The example indices of every batch of `epoch`, in order. */
  groups(epoch: number): number[][] {
    if (epoch === this.#cachedEpoch) return this.#cachedGroups;
    const { size, batchSize, lengths, maxTokens, seed, shuffle, dropLast } = this.#options;
    const epochSeed = mixSeeds(seed, epoch);
    let groups: number[][];
    if (lengths !== undefined && maxTokens !== undefined) {
      groups = bucketByLength(lengths, { maxTokens, batchSize, seed: epochSeed, shuffle });
    } else {
      const order = shuffle ? seededPermutation(size, epochSeed) : Array.from({ length: size }, (_, i) => i);
      groups = [];
      for (let i = 0; i < size; i += batchSize!) groups.push(order.slice(i, i + batchSize!));
      if (dropLast && groups.length > 0 && groups[groups.length - 1].length < batchSize!) groups.pop();
    }
    this.#cachedEpoch = epoch;
    this.#cachedGroups = groups;
    return groups;
  }

  /** Number of batches in `epoch`. */
  numBatches(epoch = 0): number {
    return this.groups(epoch).length;
  }

  /** Yields the batches of `epoch` from number `start` on, each built when reached. */
  *batches(epoch: number, start = 0): Generator<B> {
    const groups = this.groups(epoch);
    for (let i = start; i < groups.length; i++) yield this.#options.makeBatch(groups[i]);
  }
}
