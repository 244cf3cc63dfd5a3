import { checkBoolean, checkFeatures, checkOptions, checkPositiveInteger, checkPositiveNumber, fusedKernelAvailable, Module, parameter, tf } from '@mie/core';
import { LAYER_NORM_KERNEL, fusedLayerNorm } from './fused-layer-norm';

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Size of the last dimension, the one normalised (PyTorch's `normalized_shape` as one integer). Required. */
  normalizedShape: number;
  /** Added to the variance before the square root, for numerical stability. Default `1e-5` (PyTorch's). */
  eps?: number;
  /** Whether to learn a per-feature scale `weight` (ones at first) and shift `bias` (zeros at first). Default `true`. */
  elementwiseAffine?: boolean;
}

/** The resolved options of a {@link LayerNorm}: every field set. */
export type LayerNormConfig = Required<LayerNormOptions>;

const OPTIONS = ['normalizedShape', 'eps', 'elementwiseAffine'] as const;

/**
 * Layer normalisation over the last dimension (Ba, Kiros & Hinton 2016), as `torch.nn.LayerNorm`:
 * `y = (x - mean) / sqrt(var + eps) * weight + bias`, with the biased variance (divided by n).
 * State: `weight [normalizedShape]`, `bias [normalizedShape]` (when `elementwiseAffine`).
 */
export class LayerNorm extends Module {
  /** The resolved options: `new LayerNorm(norm.config)` rebuilds this layer. */
  readonly config: LayerNormConfig;
  /** The per-feature scale, or `null` without `elementwiseAffine`. */
  readonly weight: tf.Variable | null;
  /** The per-feature shift, or `null` without `elementwiseAffine`. */
  readonly bias: tf.Variable | null;

  constructor(options: LayerNormOptions) {
    super();
    const { normalizedShape, eps = 1e-5, elementwiseAffine = true } = checkOptions('LayerNorm', options, OPTIONS);
    this.config = Object.freeze({
      normalizedShape: checkPositiveInteger('LayerNorm', 'normalizedShape', normalizedShape),
      eps: checkPositiveNumber('LayerNorm', 'eps', eps),
      elementwiseAffine: checkBoolean('LayerNorm', 'elementwiseAffine', elementwiseAffine),
    });
    this.weight = elementwiseAffine ? parameter([normalizedShape], (shape) => tf.ones(shape)) : null;
    this.bias = elementwiseAffine ? parameter([normalizedShape], (shape) => tf.zeros(shape)) : null;
  }

  /** Normalises `x [..., normalizedShape]` (float32, any rank >= 1) over its last dimension; same shape out. */
  forward(x: tf.Tensor): tf.Tensor {
    checkFeatures('LayerNorm', 'input x', x, this.config.normalizedShape, 'normalizedShape');
    // One kernel forward and one backward (fused-layer-norm.ts) on cpu, where it is 4x faster than
    // the composition ([1400, 128] forward + backward: 14 ms against 58), and on wasm with the
    // SIMD module's passes. Without them the composition's SIMD kernels win on large inputs despite
    // their dispatches (forward [256, 512]: 0.27 ms against 0.47), the JavaScript kernel on small
    // ones (a decoding step's [1, 512]: 18 us against 107), so there it is used up to 32768
    // elements (see fused-layer-norm.ts) or with MIE_FUSED_KERNELS=all.
    if (this.weight && this.bias && fusedKernelAvailable(LAYER_NORM_KERNEL, x.size)) {
      return fusedLayerNorm(x, this.weight, this.bias, this.config.eps);
    }
    return tf.tidy(() => {
      const mean = tf.mean(x, -1, true); // [..., 1]
      const centered = tf.sub(x, mean);
      const variance = tf.mean(tf.square(centered), -1, true); // [..., 1], biased as in PyTorch
      const normalized = tf.mul(centered, tf.rsqrt(tf.add(variance, this.config.eps)));
      return this.weight && this.bias ? tf.add(tf.mul(normalized, this.weight), this.bias) : normalized;
    });
  }
}
