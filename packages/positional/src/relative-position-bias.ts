/**
 * T5's relative position bias (Raffel et al. 2020, "Exploring the Limits of Transfer Learning with
 * a Unified Text-to-Text Transformer", section 2.1; Shaw et al. 2018): one learned scalar per head
 * and bucket of relative distances, added to the attention scores. Bucketing is Hugging Face's
 * `T5Attention._relative_position_bucket` (models/t5/modeling_t5.py), float32 logarithm included.
 * Legend: h heads, q query length, k key length, B numBuckets.
 */
import {
  MieConfigError,
  MieShapeError,
  Module,
  type HeatmapOptions,
  checkAllocation,
  checkBoolean,
  checkOneOf,
  checkOptions,
  checkPositiveInteger,
  errorMessage,
  float32Bytes,
  normal,
  parameter,
  tf,
} from '@mie/core';
import { plotter } from './plot-loader';
import { checkOffset } from './positions';

const NAME = 'RelativePositionBias';

/** Constructor options of {@link RelativePositionBias} (T5's `relative_attention_*` settings). */
export interface RelativePositionBiasOptions {
  /** Number of attention heads: each head has its own bias per bucket. Required; a positive integer. */
  numHeads: number;
  /**
   * Number of buckets (T5's `relative_attention_num_buckets`). Bidirectional: half for keys after
   * the query, half for keys before it, so it must be even and at least 4; unidirectional: at
   * least 2. Default 32.
   */
  numBuckets?: number;
  /**
   * Distance at which the logarithmic buckets end (T5's `relative_attention_max_distance`): every
   * longer distance shares the last bucket. Must exceed the exact range (a quarter of `numBuckets`
   * when bidirectional, half when not). Default 128.
   */
  maxDistance?: number;
  /**
   * `true` (default, T5's encoder): keys before and after a query get different buckets.
   * `false` (T5's decoder, causal): only keys at or before the query are told apart; later keys
   * all share bucket 0 (a causal mask hides them anyway).
   */
  bidirectional?: boolean;
}

/** Options of {@link relativePositionBucket}: the bucketing part of {@link RelativePositionBiasOptions}. */
export interface RelativePositionBucketOptions {
  /** Tell keys after the query from keys before it. Default true. */
  bidirectional?: boolean;
  /** Number of buckets. Default 32. */
  numBuckets?: number;
  /** Distance at which the logarithmic buckets end. Default 128. */
  maxDistance?: number;
}

/** Call options of {@link RelativePositionBias.forward}. */
export interface RelativePositionBiasForwardOptions {
  /**
   * Position of the first query row. Default 0. Query `i` sits at position `offset + i` and key `j`
   * at `j`; when decoding with a key/value cache, pass the number of cached positions (and the
   * cache length plus the new rows as `keyLength`).
   */
  offset?: number;
}

/** Options of {@link RelativePositionBias.visualizeBias} and its SVG sibling. */
export interface VisualizeBiasOptions {
  /** The head shown, in `[0, numHeads)`. Default 0. */
  head?: number;
  /** Query rows. Default 64. */
  queryLength?: number;
  /** Key columns. Default `queryLength`. */
  keyLength?: number;
  /** Position of the first query row. Default 0. */
  offset?: number;
  /** `'bias'` (default): the head's learned bias. `'buckets'`: the bucket index of each cell (no weights). */
  show?: 'bias' | 'buckets';
  /** When given, the image is also written to this path. */
  file?: string;
  /** Title. Default: names the head and the bucketing. */
  title?: string;
  /** Font size of the labels in pixels. Default 12. */
  fontSize?: number;
  /** Pixels per key. Default: fits the plot in about 480 pixels. */
  cellWidth?: number;
  /** Pixels per query. Default: fits the plot in about 480 pixels. */
  cellHeight?: number;
}

/** The resolved options kept in {@link RelativePositionBias.config}. */
export interface RelativePositionBiasConfig {
  /** Number of heads. */
  readonly numHeads: number;
  /** Number of buckets. */
  readonly numBuckets: number;
  /** Distance at which the logarithmic buckets end. */
  readonly maxDistance: number;
  /** Keys after the query have buckets of their own. */
  readonly bidirectional: boolean;
}

