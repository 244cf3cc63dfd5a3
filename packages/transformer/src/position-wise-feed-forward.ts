/** The position-wise feed-forward sub-layer shared by encoder and decoder layers. */
import { dropout, tf, type HookPointRunner } from '@mie/core';
import type { ActivationFunction, LinearLayer } from '@mie/layers';

/**
 * `dropout(linear2(dropout(activation(linear1(x)))))`, as PyTorch's `_ff_block`; hook points
 * `hookPre` (`linear1(x)`) and `hookPost` (after the activation), `[b, t, dFf]`.
 */
export function positionWiseFeedForward(
  x: tf.Tensor,
  linear1: LinearLayer,
  linear2: LinearLayer,
  activation: ActivationFunction,
  rate: number,
  training: boolean,
  hooks: HookPointRunner | null = null,
): tf.Tensor {
  return tf.tidy(() => {
    let pre = linear1.forward(x); // [b, t, dFf]
    if (hooks) pre = hooks('hookPre', pre);
    let post = activation(pre);
    if (hooks) post = hooks('hookPost', post);
    return dropout(linear2.forward(dropout(post, rate, training)), rate, training);
  });
}
