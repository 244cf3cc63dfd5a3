/**
 * Key/value cache for incremental decoding (API.md section 2). The caller creates one per
 * attention layer and passes the same object to every step: each `forward(..., { cache })`
 * appends that step's keys and values in place (freeing the tensors it replaces) and attends over
 * every cached position. Positions (rotary, ALiBi, causal masks) continue from `cache.length`.
 *
 * Keys and values are stored after projection, head split and rotary: `[batch, kvHeads, length,
 * headDim]`, so a cache costs `2 x batch x kvHeads x headDim x 4` bytes per cached token.
 */
import { MieShapeError, tf } from '@mie/core';

export class KeyValueCache {
  #keys: tf.Tensor | null = null;
  #values: tf.Tensor | null = null;

  /** Number of cached positions. */
  get length(): number {
    return this.#keys === null ? 0 : (this.#keys.shape[2] as number);
  }

  /** Cached keys `[batch, kvHeads, length, headDim]`, or `null` when empty. Owned by the cache. */
  get keys(): tf.Tensor | null {
    return this.#keys;
  }

  /** Cached values `[batch, kvHeads, length, headDim]`, or `null` when empty. Owned by the cache. */
  get values(): tf.Tensor | null {
    return this.#values;
  }

  /**
   * Appends `keys`/`values` (`[batch, kvHeads, steps, headDim]`) and returns everything cached.
   * The returned tensors belong to the cache (they survive the caller's `tf.tidy`); the previous
   * ones are freed. Called by attention modules; `module` names the caller in errors.
   */
  append(keys: tf.Tensor, values: tf.Tensor, module = 'KeyValueCache'): { keys: tf.Tensor; values: tf.Tensor } {
    if (this.#keys !== null && this.#values !== null) {
      const [b, h, , d] = this.#keys.shape;
      if (keys.shape[0] !== b || keys.shape[1] !== h || keys.shape[3] !== d) {
        throw new MieShapeError(
          `${module}: cache holds keys [batch ${b}, heads ${h}, ·, headDim ${d}], but this step brings [${keys.shape.join(', ')}]; use one cache per layer and per batch.`,
        );
      }
      const nextKeys = tf.keep(tf.concat([this.#keys, keys], 2));
      const nextValues = tf.keep(tf.concat([this.#values, values], 2));
      this.#keys.dispose();
      this.#values.dispose();
      this.#keys = nextKeys;
      this.#values = nextValues;
    } else {
      // Copies: the step's tensors belong to the caller's tidy.
      this.#keys = tf.keep(tf.clone(keys));
      this.#values = tf.keep(tf.clone(values));
    }
    return { keys: this.#keys, values: this.#values };
  }

  /**
   * Reorders the batch (beam search): row `i` becomes old row `indices[i]`. `indices` may repeat
   * rows and change the batch size.
   */
  reorder(indices: tf.Tensor | number[]): void {
    if (this.#keys === null || this.#values === null) return;
    const index = indices instanceof tf.Tensor ? indices : tf.tensor1d(indices, 'int32');
    const keys = tf.keep(tf.gather(this.#keys, index));
    const values = tf.keep(tf.gather(this.#values, index));
    if (!(indices instanceof tf.Tensor)) index.dispose();
    this.#keys.dispose();
    this.#values.dispose();
    this.#keys = keys;
    this.#values = values;
  }

  /** Frees the cached tensors; the cache is empty (and reusable) afterwards. */
  dispose(): void {
    this.#keys?.dispose();
    this.#values?.dispose();
    this.#keys = null;
    this.#values = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
