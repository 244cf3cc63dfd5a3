/**
 * Grouped-query attention (Ainslie et al. 2023, "GQA"): `numHeads` query heads share
 * `numKeyValueHeads` key/value heads; query head `h` uses key/value head
 * `floor(h / (numHeads / numKeyValueHeads))` (HF `repeat_kv`). `numKeyValueHeads: 1` is
 * multi-query attention (Shazeer 2019); `numKeyValueHeads = numHeads` is multi-head attention.
 *
 * Legend: b batch, h query heads, g key/value heads, r = h / g queries per group, q query
 * length, k key length, d head size.
 */
import { checkCallOptions, Module, checkDropout, checkOptions, checkPositiveInteger, tf } from '@mie/core';
import { LinearLayer } from '@mie/layers';
import { KeyValueCache } from './kv-cache';
import { ATTENTION_MASK_OPTIONS, buildAttentionMask, type AttentionMaskOptions } from './masks';
import { checkAttentionMemory, checkCache, checkHeadCount } from './options';
import { checkSequence, headsFirst, mergeHeads, splitHeads } from './projections';
import { scaledDotProductAttention } from './scaled-dot-product-attention';

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
 *
 * Keys and values are never repeated in memory: the r query heads of a group are folded into the
 * query length (`[b, h, q, d] -> [b, g, r x q, d]`, a free reshape), so one batched matmul per
 * group serves them all.
 */
export class GroupedQueryAttention extends Module {
  readonly config: Required<GroupedQueryAttentionOptions>;
  readonly qProj: LinearLayer;
  readonly kProj: LinearLayer;
  readonly vProj: LinearLayer;
  readonly outProj: LinearLayer;

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
  }

  forward(x: tf.Tensor, callOptions?: GroupedQueryAttentionCallOptions): tf.Tensor {
    const name = 'GroupedQueryAttention';
    const options = checkCallOptions(`${name}.forward`, callOptions, [...ATTENTION_MASK_OPTIONS, 'cache']);
    const { dModel, numHeads, numKeyValueHeads } = this.config;
    checkSequence(name, 'input x', x, dModel, 'dModel');
    checkCache(name, options.cache);
    const [batch, queryLength] = x.shape;
    const groups = numKeyValueHeads;
    const perGroup = numHeads / groups;
    const headDim = dModel / numHeads;
    checkAttentionMemory(name, batch, numHeads, queryLength, (options.cache?.length ?? 0) + queryLength, dModel);
    return tf.tidy(() => {
      const q = headsFirst(splitHeads(this.qProj.forward(x), numHeads)); // [b, q, e] -> [b, h, q, d]
      let keys = headsFirst(splitHeads(this.kProj.forward(x), groups)); // -> [b, g, k, d]
      let values = headsFirst(splitHeads(this.vProj.forward(x), groups)); // -> [b, g, k, d]
      if (options.cache) ({ keys, values } = options.cache.append(keys, values, name));
      const keyLength = keys.shape[2] as number;
      // Heads h = g * r + j are contiguous per group: [b, h, q, d] -> [b, g, r*q, d] is a reshape.
      const groupedQ = tf.reshape(q, [batch, groups, perGroup * queryLength, headDim]);
      let allowed = buildAttentionMask(name, options, { batch, heads: numHeads, queryLength, keyLength });
      if (allowed) {
        allowed = tf.reshape(tf.broadcastTo(allowed, [batch, numHeads, queryLength, keyLength]), [batch, groups, perGroup * queryLength, keyLength]);
      }
      const [context] = scaledDotProductAttention(groupedQ, keys, values, {
        allowed,
        dropout: this.config.dropout,
        training: this.training,
      }); // [b, g, r*q, d]
      const perHead = tf.reshape(context, [batch, numHeads, queryLength, headDim]); // [b, g, r*q, d] -> [b, h, q, d]
      return this.outProj.forward(mergeHeads(perHead));
    });
  }
}
