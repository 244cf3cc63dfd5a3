/**
 * ALiBi attention (Press et al. 2022, "Train Short, Test Long: Attention with Linear Biases"):
 * no position embeddings; each head adds `-slope_h x |i - j|` to its scaled scores, with
 * geometric slopes. The design's named class, on the attention core that `MultiHeadAttention`
 * uses (`positionalEncoding: 'alibi'` there).
 */
import { checkCallOptions, Module, checkDropout, checkOptions, checkPositiveInteger, type tf } from '@mie/core';
import { LinearLayer } from '@mie/layers';
import { ATTENTION_HOOK_POINTS, alibiBias, attend, positionTreatment, type AttentionLayout } from './attention-core';
import type { KeyValueCache } from './kv-cache';
import { ATTENTION_MASK_OPTIONS, type AttentionMaskOptions } from './masks';
import { checkHeadCount } from './options';
import { checkSequence } from './projections';

export { alibiSlopes } from './attention-core';

/** Options of {@link ALiBiAttention} (the design's `hidden_size`, `num_heads`, `max_seq_length`). */
export interface ALiBiAttentionOptions {
  /** Model width; divisible by `numHeads`. */
  hiddenSize: number;
  /** Number of heads. */
  numHeads: number;
  /** Longest sequence (cache included) accepted. Default 2048. */
  maxSeqLength?: number;
  /** Dropout on the attention weights in training mode, in [0, 1). Default 0.1. */
  dropout?: number;
}

/** Call options of {@link ALiBiAttention.forward}. */
export interface ALiBiAttentionCallOptions extends AttentionMaskOptions {
  /** Key/value cache; positions continue from `cache.length`. */
  cache?: KeyValueCache;
}

const OPTIONS = ['hiddenSize', 'numHeads', 'maxSeqLength', 'dropout'] as const;

/**
 * ALiBi self-attention: `forward(x, { mask, keyPaddingMask, causal, cache })` -> output
 * `[batch, seq, hiddenSize]`. Query i (absolute position, cache included) and key j get the bias
 * `-slope_h x |i - j|`; combine with `causal: true` for a decoder. Parameters: `qProj`, `kProj`,
 * `vProj`, `outProj` (LinearLayers `[hiddenSize, hiddenSize]` with bias).
 */
export class ALiBiAttention extends Module {
  readonly config: Required<ALiBiAttentionOptions>;
  readonly qProj: LinearLayer;
  readonly kProj: LinearLayer;
  readonly vProj: LinearLayer;
  readonly outProj: LinearLayer;
  /** `[1, h, 1, 1]` slopes (a constant, not state). */
  readonly slopes: tf.Tensor;
  readonly #layout: AttentionLayout;

  constructor(options: ALiBiAttentionOptions) {
    super();
    const name = 'ALiBiAttention';
    const { hiddenSize, numHeads, maxSeqLength = 2048, dropout = 0.1 } = checkOptions(name, options, OPTIONS);
    checkPositiveInteger(name, 'hiddenSize', hiddenSize);
    checkPositiveInteger(name, 'numHeads', numHeads);
    checkHeadCount(name, 'hiddenSize', hiddenSize, 'numHeads', numHeads);
    checkPositiveInteger(name, 'maxSeqLength', maxSeqLength);
    checkDropout(name, dropout);
    this.config = Object.freeze({ hiddenSize, numHeads, maxSeqLength, dropout });
    const linear = () => new LinearLayer({ inFeatures: hiddenSize, outFeatures: hiddenSize, initType: 'xavier_uniform' });
    this.qProj = linear();
    this.kProj = linear();
    this.vProj = linear();
    this.outProj = linear();
    this.slopes = positionTreatment('alibi', { numHeads, headDim: hiddenSize / numHeads, maxSeqLength }).slopes as tf.Tensor;
    this.#layout = { module: name, width: hiddenSize, widthName: 'hiddenSize', numHeads, numKeyValueHeads: numHeads, rotary: null, slopes: this.slopes, maxSeqLength };
  }

  /** The bias `[1, h, q, k]` for queries at positions `offset ..` and keys at `0 .. k-1`. */
  bias(queryLength: number, keyLength: number, offset: number): tf.Tensor {
    return alibiBias(this.slopes, queryLength, keyLength, offset);
  }

  /**
   * `hookQ` `[b, h, q, d]` (after rotary), `hookK` and `hookV` `[b, kvHeads, k, d]` (after rotary
   * and the cache), `hookScores` (scaled, after biases and masks: blocked at -1e30) and
   * `hookPattern` (softmax) `[b, h, q, k]`, `hookZ` `[b, h, q, d]` (per-head context before `outProj`).
   */
  override hookPoints(): readonly string[] {
    return ATTENTION_HOOK_POINTS;
  }

  forward(x: tf.Tensor, callOptions?: ALiBiAttentionCallOptions): tf.Tensor {
    const name = 'ALiBiAttention';
    const options = checkCallOptions(`${name}.forward`, callOptions, [...ATTENTION_MASK_OPTIONS, 'cache']);
    checkSequence(name, 'input x', x, this.config.hiddenSize, 'hiddenSize');
    const [output, weights] = attend(this, this.#layout, x, x, x, options, { dropout: this.config.dropout, training: this.training, hooks: this.hookPointRunner });
    weights.dispose();
    return output;
  }
}
