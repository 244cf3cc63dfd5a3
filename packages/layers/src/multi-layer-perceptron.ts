import { BaseModel, checkBoolean, checkDropout, checkFeatures, checkOptions, checkPositiveInteger, checkPositiveIntegers, registerModel, tf } from '@mie/core';
import { checkActivation, getActivation, type ActivationFunction, type ActivationName } from './activations';
import { createHiddenLayers, hiddenLayersForward } from './hidden-layers';
import { LinearLayer } from './linear-layer';

/** Options of {@link MultiLayerPerceptron}. */
export interface MultiLayerPerceptronOptions {
  /** Number of input features, the last dimension of `x`. Required. */
  inputDim: number;
  /** Widths of the hidden layers, in order; `[]` makes a single linear map. Required. */
  hiddenDims: readonly number[];
  /** Number of outputs, the last dimension of the result. Required. */
  outputDim: number;
  /** Activation after every hidden layer: `'relu'` (default), `'gelu'` (exact erf), `'tanh'`, `'sigmoid'` or `'silu'`. */
  activation?: ActivationName;
  /** Dropout probability after every hidden activation, in training mode. Default `0`. */
  dropout?: number;
  /** Whether every hidden layer normalises its pre-activation output with a LayerNorm (eps 1e-5). Default `false`. */
  useLayerNorm?: boolean;
}

/** The resolved options of a {@link MultiLayerPerceptron}: every field set. */
export interface MultiLayerPerceptronConfig {
  readonly inputDim: number;
  readonly hiddenDims: readonly number[];
  readonly outputDim: number;
  readonly activation: ActivationName;
  readonly dropout: number;
  readonly useLayerNorm: boolean;
}

const OPTIONS = ['inputDim', 'hiddenDims', 'outputDim', 'activation', 'dropout', 'useLayerNorm'] as const;

/**
 * A multi-layer perceptron (the design's `MultiLayerPerceptron`, a `BaseModel` that saves and
 * loads): hidden layers `h = dropout(activation(layerNorm(x W^T + b)))` (layerNorm only with
 * `useLayerNorm`), then a plain linear `outputLayer` with no activation, normalisation or dropout.
 * It is {@link FeedForwardNN} without residual connections, under the design's `*Dim` names.
 * State: `hiddenLayers.N.{weight,bias}`, `hiddenLayers.N.layerNorm.{weight,bias}` (with
 * `useLayerNorm`), `outputLayer.{weight,bias}`.
 */
export class MultiLayerPerceptron extends BaseModel<MultiLayerPerceptronConfig> {
  /** The resolved options: `new MultiLayerPerceptron(mlp.config)` rebuilds this architecture. */
  readonly config: MultiLayerPerceptronConfig;
  /** One linear layer per entry of `hiddenDims` (Kaiming-uniform for `'relu'`, else Xavier-uniform). */
  readonly hiddenLayers: LinearLayer[];
  /** `lastHiddenDim -> outputDim` (Xavier-uniform), or `inputDim -> outputDim` without hidden layers. */
  readonly outputLayer: LinearLayer;
  readonly #activation: ActivationFunction;

  constructor(options: MultiLayerPerceptronOptions) {
    super();
    const name = 'MultiLayerPerceptron';
    const { inputDim, hiddenDims, outputDim, activation = 'relu', dropout = 0, useLayerNorm = false } = checkOptions(name, options, OPTIONS);
    this.config = Object.freeze({
      inputDim: checkPositiveInteger(name, 'inputDim', inputDim),
      hiddenDims: Object.freeze(checkPositiveIntegers(name, 'hiddenDims', hiddenDims)),
      outputDim: checkPositiveInteger(name, 'outputDim', outputDim),
      activation: checkActivation(name, activation),
      dropout: checkDropout(name, dropout),
      useLayerNorm: checkBoolean(name, 'useLayerNorm', useLayerNorm),
    });
    this.#activation = getActivation(activation, name);
    this.hiddenLayers = createHiddenLayers(inputDim, this.config.hiddenDims, activation, useLayerNorm);
    this.outputLayer = new LinearLayer({
      inFeatures: hiddenDims.length > 0 ? hiddenDims[hiddenDims.length - 1] : inputDim,
      outFeatures: outputDim,
      initType: 'xavier_uniform',
    });
  }

  /** Maps `x [..., inputDim]` (float32, usually `[batch, inputDim]`) to `[..., outputDim]`. */
  forward(x: tf.Tensor): tf.Tensor {
    checkFeatures('MultiLayerPerceptron', 'input x', x, this.config.inputDim, 'inputDim');
    return tf.tidy(() => {
      const hidden = hiddenLayersForward(this.hiddenLayers, x, this.#activation, this.config.dropout, this.training, false);
      return this.outputLayer.forward(hidden);
    });
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(MultiLayerPerceptron, 'MultiLayerPerceptron');
