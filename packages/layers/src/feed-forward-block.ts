import { checkBoolean, checkDropout, checkFeatures, checkOptions, checkPositiveInteger, dropout, MieConfigError, Module, tf } from '@mie/core';
import { checkActivation, getActivation, type ActivationFunction, type ActivationName } from './activations';
import { LayerNorm } from './layer-norm';
import { LinearLayer } from './linear-layer';

/** Options of {@link FeedForwardBlock}. */
export interface FeedForwardBlockOptions {
  /** Width of the input, the last dimension of `x`. Required. */
  inputDim: number;
  /** Width of the inner layer. Default `4 * inputDim` (the transformer's expansion). */
  hiddenDim?: number;
  /** Width of the output. Default `inputDim`. */
  outputDim?: number;
  /** Activation after `linear1`: `'relu'` (default), `'gelu'` (exact erf), `'tanh'`, `'sigmoid'` or `'silu'`. */
  activation?: ActivationName;
  /** Dropout probability after the activation and after `linear2`, in training mode. Default `0`. */
  dropout?: number;
  /** Whether to apply a {@link LayerNorm} (eps 1e-5) to the output, after the residual sum. Default `false`. */
  useLayerNorm?: boolean;
  /** Whether to add the input to the output (needs `outputDim === inputDim`). Default `false`. */
  useResidual?: boolean;
}

/** The resolved options of a {@link FeedForwardBlock}: every field set. */
export type FeedForwardBlockConfig = Required<FeedForwardBlockOptions>;

const OPTIONS = ['inputDim', 'hiddenDim', 'outputDim', 'activation', 'dropout', 'useLayerNorm', 'useResidual'] as const;

/**
 * The position-wise feed-forward block of the transformer (Vaswani et al. 2017), with an optional
 * residual connection and post-norm, in this order (PyTorch's `TransformerEncoderLayer` `_ff_block`
 * and `norm2`):
 *
 *   h = dropout(activation(linear1(x)))
 *   y = dropout(linear2(h))                 // linear2's own dropout
 *   y = useResidual ? x + y : y
 *   y = useLayerNorm ? layerNorm(y) : y
 *
 * `linear1` is initialised with Kaiming-uniform for `'relu'` and Xavier-uniform otherwise, and
 * `linear2` with Xavier-uniform (as in the design); biases are uniform(+-1/sqrt(fanIn)).
 * State: `linear1.{weight,bias}`, `linear2.{weight,bias}`, `layerNorm.{weight,bias}` (when `useLayerNorm`).
 */
export class FeedForwardBlock extends Module {
  /** The resolved options: `new FeedForwardBlock(block.config)` rebuilds this block. */
  readonly config: FeedForwardBlockConfig;
  /** `inputDim -> hiddenDim`. */
  readonly linear1: LinearLayer;
  /** `hiddenDim -> outputDim`, with the output dropout. */
  readonly linear2: LinearLayer;
  /** The output layer norm, or `null` without `useLayerNorm`. */
  readonly layerNorm: LayerNorm | null;
  readonly #activation: ActivationFunction;

  constructor(options: FeedForwardBlockOptions) {
    super();
    const name = 'FeedForwardBlock';
    const { inputDim, hiddenDim, outputDim, activation = 'relu', dropout: rate = 0, useLayerNorm = false, useResidual = false } =
      checkOptions(name, options, OPTIONS);
    checkPositiveInteger(name, 'inputDim', inputDim);
    const config: FeedForwardBlockConfig = {
      inputDim,
      hiddenDim: checkPositiveInteger(name, 'hiddenDim', hiddenDim ?? 4 * inputDim),
      outputDim: checkPositiveInteger(name, 'outputDim', outputDim ?? inputDim),
      activation: checkActivation(name, activation),
      dropout: checkDropout(name, rate),
      useLayerNorm: checkBoolean(name, 'useLayerNorm', useLayerNorm),
      useResidual: checkBoolean(name, 'useResidual', useResidual),
    };
    if (config.useResidual && config.outputDim !== config.inputDim) {
      throw new MieConfigError(
        `${name}: option "useResidual" needs outputDim equal to inputDim, since the residual adds the input to the output. ` +
          `Received: useResidual true with inputDim ${config.inputDim} and outputDim ${config.outputDim}.`,
      );
    }
    this.config = Object.freeze(config);
    this.#activation = getActivation(config.activation, name);
    this.linear1 = new LinearLayer({
      inFeatures: config.inputDim,
      outFeatures: config.hiddenDim,
      initType: config.activation === 'relu' ? 'kaiming_uniform' : 'xavier_uniform',
    });
    this.linear2 = new LinearLayer({
      inFeatures: config.hiddenDim,
      outFeatures: config.outputDim,
      initType: 'xavier_uniform',
      dropout: config.dropout,
    });
    this.layerNorm = config.useLayerNorm ? new LayerNorm({ normalizedShape: config.outputDim }) : null;
  }

  /** Maps `x [..., inputDim]` (float32, any rank >= 1) to `[..., outputDim]`. */
  forward(x: tf.Tensor): tf.Tensor {
    checkFeatures('FeedForwardBlock', 'input x', x, this.config.inputDim, 'inputDim');
    return tf.tidy(() => {
      const hidden = dropout(this.#activation(this.linear1.forward(x)), this.config.dropout, this.training);
      let y = this.linear2.forward(hidden);
      if (this.config.useResidual) y = tf.add(x, y);
      return this.layerNorm ? this.layerNorm.forward(y) : y;
    });
  }
}
