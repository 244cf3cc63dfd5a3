/**
 * Rotary position embedding, RoPE (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
 * Position Embedding"): rotates pairs of query/key dimensions by an angle proportional to the
 * position, so that `q . k` depends on the positions only through their difference. With
 * `scaling`, the angles are stretched for contexts longer than the training one (linear position
 * interpolation, dynamic NTK-aware scaling, YaRN; see rope-scaling.ts).
 * Legend: b batch, s sequence length, h heads, d headDim, d/2 pairs.
 */
import { MieConfigError, Module, buffer, type ForwardMethods, type HeatmapOptions, checkBoolean, checkFeatures, checkOptions, checkPositiveInteger, errorMessage, tf } from '@mie/core';
import { plotter } from './plot-loader';
import { checkCount, checkOffset, checkPositions } from './positions';
import {
  attentionFactor,
  describeScaling,
  inverseFrequencies,
  resolveRotaryScaling,
  type RotaryScaling,
  type RotaryScalingOptions,
} from './rope-scaling';

const NAME = 'RotaryPositionEncoding';

/** Constructor options of {@link RotaryPositionEncoding} (the design's `RotaryPositionEncoding` arguments). */
export interface RotaryPositionEncodingOptions {
  /** Size of each attention head: the last dimension of q and k. Required; a positive even integer. */
  headDim: number;
  /** Number of positions with precomputed angles; `offset + seq` may not exceed it. Default 5000. */
  maxSeqLength?: number;
  /** Base of the frequencies `base^(-2i/headDim)`; a number greater than 1. Default 10000. */
  base?: number;
  /**
   * Which dimensions form a rotated pair. `false` (default): dims `i` and `i + headDim/2`, the
   * "rotate half" convention of GPT-NeoX and Hugging Face LLaMA. `true`: dims `2i` and `2i + 1`, as
   * in the RoFormer paper and GPT-J. The two conventions differ by a fixed permutation of the head
   * dimensions, so checkpoints must be used with the convention they were trained with.
   */
  interleaved?: boolean;
  /**
   * Scaling for contexts longer than the training one, as Hugging Face's `rope_scaling`:
   * `{ type: 'linear' | 'dynamic' | 'yarn', factor, originalMaxSeqLength? }` (see
   * {@link RotaryScalingOptions}). Default `null`: the plain angles `p * base^(-2i/headDim)`.
   */
  scaling?: RotaryScalingOptions | null;
}

/** The resolved options kept in {@link RotaryPositionEncoding.config}. */
export interface RotaryPositionEncodingConfig {
  /** Size of each attention head. */
  readonly headDim: number;
  /** Number of positions covered. */
  readonly maxSeqLength: number;
  /** Base of the frequencies. */
  readonly base: number;
  /** Pairs `2i, 2i + 1` (true) or `i, i + headDim/2` (false). */
  readonly interleaved: boolean;
  /** The scaling with its defaults filled in (`originalMaxSeqLength`), or `null`. */
  readonly scaling: RotaryScaling | null;
}

/** Call options of {@link RotaryPositionEncoding.forward} and {@link RotaryPositionEncoding.rotate}. */
export interface RotaryForwardOptions {
  /**
   * Position of the first row. Default 0. When decoding with a key/value cache, pass the number of
   * cached positions: the new query and key rows get positions `offset, offset + 1, ...`.
   */
  offset?: number;
  /**
   * Length of the whole sequence these rows belong to, cache included: the sequence length that
   * dynamic scaling rescales the base for (HF's `seq_len`, `max(position_ids) + 1`). Default
   * `offset + seq` (in `forward`, the longer of q and k), which is what Hugging Face's dynamic RoPE
   * uses in each forward. Passing the final length of a generation to every step (and to the
   * prompt) gives all positions the same angles, so cached decoding equals one full pass. At least
   * `offset + seq`, at most `maxSeqLength`; only dynamic scaling reads it.
   */
  totalLength?: number;
}

/** Options of {@link RotaryPositionEncoding.getCosSin}. */
export interface RotaryCosSinOptions {
  /** First position. Default 0. */
  offset?: number;
  /** Number of positions. Default `maxSeqLength - offset`. */
  length?: number;
  /** The sequence length dynamic scaling sees (see {@link RotaryForwardOptions.totalLength}). Default `offset + length`. */
  totalLength?: number;
}

