/**
 * Rotary scaling for contexts longer than the one a model was trained on: the inverse frequencies
 * and the cos/sin factor of linear (position interpolation), dynamic NTK-aware and YaRN scaling.
 *
 * The formulas are Hugging Face transformers' `src/transformers/modeling_rope_utils.py`
 * (read at huggingface/transformers 0044e3b3, a 4.4x version, and at the v5-era fork
 * cyyever/transformers 89539b06, which agree for the options MIE takes):
 * `_compute_linear_scaling_rope_parameters`, `_compute_dynamic_ntk_parameters` and
 * `_compute_yarn_parameters`, with their defaults (YaRN's
 * `beta_fast` 32, `beta_slow` 1, truncated correction range, `attention_factor = get_mscale(factor)
 * = 0.1 ln(factor) + 1`). HF computes in float32; everything here is float64 on the host, and the
 * tables are rounded to float32 once. Legend: d headDim, i pair index in [0, d/2).
 */
import { MieConfigError, checkOneOf, checkPositiveInteger, describeValue, errorMessage } from '@mie/core';

/** How the rotation angles are stretched for long contexts. */
export type RotaryScalingType = 'linear' | 'dynamic' | 'yarn';

/** The scaling types accepted by `scaling.type`. */
export const ROTARY_SCALING_TYPES: readonly RotaryScalingType[] = ['linear', 'dynamic', 'yarn'];

/** The `scaling` option of `RotaryPositionEncoding` (Hugging Face's `rope_scaling`). */
export interface RotaryScalingOptions {
  /**
   * `'linear'`: position interpolation (Chen et al. 2023; kaiokendev): every frequency divided by
   * `factor`. `'dynamic'`: NTK-aware scaling of the base, growing with the sequence length once it
   * passes `originalMaxSeqLength` (bloc97, emozilla). `'yarn'`: YaRN (Peng et al. 2023): high
   * frequencies kept, low ones interpolated, a linear ramp between, and cos/sin scaled by
   * `0.1 ln(factor) + 1`.
   */
  type: RotaryScalingType;
  /** How much longer the context becomes; a finite number >= 1 (1 changes nothing for linear and YaRN). */
  factor: number;
  /**
   * The context length the model was trained with (HF's `original_max_position_embeddings`, or its
   * `max_position_embeddings` for dynamic scaling). Dynamic scaling starts beyond it (so it must be
   * below `maxSeqLength`); YaRN finds its correction range from it; linear scaling does not use it.
   * Default `maxSeqLength`.
   */
  originalMaxSeqLength?: number;
}

/** A validated `scaling`, as kept in `RotaryPositionEncoding.config`. */
export interface RotaryScaling {
  /** The scaling type. */
  readonly type: RotaryScalingType;
  /** The context extension factor, >= 1. */
  readonly factor: number;
  /** The pretraining context length (resolved: `maxSeqLength` when not given). */
  readonly originalMaxSeqLength: number;
}

const SCALING_KEYS = ['type', 'factor', 'originalMaxSeqLength'] as const;

/** Validates the `scaling` option of `module` (`null`/`undefined`: none) and resolves its defaults. */
export function resolveRotaryScaling(module: string, scaling: unknown, maxSeqLength: number): RotaryScaling | null {
  if (scaling === undefined || scaling === null) return null;
  if (typeof scaling !== 'object' || Array.isArray(scaling)) {
    throw new MieConfigError(errorMessage(module, 'option "scaling"', 'must be null or an object { type, factor, originalMaxSeqLength? }', scaling));
  }
  const unknown = Object.keys(scaling).filter((key) => !(SCALING_KEYS as readonly string[]).includes(key));
  if (unknown.length > 0) {
    throw new MieConfigError(
      `${module}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => describeValue(key)).join(', ')} in option "scaling"; ` +
        `its keys are ${SCALING_KEYS.join(', ')}.`,
    );
  }
  const { type, factor, originalMaxSeqLength = maxSeqLength } = scaling as Partial<RotaryScalingOptions>;
  checkOneOf(module, 'scaling.type', type, ROTARY_SCALING_TYPES);
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    throw new MieConfigError(errorMessage(module, 'option "scaling.factor"', 'must be a finite number >= 1 (how many times longer the context becomes)', factor));
  }
  checkPositiveInteger(module, 'scaling.originalMaxSeqLength', originalMaxSeqLength);
  if (type === 'dynamic' && originalMaxSeqLength >= maxSeqLength) {
    throw new MieConfigError(
      errorMessage(
        module,
        'option "scaling.originalMaxSeqLength"',
        `must be below maxSeqLength (${maxSeqLength}) for dynamic scaling, which changes only sequences longer than it ` +
          '(pass the pretraining length, and the extended length as maxSeqLength)',
        originalMaxSeqLength,
      ),
    );
  }
  return { type: type as RotaryScalingType, factor, originalMaxSeqLength };
}

