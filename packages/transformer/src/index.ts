/**
 * @mie/transformer: encoder and decoder layers and stacks, the encoder-only Transformer over
 * continuous features, the encoder-decoder Transformer, PyTorch state-dict import/export,
 * attention maps (as tensors; @mie/plot draws them) and generation.
 */
export { TransformerEncoderLayer, type TransformerEncoderLayerCallOptions } from './transformer-encoder-layer';
export {
  TransformerDecoderLayer,
  type TransformerDecoderLayerOptions,
  type TransformerDecoderLayerConfig,
  type TransformerDecoderLayerCallOptions,
  type DecoderLayerOutput,
} from './transformer-decoder-layer';
export { type TransformerLayerOptions, type TransformerLayerConfig } from './layer-options';
export { TransformerEncoder, type EncoderOutput, type TransformerEncoderCallOptions } from './transformer-encoder';
export { TransformerDecoder, type TransformerDecoderCallOptions, type DecoderOutput } from './transformer-decoder';
export { POSITIONAL_ENCODINGS, type PositionalEncodingKind, type TransformerStackOptions, type TransformerStackConfig } from './stack-options';
export { type ModelOptions } from './model-options';
export {
  Transformer,
  type TransformerOptions,
  type TransformerConfig,
  type TransformerCallOptions,
  type TransformerOutput,
} from './transformer';
export {
  EncoderDecoderTransformer,
  type EncoderDecoderTransformerOptions,
  type EncoderDecoderTransformerConfig,
  type EncoderDecoderCallOptions,
  type EncoderDecoderOutput,
  type AttentionMaps,
  type DecodeOptions,
} from './encoder-decoder-transformer';
export {
  loadTorchStateDict,
  exportTorchStateDict,
  torchStateDictLayout,
  type LoadTorchStateDictOptions,
  type TorchStateDictOptions,
  type TorchStateEntry,
} from './torch-state-dict';
export {
  DecoderOnlyTransformer,
  type DecoderOnlyTransformerOptions,
  type DecoderOnlyTransformerConfig,
  type DecoderOnlyCallOptions,
  type DecoderOnlyOutput,
} from './decoder-only-transformer';
export type { DecodingModel, DecodingSpec, DecodingStartOptions, DecodingState, DecodingContext, LogitsProcessor, StoppingCriterion } from './decoding';
export { generate, generateStream, beamSearch, type GenerateOptions, type GenerationOutput, type GenerationStreamStep } from './generation';
export {
  applyRepetitionPenalty,
  applyNoRepeatNgram,
  bannedNgramTokens,
  applyTemperature,
  applyTopK,
  applyTopP,
  logSoftmax,
  softmax,
  samplingDistribution,
  sampleCategorical,
  seededRandom,
  type RandomSource,
  type ScoreRow,
} from './logits-processors';
export {
  VisionTransformerEncoder,
  sinusoidalEncodings2d,
  type ImageOptions,
  type VisionTransformerEncoderOptions,
  type VisionTransformerEncoderConfig,
  type VisionTransformerEncoderCallOptions,
  type VisionEncoderOutput,
} from './vision-transformer-encoder';
export {
  ImageToSequenceTransformer,
  type ImageToSequenceTransformerOptions,
  type ImageToSequenceTransformerConfig,
  type ImageToSequenceCallOptions,
  type ImageToSequenceAttention,
  type ImageToSequenceOutput,
  type ImageToSequenceDecodeOptions,
  type ImageToSequenceDecodeOutput,
} from './image-to-sequence-transformer';
