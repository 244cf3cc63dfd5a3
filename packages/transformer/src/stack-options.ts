/** Options shared by the encoder and decoder stacks and the encoder-decoder model. */
import { checkOneOf, checkOptions, checkPositiveInteger, MieConfigError, errorMessage } from '@mie/core';
import { resolveLayerOptions, type TransformerLayerConfig, type TransformerLayerOptions } from './layer-options';

/** How a stack encodes positions. */
export const POSITIONAL_ENCODINGS = ['sinusoidal', 'learned', 'rotary', 'none'] as const;
export type PositionalEncodingKind = (typeof POSITIONAL_ENCODINGS)[number];

/** Options of {@link TransformerEncoder} and {@link TransformerDecoder} (the design's names). */
export interface TransformerStackOptions extends Omit<TransformerLayerOptions, 'useRotaryEmbeddings' | 'dModel' | 'numHeads'> {
  /** Token vocabulary size. */
  vocabSize: number;
  /** Model width. Default 512. */
  dModel?: number;
  /** Attention heads. Default 8. */
  numHeads?: number;
  /** Number of layers. Default 6. */
  numLayers?: number;
  /**
   * `'sinusoidal'` (default) or `'learned'` absolute encodings added to the embeddings,
   * `'rotary'` embeddings inside self-attention, or `'none'`.
   */
  positionalEncoding?: PositionalEncodingKind;
  /** Token id whose embedding row is kept at zero and never trained (`TokenEmbedding.paddingIdx`). Default none. */
  paddingIdx?: number | null;
}

export interface TransformerStackConfig extends Omit<TransformerLayerConfig, 'useRotaryEmbeddings'> {
  vocabSize: number;
  numLayers: number;
  positionalEncoding: PositionalEncodingKind;
  paddingIdx: number | null;
}

const STACK_OPTIONS = [
  'vocabSize',
  'dModel',
  'numHeads',
  'numLayers',
  'dFf',
  'dropout',
  'maxSeqLength',
  'activation',
  'normFirst',
  'layerNormEps',
  'positionalEncoding',
  'paddingIdx',
] as const;

/** Checks and completes stack options. */
export function resolveStackOptions(module: string, options: TransformerStackOptions): TransformerStackConfig {
  const { vocabSize, numLayers = 6, positionalEncoding = 'sinusoidal', paddingIdx = null, dModel = 512, numHeads = 8, ...layer } = checkOptions(
    module,
    options,
    STACK_OPTIONS,
  );
  checkPositiveInteger(module, 'vocabSize', vocabSize);
  checkPositiveInteger(module, 'numLayers', numLayers);
  checkOneOf(module, 'positionalEncoding', positionalEncoding, POSITIONAL_ENCODINGS);
  if (paddingIdx !== null && (!Number.isInteger(paddingIdx) || paddingIdx < 0 || paddingIdx >= vocabSize)) {
    throw new MieConfigError(errorMessage(module, 'option "paddingIdx"', `must be null or an integer in [0, ${vocabSize})`, paddingIdx));
  }
  const resolved = resolveLayerOptions(module, { ...layer, dModel, numHeads, useRotaryEmbeddings: positionalEncoding === 'rotary' });
  const { useRotaryEmbeddings: _rotary, ...rest } = resolved;
  return Object.freeze({ ...rest, vocabSize, numLayers, positionalEncoding, paddingIdx });
}

/** The layer options of a stack. */
export function layerOptions(config: TransformerStackConfig): TransformerLayerOptions {
  const { dModel, numHeads, dFf, dropout, maxSeqLength, activation, normFirst, layerNormEps, positionalEncoding } = config;
  return { dModel, numHeads, dFf, dropout, maxSeqLength, activation, normFirst, layerNormEps, useRotaryEmbeddings: positionalEncoding === 'rotary' };
}
