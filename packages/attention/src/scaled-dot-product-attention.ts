/**
 * Scaled dot-product attention (Vaswani et al. 2017, "Attention Is All You Need", eq. 1):
 * `softmax(q kᵀ / sqrt(d) + bias, blocked -> -inf) v`.
 *
 * Legend: b batch, h heads, q query length, k key length, d head size.
 */
import { checkAllocation, checkCallOptions, float32Bytes, MieConfigError, MieShapeError, Module, describeValue, dropout, errorMessage, tf, type HookPointRunner } from '@mie/core';
import { BLOCKED_SCORE, maskedSoftmax } from './masks';

/** Inputs of the functional attention core shared by every attention module. */
export interface AttentionCoreOptions {
  /** Bool or float32 (1 = may attend, 0 = blocked), broadcastable to the scores `[..., q, k]`; `null` = no mask. */
  allowed?: tf.Tensor | null;
  /** Added to the scaled scores (ALiBi), broadcastable to `[..., q, k]`. */
  bias?: tf.Tensor | null;
  /** Dropout rate on the attention weights, applied when `training`. */
  dropout?: number;
  training?: boolean;
  /** The module computing, for error messages. */
  module?: string;
  /**
   * Hook points (`hookScores`, `hookPattern`): `run` is the module's runner; `toHeads` / `fromHeads`
   * map the scores' layout to `[b, h, q, k]` and back (grouped heads fold queries). Absent: none.
   */
  hooks?: { run: HookPointRunner; toHeads: (t: tf.Tensor) => tf.Tensor; fromHeads: (t: tf.Tensor) => tf.Tensor } | null;
}

/** Live copies of the scores a forward and backward pass hold at once (scores, softmax, weights, gradients). */
const SCORE_COPIES = 4;

/**
 * The attention computation on `q [..., q, d]`, `k [..., k, d]`, `v [..., k, dv]`:
 * returns `[context [..., q, dv], weights [..., q, k]]`. Fully blocked query rows get zero
 * weights and a zero context.
 */
export function scaledDotProductAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  { allowed = null, bias = null, dropout: rate = 0, training = false, module = 'scaledDotProductAttention', hooks = null }: AttentionCoreOptions = {},
): [tf.Tensor, tf.Tensor] {
  // The scores are the largest tensors of a transformer: refuse what would not fit (a huge batch)
  // before the backend is asked for it.
  const scoreShape = [...q.shape.slice(0, -1), k.shape[k.rank - 2]];
  checkAllocation(module, `attention scores [${scoreShape.join(', ')}]`, SCORE_COPIES * float32Bytes(...scoreShape));
  return tf.tidy(() => {
    const headDim = q.shape[q.rank - 1];
    let scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(headDim)); // [.., q, d] x [.., k, d]ᵀ -> [.., q, k]
    if (bias) scores = tf.add(scores, bias);
    if (hooks) {
      // What softmax sees: blocked scores at BLOCKED_SCORE (-1e30), as listeners should read them.
      const masked = allowed ? tf.add(scores, tf.mul(tf.sub(1, tf.cast(allowed, 'float32')), BLOCKED_SCORE)) : scores;
      scores = hooks.fromHeads(hooks.run('hookScores', hooks.toHeads(masked)));
    }
    let weights = maskedSoftmax(scores, allowed);
    if (hooks) weights = hooks.fromHeads(hooks.run('hookPattern', hooks.toHeads(weights)));
    const context = tf.matMul(dropout(weights, rate, training), v); // [.., q, k] x [.., k, dv] -> [.., q, dv]
    return [context, weights];
  });
}

/** Options of {@link ScaledDotProductAttention}. */
export interface ScaledDotProductAttentionOptions {
  /** Dropout rate on the attention weights, in [0, 1). Default 0.1 (the design's). */
  dropout?: number;
}

/**
 * Scaled dot-product attention as a module (no parameters): `forward(q, k, v, { mask })` ->
 * `[context, attentionWeights]` for `q [..., tq, d]`, `k [..., tk, d]`, `v [..., tk, dv]` with
 * matching leading dimensions. `mask` (true = may attend) broadcasts to `[..., tq, tk]`.
 */
export class ScaledDotProductAttention extends Module {
  readonly config: Required<ScaledDotProductAttentionOptions>;

  constructor(options: ScaledDotProductAttentionOptions = {}) {
    super();
    const { dropout: rate = 0.1 } = options;
    if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) {
      throw new MieConfigError(errorMessage('ScaledDotProductAttention', 'option "dropout"', 'must be a number in [0, 1)', rate));
    }
    this.config = { dropout: rate };
  }

  forward(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options?: { mask?: tf.Tensor }): [tf.Tensor, tf.Tensor] {
    const name = 'ScaledDotProductAttention';
    const { mask } = checkCallOptions(`${name}.forward`, options, ['mask']);
    for (const [arg, t] of [['query', q], ['key', k], ['value', v]] as const) {
      if (!(t instanceof tf.Tensor) || t.isDisposed || t.rank < 2 || t.dtype !== 'float32') {
        throw new MieShapeError(`${name}: ${arg} must be a float32 tensor [..., length, features]. Received: ${describeValue(t)}.`);
      }
    }
    const lead = (t: tf.Tensor) => t.shape.slice(0, -2).join(',');
    if (q.rank !== k.rank || k.rank !== v.rank || lead(q) !== lead(k) || lead(k) !== lead(v)) {
      throw new MieShapeError(`${name}: query, key and value must share their leading dimensions. Received: [${q.shape}], [${k.shape}], [${v.shape}].`);
    }
    if (q.shape[q.rank - 1] !== k.shape[k.rank - 1]) {
      throw new MieShapeError(`${name}: query and key must have the same feature size. Received: ${q.shape[q.rank - 1]} and ${k.shape[k.rank - 1]}.`);
    }
    if (k.shape[k.rank - 2] !== v.shape[v.rank - 2]) {
      throw new MieShapeError(`${name}: key and value must have the same length. Received: ${k.shape[k.rank - 2]} and ${v.shape[v.rank - 2]}.`);
    }
    const scoreShape = [...q.shape.slice(0, -1), k.shape[k.rank - 2]];
    let allowed: tf.Tensor | null = null;
    if (mask !== undefined && mask !== null) {
      const aligned = mask instanceof tf.Tensor && !mask.isDisposed && mask.rank <= scoreShape.length &&
        mask.shape.every((size, i) => size === 1 || size === scoreShape[scoreShape.length - mask.rank + i]);
      if (!aligned) {
        throw new MieShapeError(`${name}: mask must broadcast to the scores [${scoreShape.join(', ')}] (true = may attend). Received: ${describeValue(mask)}.`);
      }
      allowed = mask.dtype === 'bool' ? mask : tf.tidy(() => tf.cast(tf.notEqual(mask, tf.scalar(0, mask.dtype)), 'float32'));
    }
    try {
      return scaledDotProductAttention(q, k, v, { allowed, dropout: this.config.dropout, training: this.training });
    } finally {
      if (allowed !== null && allowed !== mask) allowed.dispose();
    }
  }
}
