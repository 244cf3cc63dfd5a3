/**
 * @mie/positional: position information for transformers. `PositionalEncoding` (sinusoidal or
 * learned absolute encodings), `SinusoidalEncoding` (the sinusoidal kind as a class of its own),
 * `RotaryPositionEncoding` (RoPE, with linear, dynamic NTK and YaRN scaling),
 * `RelativePositionBias` (T5's bucketed bias on the attention scores), and their heatmaps.
 */
export {
  PositionalEncoding,
  sinusoidalEncodings,
  ENCODING_TYPES,
  type EncodingType,
  type PositionalEncodingOptions,
  type PositionalEncodingForwardOptions,
  type VisualizeEncodingsOptions,
} from './positional-encoding';
export { SinusoidalEncoding, type SinusoidalEncodingOptions } from './sinusoidal-encoding';
export {
  RotaryPositionEncoding,
  type RotaryPositionEncodingOptions,
  type RotaryPositionEncodingConfig,
  type RotaryForwardOptions,
  type RotaryCosSinOptions,
  type VisualizeRotationOptions,
  type VisualizeScalingOptions,
} from './rotary-position-encoding';
export { ROTARY_SCALING_TYPES, resolveRotaryScaling, type RotaryScaling, type RotaryScalingOptions, type RotaryScalingType } from './rope-scaling';
export {
  RelativePositionBias,
  relativePositionBucket,
  type RelativePositionBiasOptions,
  type RelativePositionBiasConfig,
  type RelativePositionBiasForwardOptions,
  type RelativePositionBucketOptions,
  type VisualizeBiasOptions,
} from './relative-position-bias';

