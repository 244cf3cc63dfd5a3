import { MieConfigError, errorMessage, tf } from '@mie/core';
import type { NamedGradients } from './gradients';

/** What {@link clipGradNorm} returns. */
export interface ClippedGradients {
  /** The clipped gradients, new tensors under the same names (the caller disposes them). */
  grads: NamedGradients;
  /** The global L2 norm of the gradients before clipping. */
  totalNorm: number;
}

/**
 * Global gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_(params, maxNorm)`: the L2
 * norm of all gradients together, `total = sqrt(sum_g ||g||^2)`, and every gradient scaled by
 * `min(1, maxNorm / (total + 1e-6))`. Returns new tensors and leaves `grads` untouched (dispose
 * them yourself). An infinite or NaN norm is returned as is, and the gradients become NaN, as in PyTorch.
 */
export function clipGradNorm(grads: NamedGradients, maxNorm: number): ClippedGradients {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0)) {
    throw new MieConfigError(errorMessage('clipGradNorm', 'maxNorm', 'must be a number > 0', maxNorm));
  }
  const names = Object.keys(grads);
  if (names.length === 0) return { grads: {}, totalNorm: 0 };
  const norm = tf.tidy(() => tf.sqrt(tf.addN(names.map((name) => tf.sum(tf.square(grads[name]))))));
  const totalNorm = norm.dataSync()[0];
  const coefficient = Math.min(1, maxNorm / (totalNorm + 1e-6));
  const clipped: NamedGradients = {};
  tf.tidy(() => {
    // Computed in float32, as PyTorch does: max_norm / (total_norm + 1e-6), clamped at 1.
    const scale = tf.minimum(tf.div(tf.scalar(maxNorm), tf.add(norm, 1e-6)), 1);
    for (const name of names) clipped[name] = tf.keep(coefficient === 1 ? tf.clone(grads[name]) : tf.mul(grads[name], scale));
  });
  norm.dispose();
  return { grads: clipped, totalNorm };
}
