/**
 * Grouped-query attention (Ainslie et al. 2023, "GQA"): `numHeads` query heads share
 * `numKeyValueHeads` key/value heads; query head `h` uses key/value head
 * `floor(h / (numHeads / numKeyValueHeads))` (HF `repeat_kv`). `numKeyValueHeads: 1` is
 * multi-query attention (Shazeer 2019); `numKeyValueHeads = numHeads` is multi-head attention.
 * The design's named class, on the attention core that `MultiHeadAttention` uses.
 */
import { checkCallOptions, Module, checkDropout, checkOptions, checkPositiveInteger, type tf } from '@mie/core';
import { LinearLayer } from '@mie/layers';
import { ATTENTION_HOOK_POINTS, attend, type AttentionLayout } from './attention-core';
import type { KeyValueCache } from './kv-cache';
import { ATTENTION_MASK_OPTIONS, type AttentionMaskOptions } from './masks';
import { checkHeadCount } from './options';
import { checkSequence } from './projections';

/** Options of {@link GroupedQueryAttention} (the design's `d_model`, `num_heads`, `num_key_value_heads`). */
export interface GroupedQueryAttentionOptions {
  /** Model width; divisible by `numHeads`. */
  dModel: number;
  /** Number of query heads; divisible by `numKeyValueHeads`. */
  numHeads: number;
  /** Number of key/value heads. Default `numHeads` (plain multi-head attention). */
  numKeyValueHeads?: number;
  /** Dropout on the attention weights in training mode, in [0, 1). Default 0.1. */
  dropout?: number;
}

/** Call options of {@link GroupedQueryAttention.forward}. */
export interface GroupedQueryAttentionCallOptions extends AttentionMaskOptions {
  /** Key/value cache; it holds only the `numKeyValueHeads` heads. */
  cache?: KeyValueCache;
}

const OPTIONS = ['dModel', 'numHeads', 'numKeyValueHeads', 'dropout'] as const;

/**
 * Grouped-query self-attention: `forward(x, { mask, keyPaddingMask, causal, cache })` -> output
 * `[batch, seq, dModel]`. Parameters: `qProj [dModel, dModel]`, `kProj` and `vProj`
 * `[numKeyValueHeads x headDim, dModel]`, `outProj [dModel, dModel]` (LinearLayers with bias).
 * Keys and values are never repeated in memory (see the attention core). The same module as
 * `new MultiHeadAttention({ inputDim: dModel, numHeads, numKeyValueHeads })` used as self-attention.
 */
export class GroupedQueryAttention extends Module {
  readonly config: Required<GroupedQueryAttentionOptions>;
  readonly qProj: LinearLayer;
  readonly kProj: LinearLayer;
  readonly vProj: LinearLayer;
  readonly outProj: LinearLayer;
  readonly #layout: AttentionLayout;

  constructor(options: GroupedQueryAttentionOptions) {
    super();
    const name = 'GroupedQueryAttention';
    const { dModel, numHeads, numKeyValueHeads = options?.numHeads, dropout = 0.1 } = checkOptions(name, options, OPTIONS);
    checkPositiveInteger(name, 'dModel', dModel);
    checkPositiveInteger(name, 'numHeads', numHeads);
    checkPositiveInteger(name, 'numKeyValueHeads', numKeyValueHeads);
    checkHeadCount(name, 'dModel', dModel, 'numHeads', numHeads);
    checkHeadCount(name, 'numHeads', numHeads, 'numKeyValueHeads', numKeyValueHeads);
    checkDropout(name, dropout);
    this.config = Object.freeze({ dModel, numHeads, numKeyValueHeads, dropout });
    const kvWidth = (dModel / numHeads) * numKeyValueHeads;
    const linear = (outFeatures: number) => new LinearLayer({ inFeatures: dModel, outFeatures, initType: 'xavier_uniform' });
    this.qProj = linear(dModel);
    this.kProj = linear(kvWidth);
    this.vProj = linear(kvWidth);
    this.outProj = linear(dModel);
    this.#layout = { module: name, width: dModel, widthName: 'dModel', numHeads, numKeyValueHeads, rotary: null, slopes: null, maxSeqLength: Infinity };
  }

  /**
   * `hookQ` `[b, h, q, d]` (after rotary), `hookK` and `hookV` `[b, kvHeads, k, d]` (after rotary
   * and the cache), `hookScores` (scaled, after biases and masks: blocked at -1e30) and
   * `hookPattern` (softmax) `[b, h, q, k]`, `hookZ` `[b, h, q, d]` (per-head context before `outProj`).
   */
  override hookPoints(): readonly string[] {
    return ATTENTION_HOOK_POINTS;
  }

  forward(x: tf.Tensor, callOptions?: GroupedQueryAttentionCallOptions): tf.Tensor {
    const name = 'GroupedQueryAttention';
    const options = checkCallOptions(`${name}.forward`, callOptions, [...ATTENTION_MASK_OPTIONS, 'cache']);
    checkSequence(name, 'input x', x, this.config.dModel, 'dModel');
    const [output, weights] = attend(this, this.#layout, x, x, x, options, { dropout: this.config.dropout, training: this.training, hooks: this.hookPointRunner });
    weights.dispose();
    return output;
  }
}
