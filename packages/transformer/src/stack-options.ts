/** Options shared by the encoder and decoder stacks (see model-options.ts for the shared table). */
import { MieConfigError, errorMessage, option, resolveOptions } from '@mie/core';
import type { TransformerLayerOptions } from './layer-options';
import { STACK_MODEL_OPTIONS, attentionPositions, checkHeads, type ModelOptions, type PositionalEncodingKind } from './model-options';

export { POSITIONAL_ENCODINGS, type PositionalEncodingKind } from './model-options';

/** Options of {@link TransformerEncoder} and {@link TransformerDecoder} (the design's names). */
export interface TransformerStackOptions extends ModelOptions {
  /** Token vocabulary size. */
  vocabSize: number;
  /** Number of layers. Default 6. */
  numLayers?: number;
  /** Token id whose embedding row is kept at zero and never trained (`TokenEmbedding.paddingIdx`). Default none. */
  paddingIdx?: number | null;
}

export type TransformerStackConfig = Required<TransformerStackOptions>;

const STACK_OPTIONS = {
  vocabSize: option.positiveInteger('required'),
  ...STACK_MODEL_OPTIONS,
  paddingIdx: option.nullableInteger(null),
} as const;

/** Checks and completes stack options. */
export function resolveStackOptions(module: string, options: TransformerStackOptions): TransformerStackConfig {
  const config = resolveOptions(module, options, STACK_OPTIONS);
  const { paddingIdx, vocabSize } = config;
  if (paddingIdx !== null && paddingIdx >= vocabSize) {
    throw new MieConfigError(errorMessage(module, 'option "paddingIdx"', `must be null or an integer in [0, ${vocabSize})`, paddingIdx));
  }
  checkHeads(module, { ...config, attentionPositions: attentionPositions(config.positionalEncoding) });
  return config;
}

/** The layer options of a stack (or of any model built from the shared option table). */
export function layerOptions(config: Omit<TransformerLayerOptions, 'positionalEncoding' | 'useRotaryEmbeddings'> & { positionalEncoding: PositionalEncodingKind }): TransformerLayerOptions {
  const { dModel, numHeads, numKeyValueHeads, dFf, dropout, maxSeqLength, activation, normFirst, layerNormEps, positionalEncoding, rotaryScaling = null } = config;
  return {
    dModel, numHeads, numKeyValueHeads, dFf, dropout, maxSeqLength, activation, normFirst, layerNormEps, rotaryScaling,
    positionalEncoding: attentionPositions(positionalEncoding),
  };
}
