import { MieShapeError, tf } from '@mie/core';
import type { NamedGradients } from './gradients';

/**
 * Sums gradients over micro-batches and averages them, so that `k` micro-batches of `n` examples
 * with a mean loss give the gradient of one batch of `k * n` examples. `add` copies what it
 * needs (the caller still disposes what it passed); `average()` returns new tensors.
 *
 * ```ts
 * const accumulator = new GradientAccumulator();
 * for (const batch of microBatches) {
 *   const { value, grads } = valueAndGradients(model, () => loss(model, batch));
 *   accumulator.add(grads);
 *   tf.dispose([value, ...Object.values(grads)]);
 * }
 * optimizer.step(accumulator.average());
 * ```
 */
export class GradientAccumulator {
  #sums: NamedGradients = {};
  #count = 0;

  /** Number of gradient sets added since the last `reset`. */
  get count(): number {
    return this.#count;
  }

  /** Adds one micro-batch's gradients. Names missing here but seen before count as zero. */
  add(grads: NamedGradients): void {
    for (const [name, grad] of Object.entries(grads)) {
      const previous = this.#sums[name];
      if (previous !== undefined && !tf.util.arraysEqual(previous.shape, grad.shape)) {
        throw new MieShapeError(`GradientAccumulator.add: gradient "${name}" has shape [${grad.shape}], expected [${previous.shape}].`);
      }
      this.#sums[name] = tf.tidy(() => (previous === undefined ? tf.clone(grad) : tf.add(previous, grad)));
      previous?.dispose();
    }
    this.#count++;
  }

  /** The sums divided by `count`, as new tensors (the caller disposes them). Empty before any `add`. */
  average(): NamedGradients {
    const result: NamedGradients = {};
    for (const [name, sum] of Object.entries(this.#sums)) {
      // One micro-batch (the usual case): a copy (no kernel pass on cpu and wasm) instead of a division by 1.
      result[name] = tf.tidy(() => (this.#count === 1 ? tf.clone(sum) : tf.div(sum, this.#count)));
    }
    return result;
  }

  /** Forgets every sum, ready for the next optimizer step. */
  reset(): void {
    tf.dispose(Object.values(this.#sums));
    this.#sums = {};
    this.#count = 0;
  }

  /** Frees the sums (same as `reset`). */
  dispose(): void {
    this.reset();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