/** The unscaled inverse frequency of pair `i`: `base^(-2i/d)` radians per position. */
export function defaultFrequency(i: number, headDim: number, base: number): number {
  return base ** (-(2 * i) / headDim);
}

/**
 * YaRN's correction range `[low, high]` in pairs (HF's `find_correction_range` with `truncate`):
 * pairs below `low` turn more than `betaFast` = 32 times over `originalMaxSeqLength` positions
 * and are kept (extrapolated); pairs above `high` turn less than `betaSlow` = 1 time and are
 * interpolated (divided by `factor`).
 */
export function yarnCorrectionRange(headDim: number, base: number, originalMaxSeqLength: number): [number, number] {
  // find_correction_dim: the dimension whose wavelength fits `rotations` times into the context.
  const correctionDim = (rotations: number) => (headDim * Math.log(originalMaxSeqLength / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  const low = Math.floor(correctionDim(32));
  const high = Math.ceil(correctionDim(1));
  return [Math.max(low, 0), Math.min(high, headDim - 1)];
}

/**
 * The inverse frequencies of the `d/2` pairs (radians per position) that a call uses when its
 * sequence has `totalLength` positions (cache included). Only dynamic scaling depends on the length.
 */
export function inverseFrequencies(headDim: number, base: number, scaling: RotaryScaling | null, totalLength: number): Float64Array {
  const half = headDim / 2;
  const frequencies = new Float64Array(half);
  if (scaling === null || (scaling.type === 'dynamic' && totalLength <= scaling.originalMaxSeqLength)) {
    for (let i = 0; i < half; i++) frequencies[i] = defaultFrequency(i, headDim, base);
    return frequencies;
  }
  const { type, factor, originalMaxSeqLength } = scaling;
  if (type === 'linear') {
    // _compute_linear_scaling_rope_parameters: inv_freq /= factor.
    for (let i = 0; i < half; i++) frequencies[i] = defaultFrequency(i, headDim, base) / factor;
  } else if (type === 'dynamic') {
    // _compute_dynamic_ntk_parameters with seq_len = totalLength > originalMaxSeqLength.
    const scaledBase = base * ((factor * totalLength) / originalMaxSeqLength - (factor - 1)) ** (headDim / (headDim - 2));
    for (let i = 0; i < half; i++) frequencies[i] = defaultFrequency(i, headDim, scaledBase);
  } else {
    // _compute_yarn_parameters: blend of the interpolated (inv_freq / factor) and extrapolated
    // (inv_freq) frequencies, with 1 - linear_ramp_factor(low, high, d/2) as the extrapolation share.
    const [low, rawHigh] = yarnCorrectionRange(headDim, base, originalMaxSeqLength);
    const high = low === rawHigh ? rawHigh + 0.001 : rawHigh; // HF: prevent a singularity
    for (let i = 0; i < half; i++) {
      const posFreq = base ** ((2 * i) / headDim);
      const extrapolation = 1 / posFreq;
      const interpolation = 1 / (factor * posFreq);
      const ramp = Math.min(Math.max((i - low) / (high - low), 0), 1);
      const extrapolationFactor = 1 - ramp;
      frequencies[i] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
    }
  }
  return frequencies;
}

/** The factor on cos and sin: YaRN's `0.1 ln(factor) + 1` (HF's `get_mscale`), else 1. */
export function attentionFactor(scaling: RotaryScaling | null): number {
  if (scaling?.type !== 'yarn' || scaling.factor <= 1) return 1;
  return 0.1 * Math.log(scaling.factor) + 1;
}

/** A short description for titles: `linear ×4`, `dynamic NTK ×4 beyond 2048`, `YaRN ×4 (trained on 2048)`. */
export function describeScaling(scaling: RotaryScaling): string {
  const { type, factor, originalMaxSeqLength } = scaling;
  if (type === 'linear') return `linear \u00d7${factor}`;
  if (type === 'dynamic') return `dynamic NTK \u00d7${factor} beyond ${originalMaxSeqLength}`;
  return `YaRN \u00d7${factor} (trained on ${originalMaxSeqLength})`;
}