/** Options of {@link RotaryPositionEncoding.visualizeScaling} and its SVG sibling. */
export interface VisualizeScalingOptions {
  /** When given, the image is also written to this path. */
  file?: string;
  /** Rows: positions sampled evenly from 0 to `maxSeqLength - 1`. Default `min(64, maxSeqLength)`. */
  maxPositions?: number;
  /** Title. Default: names the scaling. */
  title?: string;
  /** Font size of the labels in pixels. Default 12. */
  fontSize?: number;
  /** Pixels per column. Default: fits the plot in about 480 pixels. */
  cellWidth?: number;
  /** Pixels per row. Default: fits the plot in about 480 pixels. */
  cellHeight?: number;
}

/** Options of {@link RotaryPositionEncoding.visualizeRotation} and its SVG sibling. */
export interface VisualizeRotationOptions {
  /** When given, the image is also written to this path. */
  file?: string;
  /** Positions shown (rows, from 0). Default `min(64, maxSeqLength)`. */
  maxPositions?: number;
  /** Title. Default: describes the angle and the pairing. */
  title?: string;
  /** Font size of the labels in pixels. Default 12. */
  fontSize?: number;
  /** Pixels per pair. Default: fits the plot in about 480 pixels. */
  cellWidth?: number;
  /** Pixels per position. Default: fits the plot in about 480 pixels. */
  cellHeight?: number;
}

const OPTION_KEYS = ['headDim', 'maxSeqLength', 'base', 'interleaved', 'scaling'] as const;
const CALL_KEYS = ['offset', 'totalLength'] as const;
const VISUALIZE_KEYS = ['file', 'maxPositions', 'title', 'fontSize', 'cellWidth', 'cellHeight'] as const;

/** An angle wrapped to [-pi, pi]. */
function wrapAngle(angle: number): number {
  return angle - 2 * Math.PI * Math.round(angle / (2 * Math.PI));
}

/** Colour bar ticks at multiples of pi/2 for wrapped angles. */
const ANGLE_TICKS = [
  { value: -Math.PI, label: '\u2212\u03c0' },
  { value: -Math.PI / 2, label: '\u2212\u03c0/2' },
  { value: 0, label: '0' },
  { value: Math.PI / 2, label: '\u03c0/2' },
  { value: Math.PI, label: '\u03c0' },
];

/**
 * `factor * cos(p * f)` and `factor * sin(p * f)` for positions `offset .. offset + length - 1`,
 * `[length, headDim]` row-major, computed in float64 and rounded once. Column j rotates with pair
 * j mod d/2 (rotate half: HF's cat(freqs, freqs)) or pair floor(j / 2) (interleaved:
 * repeat_interleave(freqs, 2)).
 */
