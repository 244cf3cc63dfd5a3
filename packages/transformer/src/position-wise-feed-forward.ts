/** The position-wise feed-forward sub-layer shared by encoder and decoder layers. */
import { dropout, tf } from '@mie/core';
import type { ActivationFunction, LinearLayer } from '@mie/layers';

/** `dropout(linear2(dropout(activation(linear1(x)))))`, as PyTorch's `_ff_block`. */
export function positionWiseFeedForward(
  x: tf.Tensor,
  linear1: LinearLayer,
  linear2: LinearLayer,
  activation: ActivationFunction,
  rate: number,
  training: boolean,
): tf.Tensor {
  return tf.tidy(() => {
    const hidden = dropout(activation(linear1.forward(x)), rate, training);
    return dropout(linear2.forward(hidden), rate, training);
  });
}
