/**
 * Multi-head attention (Vaswani et al. 2017, section 3.2.2), matching `torch.nn.MultiheadAttention`
 * with `batch_first=True` and `average_attn_weights=False`, plus optional rotary position
 * embeddings (Su et al. 2021) and a key/value cache for incremental decoding.
 *
 * Legend: b batch, h heads, q query length, k key length, d head size, e embedding size (h x d).
 */
import {
  checkCallOptions,
  MieConfigError,
  MieSerializationError,
  Module,
  checkBoolean,
  checkDropout,
  checkOptions,
  checkPositiveInteger,
  describeValue,
  errorMessage,
  listForMessage,
  tf,
} from '@mie/core';
import { LinearLayer } from '@mie/layers';
import type { RotaryPositionEncoding, RotaryScalingOptions } from '@mie/positional';
import {
  ATTENTION_CALL_EXTRAS,
  ATTENTION_HOOK_POINTS,
  attend,
  checkAttentionPositions,
  positionTreatment,
  projectKeyValue,
  type AttentionLayout,
  type AttentionPositionKind,
  type ProjectedKeyValue,
} from './attention-core';
import type { KeyValueCache } from './kv-cache';
import { ATTENTION_MASK_OPTIONS, type AttentionMaskOptions } from './masks';
import { checkHeadCount, checkSameBatch } from './options';
import { checkSequence } from './projections';

export type { ProjectedKeyValue } from './attention-core';

/** Options of {@link MultiHeadAttention} (the design's `input_dim`, `num_heads`, ...). */
export interface MultiHeadAttentionOptions {
  /** Model width e of queries, keys and values; divisible by `numHeads`. */
  inputDim: number;
  /** Number of query heads h; each attends with head size `inputDim / numHeads`. */
  numHeads: number;
  /**
   * Number of key/value heads g (grouped-query attention, Ainslie et al. 2023): query head `h`
   * uses key/value head `floor(h / (numHeads / g))`; `1` is multi-query attention. Divides
   * `numHeads`. Default `numHeads` (plain multi-head attention).
   */
  numKeyValueHeads?: number;
  /** Dropout on the attention weights in training mode, in [0, 1). Default 0.1. */
  dropout?: number;
  /** Rotate queries and keys with {@link RotaryPositionEncoding} (rotate-half). Default false; the same as `positionalEncoding: 'rotary'`. */
  useRotaryEmbeddings?: boolean;
  /**
   * Positions inside attention: `'none'` (default), `'rotary'` (queries and keys rotated) or
   * `'alibi'` (the bias `-slope_h x |i - j|` on the scores, Press et al. 2022).
   */
  positionalEncoding?: AttentionPositionKind;
  /** Longest sequence (cache included) that rotary or ALiBi positions cover. Default 5000. */
  maxSeqLength?: number;
  /**
   * Rotary scaling for contexts longer than the training one (`RotaryPositionEncoding`'s
   * `scaling`: `{ type: 'linear' | 'dynamic' | 'yarn', factor, originalMaxSeqLength? }`); only with
   * rotary positions. Default null.
   */
  rotaryScaling?: RotaryScalingOptions | null;
}

/** The resolved options of a {@link MultiHeadAttention}. */
export type MultiHeadAttentionConfig = Required<MultiHeadAttentionOptions>;

/** Call options of {@link MultiHeadAttention.forward}. */
export interface MultiHeadAttentionCallOptions extends AttentionMaskOptions {
  /**
   * Key/value cache for incremental decoding: this step's keys and values are appended to it and
   * the queries attend over everything cached. `keyPaddingMask` and `mask` then cover all cached
   * keys, and positions (rotary, ALiBi, causal) continue from `cache.length`.
   */
  cache?: KeyValueCache;
  /**
   * Keys and values already projected by {@link MultiHeadAttention.projectKeyValue} (cross-attention
   * over a fixed memory during decoding: computed once per source, not once per step). The `key`
   * and `value` arguments are then only checked, not projected.
   */
  projectedKeyValue?: ProjectedKeyValue;
  /** An additive bias on the scaled scores, float32 broadcastable to `[b, heads, q, k]` (relative positions). */
  bias?: tf.Tensor;
}

/** A `torch.nn.MultiheadAttention` state dict (`in_proj_weight`, `in_proj_bias`, `out_proj.*`). */
export type TorchMultiheadAttentionState = Record<string, tf.Tensor>;

const OPTIONS = ['inputDim', 'numHeads', 'numKeyValueHeads', 'dropout', 'useRotaryEmbeddings', 'positionalEncoding', 'maxSeqLength', 'rotaryScaling'] as const;