const OPTION_KEYS = ['numHeads', 'numBuckets', 'maxDistance', 'bidirectional'] as const;
const BUCKET_KEYS = ['bidirectional', 'numBuckets', 'maxDistance'] as const;
const VISUALIZE_KEYS = ['head', 'queryLength', 'keyLength', 'offset', 'show', 'file', 'title', 'fontSize', 'cellWidth', 'cellHeight'] as const;

/** Checks the bucketing options of `module` (the constructor or `relativePositionBucket`). */
function checkBucketing(module: string, numBuckets: unknown, maxDistance: unknown, bidirectional: unknown): void {
  checkBoolean(module, 'bidirectional', bidirectional);
  checkPositiveInteger(module, 'numBuckets', numBuckets, bidirectional ? 4 : 2);
  if (bidirectional && (numBuckets as number) % 2 !== 0) {
    throw new MieConfigError(errorMessage(module, 'option "numBuckets"', 'must be even when bidirectional (half the buckets for each direction)', numBuckets));
  }
  const maxExact = Math.floor((bidirectional ? (numBuckets as number) / 2 : (numBuckets as number)) / 2);
  checkPositiveInteger(module, 'maxDistance', maxDistance, maxExact + 1);
}

/**
 * T5's bucket of one relative position (`key - query`), unchecked. Half of each direction's
 * buckets hold the distances `0 .. maxExact - 1` exactly; the rest grow logarithmically up to
 * `maxDistance`. Math.fround reproduces PyTorch's float32 arithmetic: HF computes
 * `log(relative_position.float() / max_exact) / log(max_distance / max_exact) * (n - max_exact)`
 * in float32 (the scalars cast to float32), and at some distances float64 would give the bucket
 * below (bidirectional 18 buckets, distance 16: 15 in float32, 14 in float64).
 */
function bucketOf(relativePosition: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let buckets = numBuckets;
  let offset = 0;
  let distance: number;
  if (bidirectional) {
    buckets = Math.floor(buckets / 2);
    if (relativePosition > 0) offset = buckets; // keys after the query
    distance = Math.abs(relativePosition);
  } else {
    distance = -Math.min(relativePosition, 0); // keys after the query fall into bucket 0
  }
  const maxExact = Math.floor(buckets / 2);
  if (distance < maxExact) return offset + distance;
  const f = Math.fround;
  const logRatio = f(Math.log(maxDistance / maxExact)); // a Python float, cast to float32 by torch
  const scaled = f(f(f(Math.log(f(f(distance) / maxExact))) / logRatio) * (buckets - maxExact));
  return offset + Math.min(maxExact + Math.trunc(scaled), buckets - 1);
}

/**
 * The T5 bucket of a relative position `key - query` (negative: the key is earlier), as
 * `T5Attention._relative_position_bucket`: an integer in `[0, numBuckets)`. Bidirectional buckets
 * `0 .. numBuckets/2 - 1` hold keys at or before the query, the upper half keys after it.
 */
export function relativePositionBucket(relativePosition: number, options: RelativePositionBucketOptions = {}): number {
  const module = 'relativePositionBucket';
  checkOptions(module, options, BUCKET_KEYS);
  const { bidirectional = true, numBuckets = 32, maxDistance = 128 } = options;
  checkBucketing(module, numBuckets, maxDistance, bidirectional);
  if (typeof relativePosition !== 'number' || !Number.isSafeInteger(relativePosition)) {
    throw new MieConfigError(errorMessage(module, 'relativePosition', 'must be an integer (key position - query position)', relativePosition));
  }
  return bucketOf(relativePosition, bidirectional, numBuckets, maxDistance);
}

/** A length argument of a call: a positive integer, else a `MieShapeError` naming it. */
function checkLength(module: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new MieShapeError(errorMessage(module, name, 'must be a positive integer', value));
  }
  return value;
}