function angleTables(
  frequencies: Float64Array,
  factor: number,
  interleaved: boolean,
  offset: number,
  length: number,
): { cos: Float32Array; sin: Float32Array } {
  const headDim = 2 * frequencies.length;
  const half = frequencies.length;
  const cos = new Float32Array(length * headDim);
  const sin = new Float32Array(length * headDim);
  for (let j = 0; j < headDim; j++) {
    const f = frequencies[interleaved ? Math.floor(j / 2) : j % half];
    for (let r = 0; r < length; r++) {
      const angle = (offset + r) * f;
      cos[r * headDim + j] = factor * Math.cos(angle);
      sin[r * headDim + j] = factor * Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Rotary position embedding (RoPE, Su et al. 2021) for queries and keys `[batch, seq, heads, headDim]`.
 *
 * Pair `i` (dims `i` and `i + headDim/2`, or `2i` and `2i + 1` with `interleaved`) of the row at
 * position `p` is rotated by the angle `p * base^(-2i/headDim)`:
 * `x' = x * cos + rotateHalf(x) * sin`, exactly as Hugging Face LLaMA's `apply_rotary_pos_emb`.
 * With `scaling`, the frequencies are those of HF's linear, dynamic or YaRN `rope_scaling` (and
 * YaRN multiplies cos and sin by its attention factor). It has no parameters; the cos/sin tables
 * are precomputed for `maxSeqLength` positions (dynamic scaling computes the angles of sequences
 * longer than `originalMaxSeqLength` per call).
 */
export class RotaryPositionEncoding extends Module {
  /** Hooks see every rotation: `forward(q, k)` is one call; attention modules call `rotate` once for q and once for k. */
  static override readonly forwardMethods: ForwardMethods = { forward: null, rotate: null };
  /** The options this module was built from; `new RotaryPositionEncoding(rope.config)` rebuilds it. */
  readonly config: RotaryPositionEncodingConfig;
  /** The factor on cos and sin: YaRN's `0.1 ln(factor) + 1`, else 1. */
  readonly attentionFactor: number;
  /**
   * `attentionFactor * cos(p * frequency)` for every position and dimension `[maxSeqLength, headDim]`;
   * not state. With dynamic scaling, the unscaled angles, used while the sequence is no longer than
   * `originalMaxSeqLength`.
   */
  cosTable: tf.Tensor2D;
  /** `attentionFactor * sin(p * frequency)` `[maxSeqLength, headDim]`, as {@link cosTable}; not state. */
  sinTable: tf.Tensor2D;

  constructor(options: RotaryPositionEncodingOptions) {
    super();
    checkOptions(NAME, options, OPTION_KEYS);
    const { headDim, maxSeqLength = 5000, base = 10000, interleaved = false } = options;
    checkPositiveInteger(NAME, 'headDim', headDim);
    if (headDim % 2 !== 0) {
      throw new MieConfigError(errorMessage(NAME, 'option "headDim"', 'must be even: rotary embeddings rotate pairs of dimensions', headDim));
    }
    checkPositiveInteger(NAME, 'maxSeqLength', maxSeqLength);
    if (typeof base !== 'number' || !Number.isFinite(base) || !(base > 1)) {
      throw new MieConfigError(errorMessage(NAME, 'option "base"', 'must be a finite number greater than 1', base));
    }
    checkBoolean(NAME, 'interleaved', interleaved);
    const scaling = resolveRotaryScaling(NAME, options.scaling, maxSeqLength);
    this.config = { headDim, maxSeqLength, base, interleaved, scaling };
    this.attentionFactor = attentionFactor(scaling);

    // The angles of every position for sequences of up to maxSeqLength positions (dynamic scaling:
    // up to originalMaxSeqLength), in float64, rounded to float32 once. Computed once for both
    // tables, and only when they are built (not in a layout pass).
    let tables: { cos: Float32Array; sin: Float32Array } | undefined;
    const build = () => {
      const staticLength = scaling?.type === 'dynamic' ? scaling.originalMaxSeqLength : maxSeqLength;
      tables ??= angleTables(inverseFrequencies(headDim, base, scaling, staticLength), this.attentionFactor, interleaved, 0, maxSeqLength);
      return tables;
    };
    this.cosTable = buffer([maxSeqLength, headDim], () => tf.tensor2d(build().cos, [maxSeqLength, headDim]));
    this.sinTable = buffer([maxSeqLength, headDim], () => tf.tensor2d(build().sin, [maxSeqLength, headDim]));
  }

  /**
   * Rotates queries and keys. Each tensor takes positions `offset .. offset + len - 1` of its own
   * sequence length, so q and k may differ in length (and in heads and batch: grouped-query
   * attention has fewer key heads). To rotate keys from other positions, use {@link rotate}.
   * Dynamic scaling uses one sequence length for both, `totalLength` (default `offset` plus the
   * longer of the two), so `q . k` still depends only on the relative position.
   * @param q `[batch, seqQ, heads, headDim]` float32.
   * @param k `[batch, seqK, kvHeads, headDim]` float32.
   * @returns `[qRotated, kRotated]`, shaped as the inputs.
   */
  forward(q: tf.Tensor, k: tf.Tensor, options: RotaryForwardOptions = {}): [tf.Tensor, tf.Tensor] {
    checkOptions(`${NAME}.forward`, options, CALL_KEYS);
    const offset = checkOffset(NAME, options.offset ?? 0);
    this.#checkInput('query q', q, offset);
    this.#checkInput('key k', k, offset);
    const rows = Math.max(q.shape[1] as number, k.shape[1] as number);
    const totalLength = this.#totalLength(options.totalLength, offset, rows);
    return tf.tidy(() => [this.#apply(q, offset, totalLength), this.#apply(k, offset, totalLength)]);
  }

  /**
   * Rotates one tensor `[batch, seq, heads, headDim]` whose first row is at position `offset`
   * (default 0): `forward(q, k)` is `[rotate(q), rotate(k)]` (for q and k of one length).
   */
  rotate(x: tf.Tensor, options: RotaryForwardOptions = {}): tf.Tensor {
    checkOptions(`${NAME}.rotate`, options, CALL_KEYS);
    const offset = checkOffset(NAME, options.offset ?? 0);
    this.#checkInput('input x', x, offset);
    const totalLength = this.#totalLength(options.totalLength, offset, x.shape[1] as number);
    return tf.tidy(() => this.#apply(x, offset, totalLength));
  }

  /**
   * The inverse frequencies of the `headDim / 2` pairs, in radians per position (float64): the
   * angle of pair `i` at position `p` is `p * inverseFrequencies()[i]`. Only dynamic scaling
   * depends on `totalLength` (default `maxSeqLength`, the most stretched).
   */
  inverseFrequencies({ totalLength }: { totalLength?: number } = {}): number[] {
    const { headDim, base, scaling, maxSeqLength } = this.config;
    const length = totalLength ?? maxSeqLength;
    checkCount(NAME, 'totalLength', length, maxSeqLength);
    return Array.from(inverseFrequencies(headDim, base, scaling, length));
  }

  /**
   * The tables a call uses: `[cos, sin]`, each `[length, headDim]` float32, for positions
   * `offset .. offset + length - 1` (attention factor included), as new tensors the caller disposes.
   */
  getCosSin(options: RotaryCosSinOptions = {}): [tf.Tensor2D, tf.Tensor2D] {
    checkOptions(`${NAME}.getCosSin`, options, ['offset', 'length', 'totalLength']);
    const offset = checkOffset(NAME, options.offset ?? 0);
    const length = options.length ?? this.config.maxSeqLength - offset;
    checkPositiveInteger(NAME, 'length', length);
    checkPositions(NAME, 'getCosSin', length, offset, this.config.maxSeqLength);
    this.#checkLive();
    const totalLength = this.#totalLength(options.totalLength, offset, length);
    return tf.tidy(() => this.#tables(offset, length, totalLength));
  }

  #checkLive(): void {
    if (this.cosTable.isDisposed) throw new MieConfigError(`${NAME}: the module was disposed; build a new one.`);
  }

  #checkInput(argument: string, x: tf.Tensor, offset: number): void {
    checkFeatures(NAME, argument, x, this.config.headDim, 'headDim', 4);
    checkPositions(NAME, argument, (x as tf.Tensor4D).shape[1], offset, this.config.maxSeqLength);
    this.#checkLive();
  }

  /** The call option `totalLength`: an integer in `[offset + rows, maxSeqLength]`, default `offset + rows`. */
  #totalLength(totalLength: unknown, offset: number, rows: number): number {
    if (totalLength === undefined) return offset + rows;
    const { maxSeqLength } = this.config;
    if (typeof totalLength !== 'number' || !Number.isSafeInteger(totalLength) || totalLength < offset + rows || totalLength > maxSeqLength) {
      throw new MieConfigError(
        errorMessage(NAME, 'option "totalLength"', `must be an integer in [offset + seq = ${offset + rows}, maxSeqLength = ${maxSeqLength}] (the length of the whole sequence)`, totalLength),
      );
    }
    return totalLength;
  }

  /** cos and sin `[s, d]` for positions `offset .. offset + s - 1` of a sequence of `totalLength` positions. */
  #tables(offset: number, s: number, totalLength: number): [tf.Tensor2D, tf.Tensor2D] {
    const { headDim, base, interleaved, scaling } = this.config;
    if (scaling?.type === 'dynamic' && totalLength > scaling.originalMaxSeqLength) {
      // HF's dynamic RoPE recomputes inv_freq for seq_len = totalLength: these angles are new.
      const { cos, sin } = angleTables(inverseFrequencies(headDim, base, scaling, totalLength), 1, interleaved, offset, s);
      return [tf.tensor2d(cos, [s, headDim]), tf.tensor2d(sin, [s, headDim])];
    }
    return [tf.slice(this.cosTable, [offset, 0], [s, headDim]), tf.slice(this.sinTable, [offset, 0], [s, headDim])];
  }

  /** `x * cos + rotateHalf(x) * sin` with the angles of positions `offset .. offset + s - 1`. */
  #apply(x: tf.Tensor, offset: number, totalLength: number): tf.Tensor {
    const [, s, , d] = x.shape;
    const [cosRows, sinRows] = this.#tables(offset, s, totalLength);
    const cos = tf.reshape(cosRows, [1, s, 1, d]); // [s, d] -> [1, s, 1, d]
    const sin = tf.reshape(sinRows, [1, s, 1, d]);
    return tf.add(tf.mul(x, cos), tf.mul(this.#rotatePairs(x), sin));
  }

  /**
   * The 90-degree turn of each pair, (a, b) -> (-b, a). Built from slice/concat/neg because
   * stridedSlice and einsum have no gradients in tfjs.
   */
  #rotatePairs(x: tf.Tensor): tf.Tensor {
    const [b, s, h, d] = x.shape;
    const half = d / 2;
    if (!this.config.interleaved) {
      // HF rotate_half: cat(-x[..., d/2:], x[..., :d/2]).
      const first = tf.slice(x, [0, 0, 0, 0], [b, s, h, half]);
      const second = tf.slice(x, [0, 0, 0, half], [b, s, h, half]);
      return tf.concat([tf.neg(second), first], 3);
    }
    // RoFormer rotate_every_two: (x[2i], x[2i+1]) -> (-x[2i+1], x[2i]). Rank 3, not the natural
    // [b, s, h, d/2, 2]: tfjs-backend-webgpu 4.22 emits invalid WGSL for a rank-5 Pad, the
    // gradient of a rank-5 slice.
    const rows = b * s * h;
    const pairs = tf.reshape(x, [rows, half, 2]); // [b, s, h, d] -> [b*s*h, d/2, 2]
    const even = tf.slice(pairs, [0, 0, 0], [rows, half, 1]);
    const odd = tf.slice(pairs, [0, 0, 1], [rows, half, 1]);
    return tf.reshape(tf.concat([tf.neg(odd), even], 2), [b, s, h, d]); // [b*s*h, d/2, 2] -> [b, s, h, d]
  }

  /**
   * What {@link visualizeRotation} draws: the rotation angle of each pair (columns) at each position
   * (rows), wrapped to [-pi, pi], for `@mie/plot`'s `renderHeatmap` or another plotting tool. With
   * scaling, the scaled angles of a sequence of `maxPositions` positions.
   */
  rotationHeatmap(options: VisualizeRotationOptions = {}): HeatmapOptions {
    checkOptions(`${NAME}.visualizeRotation`, options, VISUALIZE_KEYS);
    const { headDim, maxSeqLength, base, interleaved, scaling } = this.config;
    const positions = checkCount(NAME, 'maxPositions', options.maxPositions ?? Math.min(64, maxSeqLength), maxSeqLength);
    const half = headDim / 2;
    const frequencies = inverseFrequencies(headDim, base, scaling, positions);
    const values = Array.from({ length: positions }, (_, p) => Array.from({ length: half }, (_, i) => wrapAngle(p * frequencies[i])));
    const pairing = interleaved ? 'dims 2i, 2i+1' : `dims i, i+${half}`;
    const title = scaling
      ? `Rotary angle per position and pair (${describeScaling(scaling)})`
      : `Rotary angle p \u00b7 ${base}^(\u22122i/${headDim}) per position and pair`;
    return {
      values,
      title: options.title ?? title,
      xLabel: `pair i (${pairing}); frequency falls with i`,
      yLabel: 'position p',
      colorbarLabel: 'rotation angle (rad, wrapped to \u00b1\u03c0)',
      colorbarTicks: ANGLE_TICKS,
      colorMap: 'cyclic',
      vmin: -Math.PI,
      vmax: Math.PI,
      fontSize: options.fontSize,
      cellWidth: options.cellWidth,
      cellHeight: options.cellHeight,
      file: options.file,
    };
  }

  /**
   * Renders how pairs of dimensions rotate with position: a heatmap of the rotation angle of each
   * pair at each position, wrapped to [-pi, pi] on a cyclic colour map (equal colours at -pi and pi).
   * Fast pairs (small i) cycle every few positions; slow ones barely turn. Resolves to the PNG bytes
   * and writes them to `file` when given. The design's `visualize_rotation()`.
   */
  async visualizeRotation(options: VisualizeRotationOptions = {}): Promise<Uint8Array> {
    return plotter(`${NAME}.visualizeRotation`).renderHeatmap(this.rotationHeatmap(options));
  }

  /** The same picture as {@link visualizeRotation}, as an SVG document (written to `file` when given). */
  async visualizeRotationSvg(options: VisualizeRotationOptions = {}): Promise<string> {
    return plotter(`${NAME}.visualizeRotationSvg`).renderHeatmapSvg(this.rotationHeatmap(options));
  }

  /**
   * What {@link visualizeScaling} draws: the wrapped rotation angles of the unscaled frequencies
   * (left block) next to the scaled ones (right block, after a grey gap column), pair by pair, at
   * positions sampled evenly over `[0, maxSeqLength)`. A grey row marks `originalMaxSeqLength`
   * when it falls inside (dynamic and YaRN). With dynamic scaling, the row of position `p` uses the
   * sequence length `p + 1`: the angles the newest token gets in token-by-token decoding.
   */
  scalingHeatmap(options: VisualizeScalingOptions = {}): HeatmapOptions {
    checkOptions(`${NAME}.visualizeScaling`, options, VISUALIZE_KEYS);
    const { headDim, maxSeqLength, base, scaling } = this.config;
    if (scaling === null) {
      throw new MieConfigError(`${NAME}.visualizeScaling: this module has no scaling to show; construct it with the option "scaling" ({ type, factor, originalMaxSeqLength? }).`);
    }
    const rows = checkCount(NAME, 'maxPositions', options.maxPositions ?? Math.min(64, maxSeqLength), maxSeqLength);
    const half = headDim / 2;
    const positions = Array.from({ length: rows }, (_, r) => (rows === 1 ? 0 : Math.round((r * (maxSeqLength - 1)) / (rows - 1))));
    const unscaled = inverseFrequencies(headDim, base, null, maxSeqLength);
    const staticScaled = scaling.type === 'dynamic' ? null : inverseFrequencies(headDim, base, scaling, maxSeqLength);
    const row = (p: number) => {
      const scaled = staticScaled ?? inverseFrequencies(headDim, base, scaling, p + 1);
      return [...Array.from(unscaled, (f) => wrapAngle(p * f)), Number.NaN, ...Array.from(scaled, (f) => wrapAngle(p * f))];
    };
    const values: number[][] = [];
    const yTickLabels: string[] = [];
    const boundary = scaling.type === 'linear' ? Infinity : scaling.originalMaxSeqLength;
    for (const [r, p] of positions.entries()) {
      if (r > 0 && positions[r - 1] < boundary && p >= boundary) {
        values.push(Array.from({ length: 2 * half + 1 }, () => Number.NaN));
        yTickLabels.push('');
      }
      values.push(row(p));
      yTickLabels.push(String(p));
    }
    const pairs = Array.from({ length: half }, (_, i) => String(i));
    const factorNote = this.attentionFactor === 1 ? '' : `; cos, sin \u00d7${this.attentionFactor.toFixed(4)}`;
    return {
      values,
      title: options.title ?? `Rotary angles, unscaled | ${describeScaling(scaling)}${factorNote}`,
      xLabel: 'pair i: unscaled (left) | scaled (right)',
      yLabel: boundary < maxSeqLength ? `position p (grey row: originalMaxSeqLength ${boundary})` : 'position p',
      xTickLabels: [...pairs, '', ...pairs],
      yTickLabels,
      colorbarLabel: 'rotation angle (rad, wrapped to \u00b1\u03c0)',
      colorbarTicks: ANGLE_TICKS,
      colorMap: 'cyclic',
      vmin: -Math.PI,
      vmax: Math.PI,
      fontSize: options.fontSize,
      cellWidth: options.cellWidth,
      cellHeight: options.cellHeight,
      file: options.file,
    };
  }

  /**
   * Renders what the scaling does to the rotation angles: unscaled and scaled angles side by side
   * (see {@link scalingHeatmap}). Scaled pairs turn more slowly (linear: all of them; YaRN: only
   * the slow pairs; dynamic: only past `originalMaxSeqLength`). Resolves to the PNG bytes and
   * writes them to `file` when given; needs `@mie/plot`.
   */
  async visualizeScaling(options: VisualizeScalingOptions = {}): Promise<Uint8Array> {
    return plotter(`${NAME}.visualizeScaling`).renderHeatmap(this.scalingHeatmap(options));
  }

  /** The same picture as {@link visualizeScaling}, as an SVG document (written to `file` when given). */
  async visualizeScalingSvg(options: VisualizeScalingOptions = {}): Promise<string> {
    return plotter(`${NAME}.visualizeScalingSvg`).renderHeatmapSvg(this.scalingHeatmap(options));
  }
}
