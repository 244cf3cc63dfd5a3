import { checkBoolean, checkFeatures, checkOptions, checkPositiveInteger, checkPositiveNumber, Module, parameter, tf } from '@mie/core';

/**
 * The default `eps` of {@link RMSNorm}: float32 machine epsilon, 2^-23 ≈ 1.19e-7, which is what
 * `torch.nn.RMSNorm(eps=None)` uses for float32 inputs (`torch.finfo(torch.float32).eps`).
 */
export const RMS_NORM_DEFAULT_EPS = 2 ** -23;

/** Options of {@link RMSNorm}. */
export interface RMSNormOptions {
  /** Size of the last dimension, the one normalised (PyTorch's `normalized_shape` as one integer). Required. */
  normalizedShape: number;
  /**
   * Added to the mean square before the square root. Default {@link RMS_NORM_DEFAULT_EPS}
   * (2^-23, PyTorch's default for float32). LLaMA-style models use `1e-6`: pass it explicitly.
   */
  eps?: number;
  /** Whether to learn a per-feature scale `weight` (ones at first). Default `true`. */
  elementwiseAffine?: boolean;
}

/** The resolved options of an {@link RMSNorm}: every field set. */
export type RMSNormConfig = Required<RMSNormOptions>;

const OPTIONS = ['normalizedShape', 'eps', 'elementwiseAffine'] as const;

/**
 * Root-mean-square layer normalisation (Zhang & Sennrich 2019), as `torch.nn.RMSNorm`:
 * `y = x / sqrt(mean(x^2) + eps) * weight` over the last dimension; no centring and no bias.
 * State: `weight [normalizedShape]` (when `elementwiseAffine`).
 */
export class RMSNorm extends Module {
  /** The resolved options: `new RMSNorm(norm.config)` rebuilds this layer. */
  readonly config: RMSNormConfig;
  /** The per-feature scale, or `null` without `elementwiseAffine`. */
  readonly weight: tf.Variable | null;

  constructor(options: RMSNormOptions) {
    super();
    const { normalizedShape, eps = RMS_NORM_DEFAULT_EPS, elementwiseAffine = true } = checkOptions('RMSNorm', options, OPTIONS);
    this.config = Object.freeze({
      normalizedShape: checkPositiveInteger('RMSNorm', 'normalizedShape', normalizedShape),
      eps: checkPositiveNumber('RMSNorm', 'eps', eps),
      elementwiseAffine: checkBoolean('RMSNorm', 'elementwiseAffine', elementwiseAffine),
    });
    this.weight = elementwiseAffine ? parameter([normalizedShape], (shape) => tf.ones(shape)) : null;
  }

  /** Normalises `x [..., normalizedShape]` (float32, any rank >= 1) over its last dimension; same shape out. */
  forward(x: tf.Tensor): tf.Tensor {
    checkFeatures('RMSNorm', 'input x', x, this.config.normalizedShape, 'normalizedShape');
    return tf.tidy(() => {
      const meanSquare = tf.mean(tf.square(x), -1, true); // [..., 1]
      const normalized = tf.mul(x, tf.rsqrt(tf.add(meanSquare, this.config.eps)));
      return this.weight ? tf.mul(normalized, this.weight) : normalized;
    });
  }
}
