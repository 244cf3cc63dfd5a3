/**
 * Head bookkeeping shared by the multi-head attention modules.
 *
 * Legend: b batch, t length, h heads, d head size, e = h x d.
 */
import { MieShapeError, describeValue, tf } from '@mie/core';

/** `[b, t, h*d] -> [b, t, h, d]` (the layout rotary embeddings take). */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor {
  const [b, t, e] = x.shape;
  return tf.reshape(x, [b, t, heads, e / heads]);
}

/** `[b, t, h, d] -> [b, h, t, d]`. */
export function headsFirst(x: tf.Tensor): tf.Tensor {
  return tf.transpose(x, [0, 2, 1, 3]);
}

/** `[b, h, t, d] -> [b, t, h*d]`. */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [b, h, t, d] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, h * d]);
}

/** Throws a `MieShapeError` unless `x` is a live float32 `[batch, seq, width]` tensor. */
export function checkSequence(module: string, argument: string, x: unknown, width: number, widthName: string): tf.Tensor {
  if (!(x instanceof tf.Tensor) || x.isDisposed || x.rank !== 3 || x.dtype !== 'float32' || x.shape[2] !== width) {
    throw new MieShapeError(
      `${module}: ${argument} must be a float32 tensor [batch, seq, ${widthName} = ${width}]. Received: ${describeValue(x)}.`,
    );
  }
  return x;
}