/**
 * Multi-head attention: `forward(query, key, value, { mask, keyPaddingMask, causal, cache })` ->
 * `[output [b, q, e], attentionWeights [b, h, q, k]]`. Self-attention passes the same tensor three
 * times; cross-attention passes the encoder output as key and value. The one attention core of
 * MIE: grouped key/value heads (`numKeyValueHeads`) and the position treatment (`positionalEncoding`)
 * make it grouped-query, multi-query, rotary or ALiBi attention.
 *
 * Parameters: `qProj [e, e]`, `kProj` and `vProj` `[g x headDim, e]`, `outProj [e, e]`, each a
 * {@link LinearLayer} with bias, Xavier-uniform initialised (as PyTorch initialises `in_proj_weight`).
 */
export class MultiHeadAttention extends Module {
  readonly config: MultiHeadAttentionConfig;
  readonly qProj: LinearLayer;
  readonly kProj: LinearLayer;
  readonly vProj: LinearLayer;
  readonly outProj: LinearLayer;
  /** Rotary embeddings (no parameters), or `null`. */
  readonly rotary: RotaryPositionEncoding | null;
  /** ALiBi slopes `[1, h, 1, 1]` (a constant, not state), or `null`. */
  readonly slopes: tf.Tensor | null;
  readonly #layout: AttentionLayout;

  constructor(options: MultiHeadAttentionOptions) {
    super();
    const name = 'MultiHeadAttention';
    const { inputDim, numHeads, numKeyValueHeads = options?.numHeads, dropout = 0.1, useRotaryEmbeddings = false, maxSeqLength = 5000, rotaryScaling = null } = checkOptions(name, options, OPTIONS);
    checkPositiveInteger(name, 'inputDim', inputDim);
    checkPositiveInteger(name, 'numHeads', numHeads);
    checkHeadCount(name, 'inputDim', inputDim, 'numHeads', numHeads);
    checkPositiveInteger(name, 'numKeyValueHeads', numKeyValueHeads);
    checkHeadCount(name, 'numHeads', numHeads, 'numKeyValueHeads', numKeyValueHeads);
    checkDropout(name, dropout);
    checkBoolean(name, 'useRotaryEmbeddings', useRotaryEmbeddings);
    checkPositiveInteger(name, 'maxSeqLength', maxSeqLength);
    const headDim = inputDim / numHeads;
    const positionalEncoding = options.positionalEncoding ?? (useRotaryEmbeddings ? 'rotary' : 'none');
    if (useRotaryEmbeddings && positionalEncoding !== 'rotary') {
      throw new MieConfigError(errorMessage(name, 'option "useRotaryEmbeddings"', `contradicts positionalEncoding '${String(positionalEncoding)}'`, true));
    }
    checkAttentionPositions(name, useRotaryEmbeddings ? 'useRotaryEmbeddings' : 'positionalEncoding', positionalEncoding, headDim, 'inputDim');
    if (rotaryScaling !== null && positionalEncoding !== 'rotary') {
      throw new MieConfigError(errorMessage(name, 'option "rotaryScaling"', "needs rotary positions (positionalEncoding 'rotary')", rotaryScaling));
    }
    this.config = Object.freeze({ inputDim, numHeads, numKeyValueHeads, dropout, useRotaryEmbeddings: positionalEncoding === 'rotary', positionalEncoding, maxSeqLength, rotaryScaling });
    const projection = (outFeatures: number) => new LinearLayer({ inFeatures: inputDim, outFeatures, initType: 'xavier_uniform' });
    this.qProj = projection(inputDim);
    this.kProj = projection(numKeyValueHeads * headDim);
    this.vProj = projection(numKeyValueHeads * headDim);
    this.outProj = projection(inputDim);
    ({ rotary: this.rotary, slopes: this.slopes } = positionTreatment(positionalEncoding, { numHeads, headDim, maxSeqLength, rotaryScaling }));
    this.#layout = { module: name, width: inputDim, widthName: 'inputDim', numHeads, numKeyValueHeads, rotary: this.rotary, slopes: this.slopes, maxSeqLength };
  }

  /**
   * `hookQ` `[b, h, q, d]` (after rotary), `hookK` and `hookV` `[b, kvHeads, k, d]` (after rotary
   * and the cache), `hookScores` (scaled, after biases and masks: blocked at -1e30) and
   * `hookPattern` (softmax) `[b, h, q, k]`, `hookZ` `[b, h, q, d]` (per-head context before `outProj`).
   */
  override hookPoints(): readonly string[] {
    return ATTENTION_HOOK_POINTS;
  }

