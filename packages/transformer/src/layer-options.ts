/** Options shared by the encoder and decoder layers, resolved and checked once. */
import { checkBoolean, checkDropout, checkOptions, checkPositiveInteger, checkPositiveNumber, MieConfigError, errorMessage } from '@mie/core';
import { checkActivation, type ActivationName } from '@mie/layers';

/** Options of {@link TransformerEncoderLayer} and {@link TransformerDecoderLayer} (the design's names). */
export interface TransformerLayerOptions {
  /** Model width; divisible by `numHeads`. */
  dModel: number;
  /** Attention heads. */
  numHeads: number;
  /** Width of the feed-forward sub-layer. Default 2048. */
  dFf?: number;
  /** Dropout after each sub-layer, inside the feed-forward block and on attention weights. Default 0.1. */
  dropout?: number;
  /** Rotate queries and keys of self-attention with rotary embeddings. Default false. */
  useRotaryEmbeddings?: boolean;
  /** Longest sequence rotary embeddings cover. Default 5000. */
  maxSeqLength?: number;
  /** Feed-forward activation: `'relu'` (default) or `'gelu'` (exact erf), or any @mie/layers activation. */
  activation?: ActivationName;
  /** Pre-norm (`x + f(norm(x))`) when true; post-norm (`norm(x + f(x))`, the paper's and PyTorch's default) when false. */
  normFirst?: boolean;
  /** Epsilon of the layer norms. Default 1e-5. */
  layerNormEps?: number;
}

export type TransformerLayerConfig = Required<TransformerLayerOptions>;

export const LAYER_OPTIONS = [
  'dModel',
  'numHeads',
  'dFf',
  'dropout',
  'useRotaryEmbeddings',
  'maxSeqLength',
  'activation',
  'normFirst',
  'layerNormEps',
] as const;

/** Checks and completes layer options (`module` names the caller in errors). */
export function resolveLayerOptions(module: string, options: TransformerLayerOptions): TransformerLayerConfig {
  const {
    dModel,
    numHeads,
    dFf = 2048,
    dropout = 0.1,
    useRotaryEmbeddings = false,
    maxSeqLength = 5000,
    activation = 'relu',
    normFirst = false,
    layerNormEps = 1e-5,
  } = checkOptions(module, options, LAYER_OPTIONS);
  checkPositiveInteger(module, 'dModel', dModel);
  checkPositiveInteger(module, 'numHeads', numHeads);
  if (dModel % numHeads !== 0) throw new MieConfigError(errorMessage(module, 'option "dModel"', `must be divisible by numHeads (${numHeads})`, dModel));
  return Object.freeze({
    dModel,
    numHeads,
    dFf: checkPositiveInteger(module, 'dFf', dFf),
    dropout: checkDropout(module, dropout),
    useRotaryEmbeddings: checkBoolean(module, 'useRotaryEmbeddings', useRotaryEmbeddings),
    maxSeqLength: checkPositiveInteger(module, 'maxSeqLength', maxSeqLength),
    activation: checkActivation(module, activation),
    normFirst: checkBoolean(module, 'normFirst', normFirst),
    layerNormEps: checkPositiveNumber(module, 'layerNormEps', layerNormEps),
  });
}
