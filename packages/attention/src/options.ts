/** Checks specific to attention modules (the generic ones live in @mie/core). */
import { MieConfigError, MieShapeError, checkAllocation, describeValue, errorMessage, float32Bytes, type tf } from '@mie/core';
import { KeyValueCache } from './kv-cache';

/** `heads` must divide `width` (each head gets `width / heads` features). */
export function checkHeadCount(module: string, widthName: string, width: number, headsName: string, heads: number): void {
  if (width % heads !== 0) {
    throw new MieConfigError(errorMessage(module, `option "${widthName}"`, `must be divisible by ${headsName} (${heads})`, width));
  }
}

/** Query, key and value must share the batch size, and key and value the length. */
export function checkSameBatch(module: string, query: tf.Tensor, key: tf.Tensor, value: tf.Tensor): void {
  if (query.shape[0] !== key.shape[0] || key.shape[0] !== value.shape[0]) {
    throw new MieShapeError(`${module}: query, key and value must have the same batch size. Received: [${query.shape}], [${key.shape}], [${value.shape}].`);
  }
  if (key.shape[1] !== value.shape[1]) {
    throw new MieShapeError(`${module}: key and value must have the same length. Received: ${key.shape[1]} and ${value.shape[1]}.`);
  }
}

/**
 * Refuses (MieResourceError) an attention call whose tensors would not fit in the backend's
 * memory, before its projections run: the scores `[b, h, q, k]` (several live copies through
 * softmax and its gradient) and the projected queries, keys, values and outputs `[b, q|k, width]`.
 */
export function checkAttentionMemory(module: string, batch: number, heads: number, queryLength: number, keyLength: number, width: number): void {
  const scores = 4 * float32Bytes(batch, heads, queryLength, keyLength);
  const projections = 3 * float32Bytes(batch, queryLength + 2 * keyLength, width);
  checkAllocation(module, `attention over batch ${batch} (${heads} heads, ${queryLength} queries x ${keyLength} keys)`, scores + projections);
}

/** `cache`, when given, must be a {@link KeyValueCache}. */
export function checkCache(module: string, cache: unknown): void {
  if (cache !== undefined && !(cache instanceof KeyValueCache)) {
    throw new MieShapeError(`${module}: cache must be a KeyValueCache (new KeyValueCache()). Received: ${describeValue(cache)}.`);
  }
}

/** Positions `offset .. offset + length - 1` must fit in `maxSeqLength`. */
export function checkPositions(module: string, offset: number, length: number, maxSeqLength: number): void {
  if (offset + length > maxSeqLength) {
    throw new MieShapeError(
      `${module}: positions up to ${offset + length} (cache ${offset} + sequence ${length}) exceed maxSeqLength ${maxSeqLength}.`,
    );
  }
}
