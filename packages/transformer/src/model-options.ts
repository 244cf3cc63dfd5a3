/**
 * Every option the transformer layers, stacks and models take, declared once: its check and its
 * default. Each class resolves the subset it accepts from here (`resolveOptions`), so a default
 * or a check cannot drift between the layer, the stacks and the models.
 */
import { MieConfigError, errorMessage, option, pickOptions, type OptionSpec } from '@mie/core';
import { ATTENTION_POSITIONS, checkAttentionPositions, type AttentionPositionKind } from '@mie/attention';
import { checkActivation, type ActivationName } from '@mie/layers';
import { resolveRotaryScaling, type RotaryScalingOptions } from '@mie/positional';

/** How a stack or model encodes positions. */
export const POSITIONAL_ENCODINGS = ['sinusoidal', 'learned', 'rotary', 'alibi', 't5', 'none'] as const;
export type PositionalEncodingKind = (typeof POSITIONAL_ENCODINGS)[number];

/** The options every stack and model takes (each class adds its own and may document these further). */
export interface ModelOptions {
  /** Model width; divisible by `numHeads`. Default 512. */
  dModel?: number;
  /** Attention (query) heads. Default 8. */
  numHeads?: number;
  /** Key/value heads (grouped-query attention); divides `numHeads`. Default `numHeads`. */
  numKeyValueHeads?: number;
  /** Width of the feed-forward sub-layers. Default 2048. */
  dFf?: number;
  /** Dropout after the positions and each sub-layer, in the feed-forward block and on attention weights. Default 0.1. */
  dropout?: number;
  /** Longest sequence. Default 5000. */
  maxSeqLength?: number;
  /** Feed-forward activation: `'relu'` (default), `'gelu'` (exact erf) or another @mie/layers activation. */
  activation?: ActivationName;
  /** Pre-norm layers and a final norm when true; post-norm (the paper's and PyTorch's default, no final norm) when false. */
  normFirst?: boolean;
  /** Epsilon of the layer norms. Default 1e-5. */
  layerNormEps?: number;
  /**
   * With rotary positions: scaling for contexts longer than the training one,
   * `{ type: 'linear' | 'dynamic' | 'yarn', factor, originalMaxSeqLength? }` (Hugging Face's
   * `rope_scaling`; see `RotaryPositionEncoding`). Default null.
   */
  rotaryScaling?: RotaryScalingOptions | null;
  /**
   * `'sinusoidal'` (default) or `'learned'` absolute encodings added to the inputs (then dropout),
   * `'rotary'` embeddings inside self-attention (an even head size), `'alibi'` linear biases on the
   * self-attention scores, `'t5'` a learned bucketed relative bias on them (one
   * `RelativePositionBias` per stack, shared by its layers, as T5 does), or `'none'`.
   */
  positionalEncoding?: PositionalEncodingKind;
}

/** The options shared by layers, stacks and models, in the order configs keep them. */
export const MODEL_OPTIONS = {
  dModel: option.positiveInteger(512),
  numHeads: option.positiveInteger(8),
  numKeyValueHeads: option.positiveInteger((resolved) => resolved['numHeads'] as number),
  dFf: option.positiveInteger(2048),
  dropout: option.dropout(0.1),
  maxSeqLength: option.positiveInteger(5000),
  activation: option.custom((module, _name, value): ActivationName => checkActivation(module, value), 'relu'),
  normFirst: option.boolean(false),
  layerNormEps: option.positiveNumber(1e-5),
  // Checked with maxSeqLength and the positions by checkHeads.
  rotaryScaling: option.custom((_module, _name, value) => value as RotaryScalingOptions | null, null),
} as const;

/** A stack's or model's `positionalEncoding` (default sinusoidal). */
export const POSITIONAL_ENCODING_OPTION: OptionSpec<PositionalEncodingKind> = option.oneOf(POSITIONAL_ENCODINGS, 'sinusoidal');

/** A layer's `positionalEncoding`: only what happens inside attention (default: rotary with `useRotaryEmbeddings`, else none). */
export const LAYER_POSITION_OPTION: OptionSpec<AttentionPositionKind> = option.oneOf(ATTENTION_POSITIONS, (resolved) =>
  resolved['useRotaryEmbeddings'] ? 'rotary' : 'none',
);

/** The options of a stack of layers (a stack, the encoder-only and decoder-only models), in config order. */
export const STACK_MODEL_OPTIONS = {
  dModel: MODEL_OPTIONS.dModel,
  numHeads: MODEL_OPTIONS.numHeads,
  numKeyValueHeads: MODEL_OPTIONS.numKeyValueHeads,
  numLayers: option.positiveInteger(6),
  dFf: MODEL_OPTIONS.dFf,
  dropout: MODEL_OPTIONS.dropout,
  maxSeqLength: MODEL_OPTIONS.maxSeqLength,
  activation: MODEL_OPTIONS.activation,
  normFirst: MODEL_OPTIONS.normFirst,
  layerNormEps: MODEL_OPTIONS.layerNormEps,
  positionalEncoding: POSITIONAL_ENCODING_OPTION,
  rotaryScaling: MODEL_OPTIONS.rotaryScaling,
} as const;

/** The width and head options of a layer, picked from {@link MODEL_OPTIONS}. */
export const LAYER_MODEL_OPTIONS = pickOptions(MODEL_OPTIONS, ['numKeyValueHeads', 'dFf', 'dropout', 'maxSeqLength', 'activation', 'normFirst', 'layerNormEps', 'rotaryScaling']);

/**
 * The checks between options: `numHeads` divides `dModel`, `numKeyValueHeads` divides
 * `numHeads`, rotary positions need an even head size, and `rotaryScaling` needs rotary positions
 * (and is valid for `maxSeqLength`).
 */
export function checkHeads(
  module: string,
  {
    dModel,
    numHeads,
    numKeyValueHeads,
    attentionPositions,
    rotaryScaling = null,
    maxSeqLength = 5000,
  }: { dModel: number; numHeads: number; numKeyValueHeads: number; attentionPositions: AttentionPositionKind; rotaryScaling?: RotaryScalingOptions | null; maxSeqLength?: number },
): void {
  if (rotaryScaling !== null) {
    if (attentionPositions !== 'rotary') throw new MieConfigError(errorMessage(module, 'option "rotaryScaling"', "needs rotary positions (positionalEncoding 'rotary')", rotaryScaling));
    resolveRotaryScaling(module, rotaryScaling, maxSeqLength);
  }
  if (dModel % numHeads !== 0) throw new MieConfigError(errorMessage(module, 'option "dModel"', `must be divisible by numHeads (${numHeads})`, dModel));
  if (numHeads % numKeyValueHeads !== 0) {
    throw new MieConfigError(errorMessage(module, 'option "numKeyValueHeads"', `must divide numHeads (${numHeads})`, numKeyValueHeads));
  }
  checkAttentionPositions(module, 'positionalEncoding', attentionPositions, dModel / numHeads);
}

/** What a stack's position encoding asks of its attention layers. */
export function attentionPositions(kind: PositionalEncodingKind): AttentionPositionKind {
  return kind === 'rotary' || kind === 'alibi' ? kind : 'none';
}
