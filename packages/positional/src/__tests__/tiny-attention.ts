/**
 * Test helper: a one-layer causal self-attention with position information only from a
 * RotaryPositionEncoding (on q and k) or a RelativePositionBias (on the scores), and a toy task
 * that needs positions: output the previous token's embedding. Not part of the published package
 * (and independent of @mie/attention, which depends on this package).
 * Legend: b batch, t sequence length, h heads, d head size, e width.
 */
import { Module, parameter, tf, xavierUniform } from '@mie/core';
import type { RelativePositionBias } from '../relative-position-bias';
import type { RotaryPositionEncoding } from '../rotary-position-encoding';

export class TinyAttention extends Module {
  readonly config = {};
  qProj: tf.Variable;
  kProj: tf.Variable;
  vProj: tf.Variable;

  constructor(
    readonly width: number,
    readonly numHeads: number,
    readonly rotary: RotaryPositionEncoding | null,
    readonly positions: RelativePositionBias | null,
  ) {
    super();
    this.qProj = parameter([width, width], (shape) => xavierUniform(shape));
    this.kProj = parameter([width, width], (shape) => xavierUniform(shape));
    this.vProj = parameter([width, width], (shape) => xavierUniform(shape));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, t, e] = x.shape as [number, number, number];
      const h = this.numHeads;
      const d = e / h;
      const project = (w: tf.Variable) => tf.reshape(tf.matMul(tf.reshape(x, [b * t, e]), w), [b, t, h, d]); // [b*t, e] -> [b, t, h, d]
      let q = project(this.qProj);
      let k = project(this.kProj);
      if (this.rotary) [q, k] = this.rotary.forward(q, k);
      const heads = (y: tf.Tensor) => tf.transpose(y, [0, 2, 1, 3]); // [b, t, h, d] -> [b, h, t, d]
      let scores = tf.div(tf.matMul(heads(q), heads(k), false, true), Math.sqrt(d)); // [b, h, t, t]
      if (this.positions) scores = tf.add(scores, this.positions.forward(t, t)); // + [1, h, t, t]
      const future = tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)); // 1 above the diagonal
      scores = tf.add(scores, tf.mul(future, -1e9));
      const context = tf.matMul(tf.softmax(scores), heads(project(this.vProj))); // [b, h, t, d]
      return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, t, e]); // [b, h, t, d] -> [b, t, e]
    });
  }
}

/**
 * Trains `model` for `steps` Adam steps on "copy the previous token" (one-hot tokens, so the
 * target is reachable by attending to position t - 1 alone); returns the first and last losses.
 * Without position information the best an attention can do is average the earlier tokens.
 * The loss skips position 0, which has no previous token. Checks that no tensors accumulate.
 */
export function trainCopyPrevious(model: TinyAttention, { steps, sequenceLength, batch = 8, learningRate = 0.1, seed = 3 }: { steps: number; sequenceLength: number; batch?: number; learningRate?: number; seed?: number }): { first: number; last: number; growth: number } {
  const width = model.width;
  // One-hot tokens of a vocabulary of width - 1, and a constant last feature (1), which lets queries
  // and keys have a part that does not depend on the token: the part positions act on.
  const tokens = tf.tidy(() => tf.cast(tf.randomUniform([batch, sequenceLength], 0, width - 1, 'float32', seed), 'int32'));
  const x = tf.tidy(() => tf.concat([tf.oneHot(tokens, width - 1), tf.ones([batch, sequenceLength, 1])], 2) as tf.Tensor3D); // [b, t, e]
  const target = tf.tidy(() => tf.slice(x, [0, 0, 0], [batch, sequenceLength - 1, width])); // tokens 0 .. t-2
  const optimizer = tf.train.adam(learningRate);
  const variables = model.trainableParameters();
  const step = () => {
    const loss = optimizer.minimize(
      () => {
        const y = tf.slice(model.forward(x), [0, 1, 0], [batch, sequenceLength - 1, width]); // outputs at 1 .. t-1
        return tf.mean(tf.square(tf.sub(y, target))) as tf.Scalar;
      },
      true,
      variables,
    ) as tf.Scalar;
    const value = loss.dataSync()[0];
    loss.dispose();
    return value;
  };
  const first = step(); // creates Adam's slots
  const afterFirst = tf.memory().numTensors;
  let last = first;
  for (let i = 1; i < steps; i++) last = step();
  const growth = tf.memory().numTensors - afterFirst;
  optimizer.dispose();
  tf.dispose([tokens, x, target]);
  return { first, last, growth };
}
