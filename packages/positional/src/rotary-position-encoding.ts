/**
 * Rotary position embedding, RoPE (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
 * Position Embedding"): rotates pairs of query/key dimensions by an angle proportional to the
 * position, so that `q . k` depends on the positions only through their difference.
 * Legend: b batch, s sequence length, h heads, d headDim, d/2 pairs.
 */
import { MieConfigError, Module, buffer, type ForwardMethods, type HeatmapOptions, checkBoolean, checkFeatures, checkOptions, checkPositiveInteger, errorMessage, tf } from '@mie/core';
import { plotter } from './plot-loader';
import { checkCount, checkOffset, checkPositions } from './positions';

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
}

/** Call options of {@link RotaryPositionEncoding.forward} and {@link RotaryPositionEncoding.rotate}. */
export interface RotaryForwardOptions {
  /**
   * Position of the first row. Default 0. When decoding with a key/value cache, pass the number of
   * cached positions: the new query and key rows get positions `offset, offset + 1, ...`.
   */
  offset?: number;
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

const OPTION_KEYS = ['headDim', 'maxSeqLength', 'base', 'interleaved'] as const;
const VISUALIZE_KEYS = ['file', 'maxPositions', 'title', 'fontSize', 'cellWidth', 'cellHeight'] as const;

/** The frequency of pair `i`: `base^(-2i/headDim)` radians per position. */
function frequency(i: number, headDim: number, base: number): number {
  return base ** (-(2 * i) / headDim);
}

/**
 * Rotary position embedding (RoPE, Su et al. 2021) for queries and keys `[batch, seq, heads, headDim]`.
 *
 * Pair `i` (dims `i` and `i + headDim/2`, or `2i` and `2i + 1` with `interleaved`) of the row at
 * position `p` is rotated by the angle `p * base^(-2i/headDim)`:
 * `x' = x * cos + rotateHalf(x) * sin`, exactly as Hugging Face LLaMA's `apply_rotary_pos_emb`.
 * It has no parameters; the cos/sin tables are precomputed for `maxSeqLength` positions.
 */
export class RotaryPositionEncoding extends Module {
  /** Hooks see every rotation: `forward(q, k)` is one call; attention modules call `rotate` once for q and once for k. */
  static override readonly forwardMethods: ForwardMethods = { forward: null, rotate: null };
  /** The options this module was built from; `new RotaryPositionEncoding(rope.config)` rebuilds it. */
  readonly config: Required<RotaryPositionEncodingOptions>;
  /** `cos(p * frequency)` for every position and dimension `[maxSeqLength, headDim]`; not state. */
  cosTable: tf.Tensor2D;
  /** `sin(p * frequency)` for every position and dimension `[maxSeqLength, headDim]`; not state. */
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
    this.config = { headDim, maxSeqLength, base, interleaved };

    // Angles in float64, rounded to float32 once. Column j rotates with pair j mod d/2 (rotate
    // half: HF's cat(freqs, freqs)) or pair floor(j / 2) (interleaved: repeat_interleave(freqs, 2)).
    // Computed once for both tables, and only when they are built (not in a layout pass).
    let angles: { cos: Float32Array; sin: Float32Array } | undefined;
    const tables = () => {
      if (angles) return angles;
      const half = headDim / 2;
      const cos = new Float32Array(maxSeqLength * headDim);
      const sin = new Float32Array(maxSeqLength * headDim);
      for (let j = 0; j < headDim; j++) {
        const f = frequency(interleaved ? Math.floor(j / 2) : j % half, headDim, base);
        for (let p = 0; p < maxSeqLength; p++) {
          cos[p * headDim + j] = Math.cos(p * f);
          sin[p * headDim + j] = Math.sin(p * f);
        }
      }
      return (angles = { cos, sin });
    };
    this.cosTable = buffer([maxSeqLength, headDim], () => tf.tensor2d(tables().cos, [maxSeqLength, headDim]));
    this.sinTable = buffer([maxSeqLength, headDim], () => tf.tensor2d(tables().sin, [maxSeqLength, headDim]));
  }

