/**
 * ALiBi attention (Press et al. 2022, "Train Short, Test Long: Attention with Linear Biases"):
 * no position embeddings; each head adds `-slope_h x |i - j|` to its scaled scores, with
 * geometric slopes.
 *
 * Legend: b batch, h heads, q query length, k key length, d head size.
 */
import { checkCallOptions, Module, buffer, checkDropout, checkOptions, checkPositiveInteger, tf } from '@mie/core';
import { LinearLayer } from '@mie/layers';
import { KeyValueCache } from './kv-cache';
import { ATTENTION_MASK_OPTIONS, buildAttentionMask, type AttentionMaskOptions } from './masks';
import { checkAttentionMemory, checkCache, checkHeadCount, checkPositions } from './options';
import { checkSequence, headsFirst, mergeHeads, splitHeads } from './projections';
import { scaledDotProductAttention } from './scaled-dot-product-attention';

/**
 * The paper's head slopes: for n a power of two, `2^(-8/n)`, `2^(-16/n)`, ..., `2^(-8)`; otherwise
 * the slopes of the largest power of two p < n, followed by every other slope of 2p (the
 * reference implementation's recipe).
 */
export function alibiSlopes(numHeads: number): number[] {
  checkPositiveInteger('alibiSlopes', 'numHeads', numHeads);
  const powerOfTwo = (n: number) => {
    const start = 2 ** (-(2 ** -(Math.log2(n) - 3)));
    return Array.from({ length: n }, (_, i) => start * start ** i);
  };
  if (Number.isInteger(Math.log2(numHeads))) return powerOfTwo(numHeads);
  const closest = 2 ** Math.floor(Math.log2(numHeads));
  return [...powerOfTwo(closest), ...powerOfTwo(2 * closest).filter((_, i) => i % 2 === 0).slice(0, numHeads - closest)];
}

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
    this.slopes = buffer([1, numHeads, 1, 1], () => tf.tensor4d(alibiSlopes(numHeads), [1, numHeads, 1, 1]));
  }

  /** The bias `[1, h, q, k]` for queries at positions `offset ..` and keys at `0 .. k-1`. */
  bias(queryLength: number, keyLength: number, offset: number): tf.Tensor {
    return tf.tidy(() => {
      const rows = tf.reshape(tf.range(offset, offset + queryLength), [queryLength, 1]);
      const cols = tf.reshape(tf.range(0, keyLength), [1, keyLength]);
      const distance = tf.reshape(tf.abs(tf.sub(rows, cols)), [1, 1, queryLength, keyLength]);
      return tf.neg(tf.mul(this.slopes, distance));
    });
  }

  forward(x: tf.Tensor, callOptions?: ALiBiAttentionCallOptions): tf.Tensor {
    const name = 'ALiBiAttention';
    const options = checkCallOptions(`${name}.forward`, callOptions, [...ATTENTION_MASK_OPTIONS, 'cache']);
    const { hiddenSize, numHeads, maxSeqLength } = this.config;
    checkSequence(name, 'input x', x, hiddenSize, 'hiddenSize');
    checkCache(name, options.cache);
    const [batch, queryLength] = x.shape;
    const offset = options.cache?.length ?? 0;
    checkPositions(name, offset, queryLength, maxSeqLength);
    checkAttentionMemory(name, batch, numHeads, queryLength, offset + queryLength, hiddenSize);
    return tf.tidy(() => {
      const q = headsFirst(splitHeads(this.qProj.forward(x), numHeads)); // [b, q, e] -> [b, h, q, d]
      let keys = headsFirst(splitHeads(this.kProj.forward(x), numHeads));
      let values = headsFirst(splitHeads(this.vProj.forward(x), numHeads));
      if (options.cache) ({ keys, values } = options.cache.append(keys, values, name));
      const keyLength = keys.shape[2] as number;
      const allowed = buildAttentionMask(name, options, { batch, heads: numHeads, queryLength, keyLength });
      const [context] = scaledDotProductAttention(q, keys, values, {
        allowed,
        bias: this.bias(queryLength, keyLength, offset),
        dropout: this.config.dropout,
        training: this.training,
      });
      return this.outProj.forward(mergeHeads(context));
    });
  }
}
