/**
 * @mie/positional: position information for transformers. `PositionalEncoding` (sinusoidal or
 * learned absolute encodings), `SinusoidalEncoding` (the sinusoidal kind as a class of its own),
 * `RotaryPositionEncoding` (RoPE), and the heatmap renderer their visualisations use (also for
 * attention maps).
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
  type RotaryForwardOptions,
  type VisualizeRotationOptions,
} from './rotary-position-encoding';

