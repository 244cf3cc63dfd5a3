/**
 * The decoding interface: what `generate` needs from a model, so that greedy search, sampling and
 * beam search work for any model that implements it (the encoder-decoder Transformer, the
 * decoder-only language model, or a user's own), without reaching into its layers.
 *
 * Legend: b inputs, k rows per input (beams or return sequences), V vocabulary.
 */
import type { Module, tf } from '@mie/core';

/** What generation checks an input and its options against, from {@link DecodingModel.decodingSpec}. */
export interface DecodingSpec {
  /** The generate call, for error messages (`'DecoderOnlyTransformer.generate'`). */
  name: string;
  /** The name of the input in messages (`'src'`, `'promptIds'`). */
  inputName: string;
  /** The option that gives the input's key padding mask (`'srcKeyPaddingMask'`, `'keyPaddingMask'`). */
  maskOption: 'srcKeyPaddingMask' | 'keyPaddingMask';
  /** Size of the output vocabulary: token ids are in `[0, vocabSize)`. */
  vocabSize: number;
  /** The most tokens this input leaves room for (`maxSeqLength`, less a prompt and the BOS prepended to it). */
  maxNewTokens(bosTokenId: number | null): number;
  /** Token ids from the model's config, used when the options do not give them. */
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  /** Whether a `bosTokenId` is needed (a seq2seq decoder starts from it; a prompt may not). */
  requiresBos: boolean;
  /** Bytes per output row that `maxNewTokens` steps hold at once, checked before anything is allocated. */
  bytesPerRow(maxNewTokens: number, useCache: boolean): number;
}

/** How {@link DecodingModel.startDecoding} should set up a decoding. */
export interface DecodingStartOptions {
  /** Output rows per input (beams, or sequences per input): row `i` decodes input `floor(i / k)`. */
  rowsPerInput: number;
  /** Keep key/value caches and feed only the newest token each step. */
  useCache: boolean;
  /** Token the decoding starts from (seq2seq), or that is prepended to each prompt; null for none. */
  bosTokenId: number | null;
  /** Padding token of the input (its key padding mask), or null. */
  padTokenId: number | null;
  /** `[b, inputLength]` key padding mask of the input (1 = real token), overriding `padTokenId`. Not disposed. */
  keyPaddingMask?: tf.Tensor;
}

/** One decoding in progress: its encoded input, caches and masks, for `rows` output rows. */
export interface DecodingState {
  readonly rows: number;
  /**
   * The next-token logits `[rows, V]` after the tokens generated so far (`generated[row]`, the
   * same length for every row). The caller disposes the result.
   */
  step(generated: readonly (readonly number[])[]): tf.Tensor;
  /** Beam search: row `i` continues from old row `indices[i]` (caches and masks follow). */
  reorder(indices: readonly number[]): void;
  /** Frees every tensor of the decoding. */
  dispose(): void;
}

/** A model `generate` can drive. */
export interface DecodingModel extends Module {
  /** Checks `input` (throws a `MieShapeError` naming it) and says what generation may do with it. */
  decodingSpec(input: unknown): DecodingSpec;
  /** Encodes `input` (once) and returns the state that steps the decoding. */
  startDecoding(input: tf.Tensor, options: DecodingStartOptions): DecodingState;
}

/** What a custom logits processor or stopping criterion is told about a row. */
export interface DecodingContext {
  /** The output row (input `floor(row / k)`). */
  row: number;
  /** 0-based index of the position being generated. */
  step: number;
}

/**
 * A custom logits processor: edits `scores` (the row's next-token logits, float64, after the
 * built-in repetition penalty and n-gram blocking, before sampling's temperature/top-k/top-p) in
 * place, given the tokens generated so far. Set a score to `-Infinity` to forbid a token.
 */
export type LogitsProcessor = (scores: Float64Array, tokens: readonly number[], context: DecodingContext) => void;

/**
 * A custom stopping criterion: called with a row's tokens after each step (the newest last);
 * returning true finishes that row (a beam becomes a finished hypothesis) with the tokens it has.
 */
export type StoppingCriterion = (tokens: readonly number[], context: DecodingContext) => boolean;
