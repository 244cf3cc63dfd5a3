/**
 * The fixed sinusoidal position encodings of "Attention Is All You Need" (Vaswani et al. 2017,
 * section 3.5) as a class of their own: the design's `PositionalEncoding --> SinusoidalEncoding`.
 * Legend: b batch, t sequence length, d dModel.
 */
import { MieConfigError, checkDropout, checkOptions, checkPositiveInteger, errorMessage } from '@mie/core';
import { PositionalEncoding } from './positional-encoding';

const NAME = 'SinusoidalEncoding';

/** Constructor options of {@link SinusoidalEncoding}. */
export interface SinusoidalEncodingOptions {
  /** Embedding size: the last dimension of the inputs. Required; a positive integer. */
  dModel: number;
  /** Number of positions that have an encoding; `offset + seq` may not exceed it. Default 5000. */
  maxSeqLength?: number;
  /** Dropout probability in [0, 1), applied after adding the encodings (training mode only). Default 0.1. */
  dropout?: number;
  /**
   * Always `'sinusoidal'` (the default). Accepted so that the `config` of this module, and that of
   * a sinusoidal {@link PositionalEncoding}, rebuild it; any other value is a `MieConfigError`.
   */
  encodingType?: 'sinusoidal';
}

const OPTION_KEYS = ['dModel', 'maxSeqLength', 'dropout', 'encodingType'] as const;

/**
 * Adds the sinusoidal encodings `PE[p, 2i] = sin(p / 10000^(2i/d))`, `PE[p, 2i+1] = cos(p / 10000^(2i/d))`
 * to `[batch, seq, dModel]` inputs, then applies dropout (Vaswani et al. 2017, section 3.5).
 *
 * Exactly `new PositionalEncoding({ ...options, encodingType: 'sinusoidal' })`, with errors that
 * name `SinusoidalEncoding`: the same table (not state, not saved), `forward(x, { offset })`,
 * `getEncodings` and the heatmaps. No parameters.
 */
export class SinusoidalEncoding extends PositionalEncoding {
  /** The options this module was built from; `new SinusoidalEncoding(encoding.config)` rebuilds it. */
  declare readonly config: Required<SinusoidalEncodingOptions>;

  protected override get moduleName(): string {
    return NAME;
  }

  constructor(options: SinusoidalEncodingOptions) {
    // Checked here first, so that the messages name this class and its own options.
    checkOptions(NAME, options, OPTION_KEYS);
    const { dModel, maxSeqLength = 5000, dropout = 0.1, encodingType = 'sinusoidal' } = options;
    checkPositiveInteger(NAME, 'dModel', dModel);
    checkPositiveInteger(NAME, 'maxSeqLength', maxSeqLength);
    checkDropout(NAME, dropout);
    if (encodingType !== 'sinusoidal') {
      throw new MieConfigError(errorMessage(NAME, 'option "encodingType"', 'must be "sinusoidal" (a learned table is PositionalEncoding\'s encodingType "learned")', encodingType));
    }
    super({ dModel, maxSeqLength, dropout, encodingType });
  }
}
