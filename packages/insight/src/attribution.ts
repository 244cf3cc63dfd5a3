/**
 * Direct logit attribution (Elhage et al. 2021, "A Mathematical Framework for Transformer
 * Circuits"): how much each attention head writes, directly, into one token's logit. A head's
 * output at a position is its per-head context `z_h` (hookZ) through its columns of `outProj`;
 * the final norm is linearised at the run's own scale (as TransformerLens's `apply_ln_to_stack`):
 * `dla(c) = ((c - mean(c)) / sigma) * w . U[token]`, with sigma the final residual's standard
 * deviation, w the norm's weight and U the unembedding.
 */
import { MieConfigError, MieShapeError, describeValue, tf, type Module } from '@mie/core';
import type { ActivationCache } from './activation-cache';
import { lensTarget } from './lens-target';

/** One head's direct contribution to the logit. */
export interface HeadAttribution {
  /** The attention module (`transformer.decoder.layers.2.crossAttn`). */
  module: string;
  layer: number;
  head: number;
  value: number;
}

/** Result of {@link directLogitAttribution}. */
export interface LogitAttribution {
  /** Per layer and head, in model order. */
  heads: HeadAttribution[];
  /** `dla` of the whole final residual stream: the logit less the norm's bias and the output bias (what the components share out). */
  total: number;
  /** What the heads do not account for: the embeddings, the attention output biases and the feed-forward blocks. */
  rest: number;
}

/**
 * Direct logit attribution of every decoder attention head (self- and cross-attention) to the
 * logit of `tokenId` at `position` (batch row `batch`), from a cache holding the heads' `hookZ`
 * and the last layer's `hookResidPost`. Needs a pre-norm model (a final norm after the last layer:
 * in post-norm, norms between layers break the linear decomposition).
 */
export function directLogitAttribution(model: Module, cache: ActivationCache, { tokenId, position, batch = 0 }: { tokenId: number; position: number; batch?: number }): LogitAttribution {
  const where = 'directLogitAttribution';
  const target = lensTarget(model, where);
  const norm = target.finalNorm;
  if (!norm) throw new MieConfigError(`${where}: the model is post-norm (no final norm): its layers' norms make the logit a non-linear function of each head's output. Use a pre-norm model (normFirst: true).`);
  const last = cache.get(`${target.layersPath}.${target.numLayers - 1}.hookResidPost`); // [b, t, d]
  const [batchSize, length] = last.shape as [number, number, number];
  const checkIndex = (name: string, value: unknown, size: number) => {
    if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) >= size) {
      throw new MieShapeError(`${where}: option "${name}" must be an integer in [0, ${size}). Received: ${describeValue(value)}.`);
    }
  };
  checkIndex('batch', batch, batchSize);
  checkIndex('position', position, length);
  const d = target.dModel;
  const unembedding = tf.tidy(() => {
    // U[token] for any projection (tied or not): project(I) - project(0), column `token`.
    const logits = tf.sub(target.project(tf.reshape(tf.eye(d), [1, d, d])), target.project(tf.zeros([1, 1, d]))); // [1, d, V]
    const vocab = logits.shape[2] as number;
    checkIndex('tokenId', tokenId, vocab);
    return tf.reshape(tf.slice(logits, [0, 0, tokenId], [1, d, 1]), [d]);
  });
  try {
    return tf.tidy(() => {
      const residual = tf.reshape(tf.slice(last, [batch, position, 0], [1, 1, d]), [d]);
      const sigma = tf.sqrt(tf.add(tf.moments(residual).variance, norm.config.eps));
      const direction = tf.mul(norm.weight ?? tf.ones([d]), unembedding); // w * U[token]
      const dla = (c: tf.Tensor) => tf.sum(tf.mul(tf.div(tf.sub(c, tf.mean(c, -1, true)), sigma), direction), -1); // [..., d] -> [...]
      const heads: HeadAttribution[] = [];
      let headSum: tf.Tensor = tf.zeros([d]);
      target.attention.forEach((modules, layer) => {
        for (const [field, attention] of modules) {
          const module = `${target.layersPath}.${layer}.${field}`;
          const z = cache.get(`${module}.hookZ`); // [b, h, q, dh]
          const { numHeads } = attention.config;
          const headDim = d / numHeads;
          const zAt = tf.reshape(tf.slice(z, [batch, 0, position, 0], [1, numHeads, 1, headDim]), [numHeads, 1, headDim]); // [h, 1, dh]
          const weight = tf.reshape(tf.transpose(attention.outProj.weight), [numHeads, headDim, d]); // W_O^T rows per head: [h, dh, d]
          const outputs = tf.reshape(tf.matMul(zAt, weight), [numHeads, d]); // [h, d]
          headSum = tf.add(headSum, tf.sum(outputs, 0));
          const values = dla(outputs).dataSync();
          for (let head = 0; head < numHeads; head++) heads.push({ module, layer, head, value: values[head] });
        }
      });
      const total = dla(residual).dataSync()[0];
      const rest = dla(tf.sub(residual, headSum)).dataSync()[0];
      return { heads, total, rest } as unknown as tf.Tensor;
    }) as unknown as LogitAttribution;
  } finally {
    unembedding.dispose();
  }
}