  /**
   * Rotates queries and keys. Each tensor takes positions `offset .. offset + len - 1` of its own
   * sequence length, so q and k may differ in length (and in heads and batch: grouped-query
   * attention has fewer key heads). To rotate keys from other positions, use {@link rotate}.
   * @param q `[batch, seqQ, heads, headDim]` float32.
   * @param k `[batch, seqK, kvHeads, headDim]` float32.
   * @returns `[qRotated, kRotated]`, shaped as the inputs.
   */
  forward(q: tf.Tensor, k: tf.Tensor, options: RotaryForwardOptions = {}): [tf.Tensor, tf.Tensor] {
    checkOptions(`${NAME}.forward`, options, ['offset']);
    const offset = checkOffset(NAME, options.offset ?? 0);
    this.#checkInput('query q', q, offset);
    this.#checkInput('key k', k, offset);
    return tf.tidy(() => [this.#apply(q, offset), this.#apply(k, offset)]);
  }

  /**
   * Rotates one tensor `[batch, seq, heads, headDim]` whose first row is at position `offset`
   * (default 0): `forward(q, k)` is `[rotate(q), rotate(k)]`.
   */
  rotate(x: tf.Tensor, options: RotaryForwardOptions = {}): tf.Tensor {
    checkOptions(`${NAME}.rotate`, options, ['offset']);
    const offset = checkOffset(NAME, options.offset ?? 0);
    this.#checkInput('input x', x, offset);
    return tf.tidy(() => this.#apply(x, offset));
  }

  #checkInput(argument: string, x: tf.Tensor, offset: number): void {
    checkFeatures(NAME, argument, x, this.config.headDim, 'headDim', 4);
    checkPositions(NAME, argument, (x as tf.Tensor4D).shape[1], offset, this.config.maxSeqLength);
    if (this.cosTable.isDisposed) throw new MieConfigError(`${NAME}: the module was disposed; build a new one.`);
  }

  /** `x * cos + rotateHalf(x) * sin` with the angles of positions `offset .. offset + s - 1`. */
  #apply(x: tf.Tensor, offset: number): tf.Tensor {
    const [, s, , d] = x.shape;
    const cos = tf.reshape(tf.slice(this.cosTable, [offset, 0], [s, d]), [1, s, 1, d]); // [s, d] -> [1, s, 1, d]
    const sin = tf.reshape(tf.slice(this.sinTable, [offset, 0], [s, d]), [1, s, 1, d]);
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
   * (rows), wrapped to [-pi, pi], for `@mie/plot`'s `renderHeatmap` or another plotting tool.
   */
  rotationHeatmap(options: VisualizeRotationOptions = {}): HeatmapOptions {
    checkOptions(`${NAME}.visualizeRotation`, options, VISUALIZE_KEYS);
    const { headDim, maxSeqLength, base, interleaved } = this.config;
    const positions = checkCount(NAME, 'maxPositions', options.maxPositions ?? Math.min(64, maxSeqLength), maxSeqLength);
    const half = headDim / 2;
    const values = Array.from({ length: positions }, (_, p) =>
      Array.from({ length: half }, (_, i) => {
        const angle = p * frequency(i, headDim, base);
        return angle - 2 * Math.PI * Math.round(angle / (2 * Math.PI)); // wrapped to [-pi, pi]
      }),
    );
    const pairing = interleaved ? 'dims 2i, 2i+1' : `dims i, i+${half}`;
    return {
      values,
      title: options.title ?? `Rotary angle p \u00b7 ${base}^(\u22122i/${headDim}) per position and pair`,
      xLabel: `pair i (${pairing}); frequency falls with i`,
      yLabel: 'position p',
      colorbarLabel: 'rotation angle (rad, wrapped to \u00b1\u03c0)',
      colorbarTicks: [
        { value: -Math.PI, label: '\u2212\u03c0' },
        { value: -Math.PI / 2, label: '\u2212\u03c0/2' },
        { value: 0, label: '0' },
        { value: Math.PI / 2, label: '\u03c0/2' },
        { value: Math.PI, label: '\u03c0' },
      ],
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
}
