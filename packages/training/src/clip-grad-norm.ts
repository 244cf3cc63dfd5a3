import { MieConfigError, errorMessage, fusedKernelAvailable, readSync, tf } from '@mie/core';
import { SUM_OF_SQUARES_KERNEL, fusedSumOfSquares } from './fused-sum-of-squares';
import type { NamedGradients } from './gradients';

/** What {@link clipGradNorm} returns. */
export interface ClippedGradients {
  /** The clipped gradients, new tensors under the same names (the caller disposes them). */
  grads: NamedGradients;
  /** The global L2 norm of the gradients before clipping. */
  totalNorm: number;
}

/**
 * The sum of `terms`, added pairwise (log2(n) rounds of two-input adds). Not `tf.addN`:
 * tfjs-backend-webgpu compiles it as one shader with a storage buffer per input, and a model's
 * hundred gradients exceed the 8 buffers a WebGPU shader stage may have.
 */
function sumPairwise(terms: tf.Tensor[]): tf.Tensor {
  let level = terms;
  while (level.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
    level = next;
  }
  return level[0];
}

/** Checks `maxNorm`; the clipped gradients and the norm as a scalar tensor, with no read back. */
export function clipGradNormTensors(grads: NamedGradients, maxNorm: number, caller = 'clipGradNorm'): { grads: NamedGradients; norm: tf.Scalar } {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0)) {
    throw new MieConfigError(errorMessage(caller, 'maxNorm', 'must be a number > 0', maxNorm));
  }
  const names = Object.keys(grads);
  if (names.length === 0) return { grads: {}, norm: tf.scalar(0) };
  return tf.tidy(() => {
    const terms = names.map((name) => grads[name]);
    // One kernel on cpu and wasm (fused-sum-of-squares.ts); a square, a sum and an add per
    // gradient elsewhere.
    const squares = fusedKernelAvailable(SUM_OF_SQUARES_KERNEL) && terms.every((t) => t.dtype === 'float32')
      ? fusedSumOfSquares(terms)
      : sumPairwise(terms.map((t) => tf.sum(tf.square(t))));
    const norm = tf.sqrt(squares) as tf.Scalar;
    // Computed in float32, as PyTorch does: max_norm / (total_norm + 1e-6), clamped at 1. A
    // coefficient of exactly 1 leaves every value as it is.
    const scale = tf.minimum(tf.div(tf.scalar(maxNorm), tf.add(norm, 1e-6)), 1);
    const clipped: NamedGradients = {};
    for (const name of names) clipped[name] = tf.mul(grads[name], scale);
    return { grads: clipped, norm };
  });
}

/**
 * Global gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_(params, maxNorm)`: the L2
 * norm of all gradients together, `total = sqrt(sum_g ||g||^2)`, and every gradient scaled by
 * `min(1, maxNorm / (total + 1e-6))`. Returns new tensors and leaves `grads` untouched (dispose
 * them yourself). An infinite or NaN norm is returned as is, and the gradients become NaN, as in PyTorch.
 *
 * Reads the norm back synchronously; on webgpu outside a browser (no synchronous GPU read), use
 * {@link clipGradNormAsync}.
 */
export function clipGradNorm(grads: NamedGradients, maxNorm: number): ClippedGradients {
  const result = clipGradNormTensors(grads, maxNorm);
  try {
    return { grads: result.grads, totalNorm: readSync(result.norm, 'clipGradNorm', 'await clipGradNormAsync(grads, maxNorm)')[0] };
  } catch (error) {
    tf.dispose(Object.values(result.grads));
    throw error;
  } finally {
    result.norm.dispose();
  }
}

/** {@link clipGradNorm} reading the norm back asynchronously, for every backend. */
export async function clipGradNormAsync(grads: NamedGradients, maxNorm: number): Promise<ClippedGradients> {
  const result = clipGradNormTensors(grads, maxNorm, 'clipGradNormAsync');
  try {
    return { grads: result.grads, totalNorm: (await result.norm.data())[0] };
  } finally {
    result.norm.dispose();
  }
}
