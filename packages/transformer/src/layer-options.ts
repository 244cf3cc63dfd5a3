/** Options shared by the encoder and decoder layers, resolved and checked once (see model-options.ts). */
import { MieConfigError, errorMessage, option, resolveOptions } from '@mie/core';
import type { AttentionPositionKind } from '@mie/attention';
import type { ActivationName } from '@mie/layers';
import type { RotaryScalingOptions } from '@mie/positional';
import { LAYER_MODEL_OPTIONS, LAYER_POSITION_OPTION, MODEL_OPTIONS, checkHeads } from './model-options';

/** Options of {@link TransformerEncoderLayer} and {@link TransformerDecoderLayer} (the design's names). */
export interface TransformerLayerOptions {
  /** Model width; divisible by `numHeads`. */
  dModel: number;
  /** Attention (query) heads. */
  numHeads: number;
  /** Key/value heads of self- and cross-attention (grouped-query attention); divides `numHeads`. Default `numHeads`. */
  numKeyValueHeads?: number;
  /** Width of the feed-forward sub-layer. Default 2048. */
  dFf?: number;
  /** Dropout after each sub-layer, inside the feed-forward block and on attention weights. Default 0.1. */
  dropout?: number;
  /** Rotate queries and keys of self-attention with rotary embeddings. Default false (the same as `positionalEncoding: 'rotary'`). */
  useRotaryEmbeddings?: boolean;
  /**
   * Positions inside self-attention: `'none'` (default), `'rotary'` or `'alibi'`. Absolute
   * encodings (sinusoidal, learned) are added to the embeddings by the stacks, not by a layer.
   */
  positionalEncoding?: AttentionPositionKind;
  /** Longest sequence rotary or ALiBi positions cover. Default 5000. */
  maxSeqLength?: number;
  /** Feed-forward activation: `'relu'` (default) or `'gelu'` (exact erf), or any @mie/layers activation. */
  activation?: ActivationName;
  /** Pre-norm (`x + f(norm(x))`) when true; post-norm (`norm(x + f(x))`, the paper's and PyTorch's default) when false. */
  normFirst?: boolean;
  /** Epsilon of the layer norms. Default 1e-5. */
  layerNormEps?: number;
  /** With rotary positions: scaling for longer contexts (`{ type, factor, originalMaxSeqLength? }`). Default null. */
  rotaryScaling?: RotaryScalingOptions | null;
}

export type TransformerLayerConfig = Required<TransformerLayerOptions>;

const LAYER_OPTIONS = {
  dModel: { check: MODEL_OPTIONS.dModel.check },
  numHeads: { check: MODEL_OPTIONS.numHeads.check },
  ...LAYER_MODEL_OPTIONS,
  useRotaryEmbeddings: option.boolean(false),
  positionalEncoding: LAYER_POSITION_OPTION,
} as const;

/** Checks and completes layer options (`module` names the caller in errors). */
export function resolveLayerOptions(module: string, options: TransformerLayerOptions): TransformerLayerConfig {
  const resolved = resolveOptions(module, options, LAYER_OPTIONS);
  if (resolved.useRotaryEmbeddings && resolved.positionalEncoding !== 'rotary') {
    throw new MieConfigError(errorMessage(module, 'option "useRotaryEmbeddings"', `contradicts positionalEncoding "${resolved.positionalEncoding}"`, true));
  }
  checkHeads(module, { ...resolved, attentionPositions: resolved.positionalEncoding });
  return Object.freeze({
    dModel: resolved.dModel,
    numHeads: resolved.numHeads,
    numKeyValueHeads: resolved.numKeyValueHeads,
    dFf: resolved.dFf,
    dropout: resolved.dropout,
    useRotaryEmbeddings: resolved.positionalEncoding === 'rotary',
    positionalEncoding: resolved.positionalEncoding,
    maxSeqLength: resolved.maxSeqLength,
    activation: resolved.activation,
    normFirst: resolved.normFirst,
    layerNormEps: resolved.layerNormEps,
    rotaryScaling: resolved.rotaryScaling,
  });
}