/**
 * T5's relative position bias: `forward(queryLength, keyLength, { offset })` is the float32 bias
 * `[1, numHeads, queryLength, keyLength]` with `bias[0, h, i, j] = weight[bucket(j - (offset + i)), h]`,
 * for the attention scores (`MultiHeadAttention.forward(x, x, x, { bias })`). One parameter,
 * `weight [numBuckets, numHeads]` (T5's `relative_attention_bias.weight`), drawn from N(0, 0.02^2).
 *
 * ```ts
 * const positions = new RelativePositionBias({ numHeads: 8 }); // T5's 32 buckets up to distance 128
 * const bias = positions.forward(10, 10); // [1, 8, 10, 10]
 * const step = positions.forward(1, 11, { offset: 10 }); // the 11th query over 11 cached keys
 * ```
 */
export class RelativePositionBias extends Module {
  /** The options this module was built from; `new RelativePositionBias(bias.config)` rebuilds it. */
  readonly config: RelativePositionBiasConfig;
  /** One bias per bucket and head `[numBuckets, numHeads]` (state name `weight`). */
  weight: tf.Variable;

  constructor(options: RelativePositionBiasOptions) {
    super();
    checkOptions(NAME, options, OPTION_KEYS);
    const { numHeads, numBuckets = 32, maxDistance = 128, bidirectional = true } = options;
    checkPositiveInteger(NAME, 'numHeads', numHeads);
    checkBucketing(NAME, numBuckets, maxDistance, bidirectional);
    this.config = { numHeads, numBuckets, maxDistance, bidirectional };
    // HF's T5 draws this table from N(0, 1/d_model) (std 0.044 for t5-small's 512); the module
    // does not know d_model, so it takes the 0.02 of GPT-2 and BERT position tables, which is of
    // the same size for common widths and leaves the initial attention close to content-only.
    this.weight = parameter([numBuckets, numHeads], (shape) => normal(shape, 0.02));
  }

  /**
   * The bucket of every (query, key) cell, row-major `[queryLength * keyLength]`: one bucket per
   * distinct relative position (there are `queryLength + keyLength - 1`), then spread out.
   */
  buckets(queryLength: number, keyLength: number, offset = 0): Int32Array {
    checkLength(NAME, 'queryLength', queryLength);
    checkLength(NAME, 'keyLength', keyLength);
    checkOffset(NAME, offset);
    const { numBuckets, maxDistance, bidirectional } = this.config;
    const lowest = -(offset + queryLength - 1); // key 0 against the last query
    const byDistance = new Int32Array(queryLength + keyLength - 1);
    for (let r = 0; r < byDistance.length; r++) byDistance[r] = bucketOf(lowest + r, bidirectional, numBuckets, maxDistance);
    const cells = new Int32Array(queryLength * keyLength);
    for (let i = 0; i < queryLength; i++) {
      for (let j = 0; j < keyLength; j++) cells[i * keyLength + j] = byDistance[j - (offset + i) - lowest];
    }
    return cells;
  }

  /**
   * The bias of queries at positions `offset .. offset + queryLength - 1` over keys at
   * `0 .. keyLength - 1`: float32 `[1, numHeads, queryLength, keyLength]`, differentiable in `weight`.
   * Throws `MieShapeError` for lengths that are not positive integers, `MieConfigError` for a bad `offset`.
   */
  forward(queryLength: number, keyLength: number, options: RelativePositionBiasForwardOptions = {}): tf.Tensor4D {
    checkOptions(`${NAME}.forward`, options, ['offset']);
    checkLength(NAME, 'queryLength', queryLength);
    checkLength(NAME, 'keyLength', keyLength);
    const offset = checkOffset(NAME, options.offset ?? 0);
    if (this.weight.isDisposed) throw new MieConfigError(`${NAME}: the module was disposed; build a new one.`);
    const { numHeads } = this.config;
    checkAllocation(NAME, `bias [1, ${numHeads}, ${queryLength}, ${keyLength}]`, 2 * float32Bytes(numHeads, queryLength, keyLength));
    const cells = this.buckets(queryLength, keyLength, offset);
    return tf.tidy(() => {
      // A gather, as an embedding lookup: its gradient scatters back into the rows of weight.
      const rows = tf.gather(this.weight, tf.tensor1d(cells, 'int32')); // [q*k] -> [q*k, h]
      const perHead = tf.transpose(tf.reshape(rows, [queryLength, keyLength, numHeads]), [2, 0, 1]); // [q, k, h] -> [h, q, k]
      return tf.expandDims(perHead, 0) as tf.Tensor4D; // [h, q, k] -> [1, h, q, k]
    });
  }

