/**
 * Absolute position encodings added to token embeddings: the fixed sinusoids of "Attention Is All
 * You Need" (Vaswani et al. 2017, section 3.5) or a learned table (BERT, GPT-2).
 * Legend: b batch, t sequence length, d dModel.
 */
import {
  MieConfigError,
  Module,
  type HeatmapOptions,
  checkDropout,
  checkFeatures,
  checkOneOf,
  checkOptions,
  checkPositiveInteger,
  dropout,
  buffer,
  normal,
  parameter,
  tf,
} from '@mie/core';
import { plotter } from './plot-loader';
import { checkCount, checkOffset, checkPositions } from './positions';

const NAME = 'PositionalEncoding';

/** How positions are encoded: fixed sinusoids or a trained table. */
export type EncodingType = 'sinusoidal' | 'learned';

/** The encoding types accepted by `encodingType`. */
export const ENCODING_TYPES: readonly EncodingType[] = ['sinusoidal', 'learned'];

/** Constructor options of {@link PositionalEncoding} (the design's `PositionalEncoding` arguments). */
export interface PositionalEncodingOptions {
  /** Embedding size: the last dimension of the inputs. Required; a positive integer. */
  dModel: number;
  /** Number of positions that have an encoding; `offset + seq` may not exceed it. Default 5000. */
  maxSeqLength?: number;
  /** Dropout probability in [0, 1), applied after adding the encodings (training mode only). Default 0.1. */
  dropout?: number;
  /**
   * `'sinusoidal'` (default): the fixed table of Vaswani et al., not state and not trained.
   * `'learned'`: a trained parameter `weight [maxSeqLength, dModel]`, initialised from N(0, 0.02^2).
   */
  encodingType?: EncodingType;
}

/** Call options of {@link PositionalEncoding.forward}. */
export interface PositionalEncodingForwardOptions {
  /**
   * Position of the first row of `x`. Default 0. With a key/value cache, pass the number of cached
   * positions so that a new token at step `n` gets the encoding of position `n`.
   */
  offset?: number;
}

/** Options of {@link PositionalEncoding.visualizeEncodings} and its SVG sibling. */
export interface VisualizeEncodingsOptions {
  /** When given, the image is also written to this path. */
  file?: string;
  /** Positions shown (rows, from 0). Default `min(100, maxSeqLength)`. */
  maxPositions?: number;
  /** Embedding dimensions shown (columns, from 0). Default `dModel`. */
  maxDimensions?: number;
  /** Title. Default: names the encoding type and `dModel`. */
  title?: string;
  /** Font size of the labels in pixels. Default 12. */
  fontSize?: number;
  /** Pixels per dimension. Default: fits the plot in about 480 pixels. */
  cellWidth?: number;
  /** Pixels per position. Default: fits the plot in about 480 pixels. */
  cellHeight?: number;
}

const OPTION_KEYS = ['dModel', 'maxSeqLength', 'dropout', 'encodingType'] as const;
const VISUALIZE_KEYS = ['file', 'maxPositions', 'maxDimensions', 'title', 'fontSize', 'cellWidth', 'cellHeight'] as const;

/**
 * The sinusoidal table `PE[p, 2i] = sin(p / 10000^(2i/d))`, `PE[p, 2i+1] = cos(p / 10000^(2i/d))` for
 * positions `0 .. numPositions - 1`, as a float32 tensor `[numPositions, dModel]`. Computed in
 * float64 and rounded once. With an odd `dModel` the last column is a sine: there is one fewer
 * cosine column than sine columns (as PyTorch's `pe[:, 1::2] = cos(...)` leaves it).
 */
export function sinusoidalEncodings(numPositions: number, dModel: number): tf.Tensor2D {
  checkPositiveInteger('sinusoidalEncodings', 'numPositions', numPositions);
  checkPositiveInteger('sinusoidalEncodings', 'dModel', dModel);
  const values = new Float32Array(numPositions * dModel);
  for (let column = 0; column < dModel; column += 2) {
    const frequency = 10000 ** (-column / dModel); // 1 / 10000^(2i/d) with column = 2i
    for (let p = 0; p < numPositions; p++) {
      const angle = p * frequency;
      values[p * dModel + column] = Math.sin(angle);
      if (column + 1 < dModel) values[p * dModel + column + 1] = Math.cos(angle);
    }
  }
  return tf.tensor2d(values, [numPositions, dModel], 'float32');
}

/**
 * Adds absolute position encodings to `[batch, seq, dModel]` inputs, then applies dropout
 * (Vaswani et al. 2017, "Attention Is All You Need", section 3.5).
 *
 * `forward(x, { offset })` adds the encodings of positions `offset .. offset + seq - 1`.
 */
export class PositionalEncoding extends Module {
  /** The options this module was built from; `new PositionalEncoding(pe.config)` rebuilds it. */
  readonly config: Required<PositionalEncodingOptions>;
  /** The learned encodings `[maxSeqLength, dModel]` (state); only when `encodingType` is `'learned'`. */
  weight?: tf.Variable;
  /**
   * The precomputed sinusoidal table `[maxSeqLength, dModel]`; only when `encodingType` is
   * `'sinusoidal'`. Owned by the module (freed by `dispose()`), but not state: it is not in
   * `stateDict()` and not saved, as PyTorch's `register_buffer(..., persistent=False)`.
   */
  table?: tf.Tensor2D;

  /** The class name that error messages start with (a subclass names itself). */
  protected get moduleName(): string {
    return NAME;
  }

