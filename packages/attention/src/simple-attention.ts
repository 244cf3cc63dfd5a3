/**
 * The smallest example of the attention mechanism: one head, learned projections.
 *
 *   q = x Wq, k = x Wk, v = x Wv            (each [batch, seq, attentionDim])
 *   weights = softmax(q kᵀ / sqrt(attentionDim))   ([batch, seq, seq], masked where blocked)
 *   output = weights v                      ([batch, seq, attentionDim])
 *
 * Read it before `MultiHeadAttention`, which runs this once per head on slices of the width and
 * mixes the heads with an output projection.
 */
import { checkCallOptions, Module, checkOptions, checkPositiveInteger, tf } from '@mie/core';
import { LinearLayer } from '@mie/layers';
import { buildAttentionMask } from './masks';
import { checkAttentionMemory } from './options';
import { checkSequence } from './projections';
import { scaledDotProductAttention } from './scaled-dot-product-attention';

/** Options of {@link SimpleAttention}. */
export interface SimpleAttentionOptions {
  /** Width of the input features. */
  inputDim: number;
  /** Width of queries, keys, values and of the output. Default `inputDim`. */
  attentionDim?: number;
}

const OPTIONS = ['inputDim', 'attentionDim'] as const;

/**
 * Single-head self-attention: `forward(x, { mask })` -> `[output [b, t, attentionDim],
 * weights [b, t, t]]`. `mask` (true = may attend) broadcasts to `[b, t, t]` (rank 2 or 3).
 * Parameters: `qProj`, `kProj`, `vProj` (LinearLayers `[attentionDim, inputDim]` with bias).
 */
export class SimpleAttention extends Module {
  readonly config: Required<SimpleAttentionOptions>;
  readonly qProj: LinearLayer;
  readonly kProj: LinearLayer;
  readonly vProj: LinearLayer;

  constructor(options: SimpleAttentionOptions) {
    super();
    const name = 'SimpleAttention';
    const { inputDim, attentionDim = options?.inputDim } = checkOptions(name, options, OPTIONS);
    checkPositiveInteger(name, 'inputDim', inputDim);
    checkPositiveInteger(name, 'attentionDim', attentionDim);
    this.config = Object.freeze({ inputDim, attentionDim });
    const linear = () => new LinearLayer({ inFeatures: inputDim, outFeatures: attentionDim, initType: 'xavier_uniform' });
    this.qProj = linear();
    this.kProj = linear();
    this.vProj = linear();
  }

  forward(x: tf.Tensor, options?: { mask?: tf.Tensor }): [tf.Tensor, tf.Tensor] {
    const name = 'SimpleAttention';
    const { mask } = checkCallOptions(`${name}.forward`, options, ['mask']);
    checkSequence(name, 'input x', x, this.config.inputDim, 'inputDim');
    const [batch, length] = x.shape;
    checkAttentionMemory(name, batch, 1, length, length, Math.max(this.config.inputDim, this.config.attentionDim));
    return tf.tidy(() => {
      // A rank-3 mask [b, t, t] is one per batch element; as [b, 1, t, t] it fits the helper.
      const allowed = buildAttentionMask(name, { mask }, { batch, heads: 1, queryLength: length, keyLength: length });
      const q = this.qProj.forward(x);
      const k = this.kProj.forward(x);
      const v = this.vProj.forward(x);
      const squeezed = allowed === null ? null : tf.reshape(tf.broadcastTo(allowed, [batch, 1, length, length]), [batch, length, length]);
      return scaledDotProductAttention(q, k, v, { allowed: squeezed });
    });
  }
}
