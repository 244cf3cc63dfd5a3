/**
 * Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): how
 * much each output position draws on each input position through a stack of self-attention
 * layers, with the residual connection modelled as identity: `A_l = r I + (1 - r) mean_h P_l`,
 * rows renormalised, rollout `A_L ... A_1`.
 */
import { MieConfigError, MieShapeError, describeValue, tf, type Module } from '@mie/core';
import type { ActivationCache } from './activation-cache';

/**
 * The rollout `[b, q, q]` of per-layer self-attention patterns (`[b, h, q, q]` each, first layer
 * first). `residual` (default 0.5) weights the identity. The caller disposes the result.
 */
export function attentionRollout(patterns: readonly tf.Tensor[], { residual = 0.5 }: { residual?: number } = {}): tf.Tensor {
  const where = 'attentionRollout';
  if (!Array.isArray(patterns) || patterns.length === 0) throw new MieShapeError(`${where}: patterns must be a non-empty list of [batch, heads, q, q] tensors. Received: ${describeValue(patterns)}.`);
  if (typeof residual !== 'number' || !(residual >= 0 && residual <= 1)) throw new MieConfigError(`${where}: option "residual" must be a number in [0, 1]. Received: ${describeValue(residual)}.`);
  const [b, , q] = patterns[0].shape;
  patterns.forEach((p, i) => {
    if (!(p instanceof tf.Tensor) || p.isDisposed || p.rank !== 4 || p.shape[0] !== b || p.shape[2] !== q || p.shape[3] !== q) {
      throw new MieShapeError(`${where}: patterns[${i}] must be a self-attention pattern [${b}, heads, ${q}, ${q}] like patterns[0]. Received: ${describeValue(p)}.`);
    }
  });
  return tf.tidy(() => {
    const eye = tf.reshape(tf.eye(q as number), [1, q as number, q as number]);
    let rollout: tf.Tensor | null = null;
    for (const pattern of patterns) {
      const mixed = tf.add(tf.mul(eye, residual), tf.mul(tf.mean(pattern, 1), 1 - residual)); // [b, q, q]
      const layer = tf.div(mixed, tf.sum(mixed, -1, true));
      rollout = rollout ? tf.matMul(layer, rollout) : layer;
    }
    return rollout as tf.Tensor;
  });
}

/**
 * The attention patterns of one stack from a cache, first layer first: `kind` `'selfAttn'` or
 * `'crossAttn'` of `stack` (a layer list's path, such as `encoder.layers` or
 * `transformer.decoder.layers`). The tensors belong to the cache.
 */
export function attentionPatterns(model: Module, cache: ActivationCache, stack: string, kind: 'selfAttn' | 'crossAttn' = 'selfAttn'): tf.Tensor[] {
  const names = cache.names().filter((name) => name.startsWith(`${stack}.`) && name.endsWith(`.${kind}.hookPattern`) && /^\d+\./.test(name.slice(stack.length + 1)));
  if (names.length === 0) {
    throw new MieConfigError(`attentionPatterns: the cache holds no ${describeValue(`${stack}.N.${kind}.hookPattern`)} (record them with runWithCache on ${model.constructor.name}).`);
  }
  const layer = (name: string) => Number(name.slice(stack.length + 1).split('.')[0]);
  return names.sort((x, y) => layer(x) - layer(y)).map((name) => cache.get(name));
}
