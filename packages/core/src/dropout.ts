import { nextSeed } from './random';
import { tf } from './tfjs';

/**
 * Inverted dropout (Srivastava et al. 2014), as `torch.nn.functional.dropout`: in training mode
 * zeroes each element with probability `rate` and scales the rest by 1 / (1 - rate); otherwise
 * (or with rate 0) returns `x` itself. Masks are seeded from the global seed (`setSeed`).
 */
export function dropout(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
  if (!training || rate === 0) return x;
  if (rate >= 1) return tf.zerosLike(x);
  return tf.dropout(x, rate, undefined, nextSeed());
}
