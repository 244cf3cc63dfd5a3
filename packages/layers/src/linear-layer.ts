import { float32Bytes, checkAllocation, checkBoolean, checkDropout, checkFeatures, checkInitType, checkOptions, checkPositiveInteger, dropout, initialize, Module, parameter, tf, uniform, type InitType } from '@mie/core';
import { LayerNorm } from './layer-norm';

/** Options of {@link LinearLayer}. */
export interface LinearLayerOptions {
  /** Size of the last dimension of the input. Required. */
  inFeatures: number;
  /** Size of the last dimension of the output. Required. */
  outFeatures: number;
  /** Whether to learn an additive `bias`. Default `true`. */
  bias?: boolean;
  /**
   * Initialiser of `weight`: `'kaiming_uniform'` (default), `'kaiming_normal'`, `'xavier_uniform'`
   * or `'xavier_normal'`, as `torch.nn.init` with its defaults. The bias is always drawn from
   * uniform(-1/sqrt(inFeatures), 1/sqrt(inFeatures)), as `torch.nn.Linear` does.
   */
  initType?: InitType;
  /** Probability of zeroing each output element in training mode (applied last). Default `0`. */
  dropout?: number;
  /** Whether to apply a {@link LayerNorm} (eps 1e-5) over the output features, after the affine map. Default `false`. */
  useLayerNorm?: boolean;
}

/** The resolved options of a {@link LinearLayer}: every field set. */
export type LinearLayerConfig = Required<LinearLayerOptions>;

const OPTIONS = ['inFeatures', 'outFeatures', 'bias', 'initType', 'dropout', 'useLayerNorm'] as const;

/**
 * A fully connected layer with optional layer normalisation and dropout, in this order:
 *
 *   y = dropout(layerNorm(x W^T + b))
 *
 * Normalising before dropout means the statistics of the layer norm never see dropped values, and
 * dropout stays the last thing applied, as with the dropout after every sub-layer of a transformer.
 * Without `useLayerNorm` and with `dropout: 0` this is exactly `torch.nn.Linear`.
 * State (PyTorch layout): `weight [outFeatures, inFeatures]`, `bias [outFeatures]` (when `bias`),
 * `layerNorm.weight`, `layerNorm.bias` (when `useLayerNorm`).
 */
export class LinearLayer extends Module {
  /** The resolved options: `new LinearLayer(layer.config)` rebuilds this layer. */
  readonly config: LinearLayerConfig;
  /** `[outFeatures, inFeatures]`, as `torch.nn.Linear.weight`. */
  readonly weight: tf.Variable;
  /** `[outFeatures]`, or `null` with `bias: false`. */
  readonly bias: tf.Variable | null;
  /** The output layer norm, or `null` without `useLayerNorm`. */
  readonly layerNorm: LayerNorm | null;

  constructor(options: LinearLayerOptions) {
    super();
    const {
      inFeatures,
      outFeatures,
      bias = true,
      initType = 'kaiming_uniform',
      dropout: rate = 0,
      useLayerNorm = false,
    } = checkOptions('LinearLayer', options, OPTIONS);
    this.config = Object.freeze({
      inFeatures: checkPositiveInteger('LinearLayer', 'inFeatures', inFeatures),
      outFeatures: checkPositiveInteger('LinearLayer', 'outFeatures', outFeatures),
      bias: checkBoolean('LinearLayer', 'bias', bias),
      initType: checkInitType('LinearLayer', initType),
      dropout: checkDropout('LinearLayer', rate),
      useLayerNorm: checkBoolean('LinearLayer', 'useLayerNorm', useLayerNorm),
    });
    this.weight = parameter([outFeatures, inFeatures], (shape) => initialize(initType, shape));
    this.bias = bias ? parameter([outFeatures], (shape) => uniform(shape, 1 / Math.sqrt(inFeatures))) : null;
    this.layerNorm = useLayerNorm ? new LayerNorm({ normalizedShape: outFeatures }) : null;
  }

  /** Maps `x [..., inFeatures]` (float32, any rank >= 1) to `[..., outFeatures]`. */
  forward(x: tf.Tensor): tf.Tensor {
    const { inFeatures, outFeatures } = this.config;
    checkFeatures('LinearLayer', 'input x', x, inFeatures, 'inFeatures');
    // Output (and its bias, norm and dropout copies): refused before the backend is asked for it.
    checkAllocation('LinearLayer', `output [${[...x.shape.slice(0, -1), outFeatures].join(', ')}]`, 2 * float32Bytes(x.size / inFeatures, outFeatures));
    return tf.tidy(() => {
      const leading = x.shape.slice(0, -1);
      // One 2-D matmul whatever the rank: [..., in] -> [n, in] (wasm is far faster on 2-D operands).
      const rows = tf.reshape(x, [-1, inFeatures]);
      let y = tf.matMul(rows, this.weight, false, true); // [n, in] x [out, in]^T -> [n, out]
      if (this.bias) y = tf.add(y, this.bias);
      y = tf.reshape(y, [...leading, outFeatures]); // [n, out] -> [..., out]
      if (this.layerNorm) y = this.layerNorm.forward(y);
      return dropout(y, this.config.dropout, this.training);
    });
  }
}
