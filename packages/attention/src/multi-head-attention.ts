/**
 * Multi-head attention (Vaswani et al. 2017, section 3.2.2), matching `torch.nn.MultiheadAttention`
 * with `batch_first=True` and `average_attn_weights=False`, plus optional rotary position
 * embeddings (Su et al. 2021) and a key/value cache for incremental decoding.
 *
 * Legend: b batch, h heads, q query length, k key length, d head size, e embedding size (h x d).
 */
import { checkCallOptions,
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
import { RotaryPositionEncoding } from '@mie/positional';
import { KeyValueCache } from './kv-cache';
import { ATTENTION_MASK_OPTIONS, buildAttentionMask, type AttentionMaskOptions } from './masks';
import { checkAttentionMemory, checkCache, checkHeadCount, checkSameBatch } from './options';
import { checkSequence, headsFirst, mergeHeads, splitHeads } from './projections';
import { scaledDotProductAttention } from './scaled-dot-product-attention';

/** Options of {@link MultiHeadAttention} (the design's `input_dim`, `num_heads`, ...). */
export interface MultiHeadAttentionOptions {
  /** Model width e of queries, keys and values; divisible by `numHeads`. */
  inputDim: number;
  /** Number of heads h; each attends with head size `inputDim / numHeads`. */
  numHeads: number;
  /** Dropout on the attention weights in training mode, in [0, 1). Default 0.1. */
  dropout?: number;
  /** Rotate queries and keys with {@link RotaryPositionEncoding} (rotate-half). Default false. */
  useRotaryEmbeddings?: boolean;
  /** Longest sequence (cache included) rotary embeddings cover. Default 5000. */
  maxSeqLength?: number;
}

/** Call options of {@link MultiHeadAttention.forward}. */
export interface MultiHeadAttentionCallOptions extends AttentionMaskOptions {
  /**
   * Key/value cache for incremental decoding: this step's keys and values are appended to it and
   * the queries attend over everything cached. `keyPaddingMask` and `mask` then cover all cached
   * keys, and positions (rotary, causal) continue from `cache.length`.
   */
  cache?: KeyValueCache;
  /**
   * Keys and values already projected by {@link MultiHeadAttention.projectKeyValue} (cross-attention
   * over a fixed memory during decoding: computed once per source, not once per step). The `key`
   * and `value` arguments are then only checked, not projected.
   */
  projectedKeyValue?: ProjectedKeyValue;
}

/** Projected keys and values `[batch, heads, keyLength, headDim]`. */
export interface ProjectedKeyValue {
  keys: tf.Tensor;
  values: tf.Tensor;
}

/** A `torch.nn.MultiheadAttention` state dict (`in_proj_weight`, `in_proj_bias`, `out_proj.*`). */
export type TorchMultiheadAttentionState = Record<string, tf.Tensor>;

const OPTIONS = ['inputDim', 'numHeads', 'dropout', 'useRotaryEmbeddings', 'maxSeqLength'] as const;

/**
 * Multi-head attention: `forward(query, key, value, { mask, keyPaddingMask, causal, cache })` ->
 * `[output [b, q, e], attentionWeights [b, h, q, k]]`. Self-attention passes the same tensor three
 * times; cross-attention passes the encoder output as key and value.
 *
 * Parameters: `qProj`, `kProj`, `vProj`, `outProj`, each a {@link LinearLayer} `[e, e]` with bias,
 * Xavier-uniform initialised (as PyTorch initialises `in_proj_weight`).
 */
export class MultiHeadAttention extends Module {
  readonly config: Required<MultiHeadAttentionOptions>;
  readonly qProj: LinearLayer;
  readonly kProj: LinearLayer;
  readonly vProj: LinearLayer;
  readonly outProj: LinearLayer;
  /** Rotary embeddings (no parameters), or `null`. */
  readonly rotary: RotaryPositionEncoding | null;

  constructor(options: MultiHeadAttentionOptions) {
    super();
    const name = 'MultiHeadAttention';
    const { inputDim, numHeads, dropout = 0.1, useRotaryEmbeddings = false, maxSeqLength = 5000 } = checkOptions(name, options, OPTIONS);
    checkPositiveInteger(name, 'inputDim', inputDim);
    checkPositiveInteger(name, 'numHeads', numHeads);
    checkHeadCount(name, 'inputDim', inputDim, 'numHeads', numHeads);
    checkDropout(name, dropout);
    checkBoolean(name, 'useRotaryEmbeddings', useRotaryEmbeddings);
    checkPositiveInteger(name, 'maxSeqLength', maxSeqLength);
    if (useRotaryEmbeddings && (inputDim / numHeads) % 2 !== 0) {
      throw new MieConfigError(errorMessage(name, 'option "useRotaryEmbeddings"', `needs an even head size; inputDim / numHeads is ${inputDim / numHeads}`, true));
    }
    this.config = Object.freeze({ inputDim, numHeads, dropout, useRotaryEmbeddings, maxSeqLength });
    const projection = () => new LinearLayer({ inFeatures: inputDim, outFeatures: inputDim, initType: 'xavier_uniform' });
    this.qProj = projection();
    this.kProj = projection();
    this.vProj = projection();
    this.outProj = projection();
    this.rotary = useRotaryEmbeddings ? new RotaryPositionEncoding({ headDim: inputDim / numHeads, maxSeqLength }) : null;
  }

  forward(query: tf.Tensor, key: tf.Tensor, value: tf.Tensor, callOptions?: MultiHeadAttentionCallOptions): [tf.Tensor, tf.Tensor] {
    const name = 'MultiHeadAttention';
    const options = checkCallOptions(`${name}.forward`, callOptions, [...ATTENTION_MASK_OPTIONS, 'cache', 'projectedKeyValue']);
    const { inputDim, numHeads } = this.config;
    checkSequence(name, 'query', query, inputDim, 'inputDim');
    checkSequence(name, 'key', key, inputDim, 'inputDim');
    checkSequence(name, 'value', value, inputDim, 'inputDim');
    checkSameBatch(name, query, key, value);
    const { cache } = options;
    checkCache(name, cache);
    const offset = cache?.length ?? 0;
    const { projectedKeyValue } = options;
    if (projectedKeyValue && cache) {
      throw new MieConfigError(`${name}: pass either cache (self-attention) or projectedKeyValue (cross-attention), not both.`);
    }
    const keyLength = projectedKeyValue ? (projectedKeyValue.keys?.shape?.[2] ?? 0) : offset + (key.shape[1] as number);
    checkAttentionMemory(name, query.shape[0] as number, numHeads, query.shape[1] as number, keyLength, inputDim);
    return tf.tidy(() => {
      let q = splitHeads(this.qProj.forward(query), numHeads); // [b, q, e] -> [b, q, h, d]
      let keys: tf.Tensor;
      let values: tf.Tensor;
      if (projectedKeyValue) {
        ({ keys, values } = projectedKeyValue);
        if (this.rotary) q = this.rotary.rotate(q, { offset });
      } else {
        let k = splitHeads(this.kProj.forward(key), numHeads); // [b, k, e] -> [b, k, h, d]
        if (this.rotary) [q, k] = this.rotary.forward(q, k, { offset });
        keys = headsFirst(k); // [b, k, h, d] -> [b, h, k, d]
        values = headsFirst(splitHeads(this.vProj.forward(value), numHeads)); // -> [b, h, k, d]
        if (cache) ({ keys, values } = cache.append(keys, values, name));
      }
      const allowed = buildAttentionMask(name, options, {
        batch: query.shape[0],
        heads: numHeads,
        queryLength: query.shape[1] as number,
        keyLength: keys.shape[2] as number,
      });
      const [context, weights] = scaledDotProductAttention(headsFirst(q), keys, values, {
        allowed,
        dropout: this.config.dropout,
        training: this.training,
      }); // context [b, h, q, d], weights [b, h, q, k]
      return [this.outProj.forward(mergeHeads(context)), weights];
    });
  }

  /**
   * Projects `key` and `value` (`[batch, keyLength, inputDim]`) into heads once, for repeated
   * cross-attention over the same memory: pass the result as `projectedKeyValue`. With rotary
   * embeddings the keys are rotated at positions 0.. . The caller disposes the returned tensors.
   */
  projectKeyValue(key: tf.Tensor, value: tf.Tensor): ProjectedKeyValue {
    const name = 'MultiHeadAttention.projectKeyValue';
    const { inputDim, numHeads } = this.config;
    checkSequence(name, 'key', key, inputDim, 'inputDim');
    checkSequence(name, 'value', value, inputDim, 'inputDim');
    return tf.tidy(() => {
      let k = splitHeads(this.kProj.forward(key), numHeads);
      if (this.rotary) k = this.rotary.rotate(k);
      return { keys: headsFirst(k), values: headsFirst(splitHeads(this.vProj.forward(value), numHeads)) };
    });
  }

  /**
   * Loads a `torch.nn.MultiheadAttention` state dict: `in_proj_weight [3e, e]` and
   * `in_proj_bias [3e]` split into q, k, v rows; `out_proj.weight`, `out_proj.bias`. Every key
   * and shape is checked before anything is written.
   */
  loadTorchState(state: TorchMultiheadAttentionState): void {
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