  forward(query: tf.Tensor, key: tf.Tensor, value: tf.Tensor, callOptions?: MultiHeadAttentionCallOptions): [tf.Tensor, tf.Tensor] {
    const name = 'MultiHeadAttention';
    const options = checkCallOptions(`${name}.forward`, callOptions, [...ATTENTION_MASK_OPTIONS, ...ATTENTION_CALL_EXTRAS]);
    const { inputDim } = this.config;
    checkSequence(name, 'query', query, inputDim, 'inputDim');
    checkSequence(name, 'key', key, inputDim, 'inputDim');
    checkSequence(name, 'value', value, inputDim, 'inputDim');
    checkSameBatch(name, query, key, value);
    return attend(this, this.#layout, query, key, value, options, { dropout: this.config.dropout, training: this.training, hooks: this.hookPointRunner });
  }

  /**
   * Projects `key` and `value` (`[batch, keyLength, inputDim]`) into key/value heads once, for
   * repeated cross-attention over the same memory: pass the result as `projectedKeyValue`. With
   * rotary embeddings the keys are rotated at positions 0.. . The caller disposes the returned tensors.
   */
  projectKeyValue(key: tf.Tensor, value: tf.Tensor): ProjectedKeyValue {
    const name = 'MultiHeadAttention.projectKeyValue';
    const { inputDim } = this.config;
    checkSequence(name, 'key', key, inputDim, 'inputDim');
    checkSequence(name, 'value', value, inputDim, 'inputDim');
    return projectKeyValue(this, this.#layout, key, value);
  }

  /**
   * Loads a `torch.nn.MultiheadAttention` state dict: `in_proj_weight [3e, e]` and
   * `in_proj_bias [3e]` split into q, k, v rows; `out_proj.weight`, `out_proj.bias`. Every key
   * and shape is checked before anything is written.
   */
  loadTorchState(state: TorchMultiheadAttentionState): void {
    if (this.config.numKeyValueHeads !== this.config.numHeads) {
      throw new MieConfigError(`MultiHeadAttention.loadTorchState: torch.nn.MultiheadAttention has no grouped key/value heads; this module has numKeyValueHeads ${this.config.numKeyValueHeads} < numHeads ${this.config.numHeads}.`);
    }
    const mapped = torchMultiheadAttentionToMie(state, this.config.inputDim, 'MultiHeadAttention.loadTorchState');
    try {
      this.loadStateDict(mapped);
    } finally {
      tf.dispose(Object.values(mapped));
    }
  }
}

/**
 * Maps a `torch.nn.MultiheadAttention` state dict onto MIE names (`qProj.weight`, ...). The
 * returned tensors are new (the caller disposes them).
 */
export function torchMultiheadAttentionToMie(state: TorchMultiheadAttentionState, embedDim: number, where = 'torchMultiheadAttentionToMie'): Record<string, tf.Tensor> {
  const required: Array<[string, number[]]> = [
    ['in_proj_weight', [3 * embedDim, embedDim]],
    ['in_proj_bias', [3 * embedDim]],
    ['out_proj.weight', [embedDim, embedDim]],
    ['out_proj.bias', [embedDim]],
  ];
  const problems = required
    .filter(([key, shape]) => !(state[key] instanceof tf.Tensor) || !tf.util.arraysEqual(state[key].shape, shape))
    .map(([key, shape]) => `"${key}" must be a tensor of shape [${shape.join(', ')}]${state[key] instanceof tf.Tensor ? `, got [${state[key].shape.join(', ')}]` : ' (missing)'}`);
  const unexpected = Object.keys(state).filter((key) => !required.some(([name]) => name === key));
  if (unexpected.length) problems.push(`unexpected keys ${listForMessage(unexpected.map((k) => describeValue(k)))}`);
  if (problems.length) throw new MieSerializationError(`${where}: ${problems.join('; ')}.`);
  return tf.tidy(() => {
    const [qw, kw, vw] = tf.split(state['in_proj_weight'], 3, 0);
    const [qb, kb, vb] = tf.split(state['in_proj_bias'], 3, 0);
    return {
      'qProj.weight': qw,
      'qProj.bias': qb,
      'kProj.weight': kw,
      'kProj.bias': kb,
      'vProj.weight': vw,
      'vProj.bias': vb,
      'outProj.weight': tf.clone(state['out_proj.weight']),
      'outProj.bias': tf.clone(state['out_proj.bias']),
    };
  });
}