  constructor(options: PositionalEncodingOptions) {
    super();
    checkOptions(this.moduleName, options, OPTION_KEYS);
    const { dModel, maxSeqLength = 5000, dropout: rate = 0.1, encodingType = 'sinusoidal' } = options;
    checkPositiveInteger(this.moduleName, 'dModel', dModel);
    checkPositiveInteger(this.moduleName, 'maxSeqLength', maxSeqLength);
    checkDropout(this.moduleName, rate);
    checkOneOf(this.moduleName, 'encodingType', encodingType, ENCODING_TYPES);
    this.config = { dModel, maxSeqLength, dropout: rate, encodingType };
    if (encodingType === 'learned') {
      // GPT-2 / BERT initialise position tables with N(0, 0.02^2): small next to the token
      // embeddings, unlike nn.Embedding's N(0, 1), which would drown them.
      this.weight = parameter([maxSeqLength, dModel], (shape) => normal(shape, 0.02));
    } else {
      this.table = buffer([maxSeqLength, dModel], () => sinusoidalEncodings(maxSeqLength, dModel));
    }
  }

  /** The tensor holding every position's encoding `[maxSeqLength, dModel]`. */
  #encodings(): tf.Tensor2D {
    const encodings = (this.weight ?? this.table) as tf.Tensor2D | undefined;
    if (!encodings || encodings.isDisposed) {
      throw new MieConfigError(`${this.moduleName}: the module was disposed; build a new one.`);
    }
    return encodings;
  }

  /**
   * Returns `x + PE[offset : offset + seq]`, with dropout in training mode.
   * @param x `[batch, seq, dModel]` float32.
   * @param options `offset`: position of the first row (default 0).
   */
  forward(x: tf.Tensor, options: PositionalEncodingForwardOptions = {}): tf.Tensor {
    checkOptions(`${this.moduleName}.forward`, options, ['offset']);
    checkFeatures(this.moduleName, 'input x', x, this.config.dModel, 'dModel', 3);
    const offset = checkOffset(this.moduleName, options.offset ?? 0);
    const [, seq, dModel] = x.shape;
    checkPositions(this.moduleName, 'input x', seq, offset, this.config.maxSeqLength);
    const encodings = this.#encodings();
    return tf.tidy(() => {
      const positions = tf.slice(encodings, [offset, 0], [seq, dModel]); // [t, d]
      return dropout(tf.add(x, positions), this.config.dropout, this.training); // [b, t, d] + [t, d]
    });
  }

  /**
   * The encodings of positions `offset .. offset + length - 1` as a new `[length, dModel]` tensor
   * (the caller disposes it). Defaults: all positions.
   */
  getEncodings({ length, offset = 0 }: { length?: number; offset?: number } = {}): tf.Tensor2D {
    checkOffset(this.moduleName, offset);
    const count = length ?? this.config.maxSeqLength - offset;
    checkPositiveInteger(this.moduleName, 'length', count);
    checkPositions(this.moduleName, 'getEncodings', count, offset, this.config.maxSeqLength);
    const encodings = this.#encodings();
    return tf.tidy(() => tf.slice(encodings, [offset, 0], [count, this.config.dModel]));
  }

  /**
   * What {@link visualizeEncodings} draws: the encodings of the first positions (rows) by embedding
   * dimension (columns), with labels, for `@mie/plot`'s `renderHeatmap` or another plotting tool.
   * Reads the table asynchronously (as GPU backends need).
   */
  async encodingHeatmap(options: VisualizeEncodingsOptions = {}): Promise<HeatmapOptions> {
    checkOptions(`${this.moduleName}.visualizeEncodings`, options, VISUALIZE_KEYS);
    const { dModel, maxSeqLength, encodingType } = this.config;
    const positions = checkCount(this.moduleName, 'maxPositions', options.maxPositions ?? Math.min(100, maxSeqLength), maxSeqLength);
    const dimensions = checkCount(this.moduleName, 'maxDimensions', options.maxDimensions ?? dModel, dModel);
    const encodings = this.#encodings();
    const shown = tf.tidy(() => tf.slice(encodings, [0, 0], [positions, dimensions]));
    const values = (await shown.array()) as number[][];
    shown.dispose();
    const kind = encodingType === 'sinusoidal' ? 'Sinusoidal' : 'Learned';
    return {
      values,
      title: options.title ?? `${kind} positional encoding (dModel = ${dModel})`,
      xLabel: dimensions < dModel ? `embedding dimension (first ${dimensions} of ${dModel})` : 'embedding dimension',
      yLabel: 'position',
      colorbarLabel: 'encoding value',
      colorMap: 'diverging',
      // The sinusoids span [-1, 1]; a learned table gets limits from its own values.
      ...(encodingType === 'sinusoidal' ? { vmin: -1, vmax: 1 } : {}),
      fontSize: options.fontSize,
      cellWidth: options.cellWidth,
      cellHeight: options.cellHeight,
      file: options.file,
    };
  }

  /**
   * Renders the encodings as a heatmap PNG (positions down, embedding dimensions across, a diverging
   * colour map: blue -1, white 0, red +1, with a colour bar). Resolves to the PNG bytes and writes
   * them to `file` when given (Node). The design's `visualize_encodings()`. Drawn by the optional
   * package `@mie/plot` (install it; in a browser bundle, import it once).
   */
  async visualizeEncodings(options: VisualizeEncodingsOptions = {}): Promise<Uint8Array> {
    const draw = plotter(`${this.moduleName}.visualizeEncodings`);
    return draw.renderHeatmap(await this.encodingHeatmap(options));
  }

  /** The same heatmap as {@link visualizeEncodings}, as an SVG document (written to `file` when given). */
  async visualizeEncodingsSvg(options: VisualizeEncodingsOptions = {}): Promise<string> {
    const draw = plotter(`${this.moduleName}.visualizeEncodingsSvg`);
    return draw.renderHeatmapSvg(await this.encodingHeatmap(options));
  }
}