  /**
   * What {@link visualizeBias} draws: one head's bias (or the bucket indices) with queries down and
   * keys across, for `@mie/plot`'s `renderHeatmap` or another plotting tool. Reads the weights
   * asynchronously (as GPU backends need).
   */
  async biasHeatmap(options: VisualizeBiasOptions = {}): Promise<HeatmapOptions> {
    const call = `${NAME}.visualizeBias`;
    checkOptions(call, options, VISUALIZE_KEYS);
    const { numHeads, numBuckets, maxDistance, bidirectional } = this.config;
    const head = options.head ?? 0;
    if (typeof head !== 'number' || !Number.isSafeInteger(head) || head < 0 || head >= numHeads) {
      throw new MieConfigError(errorMessage(call, 'option "head"', `must be an integer in [0, ${numHeads})`, head));
    }
    const queryLength = checkPositiveInteger(call, 'queryLength', options.queryLength ?? 64);
    const keyLength = checkPositiveInteger(call, 'keyLength', options.keyLength ?? queryLength);
    const offset = checkOffset(call, options.offset ?? 0);
    const show = checkOneOf(call, 'show', options.show ?? 'bias', ['bias', 'buckets'] as const);
    const cells = this.buckets(queryLength, keyLength, offset);
    let perBucket: number[] = Array.from({ length: numBuckets }, (_, b) => b);
    if (show === 'bias') {
      if (this.weight.isDisposed) throw new MieConfigError(`${NAME}: the module was disposed; build a new one.`);
      const column = tf.tidy(() => tf.reshape(tf.slice(this.weight, [0, head], [numBuckets, 1]), [numBuckets])); // [B, h] -> [B]
      perBucket = Array.from(await column.data());
      column.dispose();
    }
    const values = Array.from({ length: queryLength }, (_, i) => Array.from({ length: keyLength }, (_, j) => perBucket[cells[i * keyLength + j]]));
    const kind = bidirectional ? 'bidirectional' : 'unidirectional';
    return {
      values,
      title:
        options.title ??
        (show === 'bias'
          ? `T5 relative position bias, head ${head} (${kind}, ${numBuckets} buckets, max distance ${maxDistance})`
          : `T5 relative position buckets (${kind}, ${numBuckets} buckets, max distance ${maxDistance})`),
      xLabel: 'key position j',
      yLabel: offset === 0 ? 'query position i' : `query position ${offset} + i`,
      colorbarLabel: show === 'bias' ? 'bias added to the scores' : 'bucket of j \u2212 i',
      colorMap: show === 'bias' ? 'diverging' : 'sequential',
      ...(show === 'buckets' ? { vmin: 0, vmax: numBuckets - 1 } : {}),
      fontSize: options.fontSize,
      cellWidth: options.cellWidth,
      cellHeight: options.cellHeight,
      file: options.file,
    };
  }

  /**
   * Renders one head's bias as a heatmap (queries down, keys across, a diverging colour map): the
   * exact buckets show as diagonals near the main one, the logarithmic buckets as ever wider bands,
   * and every distance beyond `maxDistance` shares the outermost band. Resolves to the PNG bytes
   * and writes them to `file` when given; needs `@mie/plot`.
   */
  async visualizeBias(options: VisualizeBiasOptions = {}): Promise<Uint8Array> {
    const draw = plotter(`${NAME}.visualizeBias`);
    return draw.renderHeatmap(await this.biasHeatmap(options));
  }

  /** The same picture as {@link visualizeBias}, as an SVG document (written to `file` when given). */
  async visualizeBiasSvg(options: VisualizeBiasOptions = {}): Promise<string> {
    const draw = plotter(`${NAME}.visualizeBiasSvg`);
    return draw.renderHeatmapSvg(await this.biasHeatmap(options));
  }
}
