import { BaseModel, checkBoolean, checkDropout, checkFeatures, checkOptions, checkPositiveInteger, checkPositiveIntegers, registerModel, tf } from '@mie/core';
import { checkActivation, getActivation, type ActivationFunction, type ActivationName } from './activations';
import { createHiddenLayers, hiddenLayersForward } from './hidden-layers';
import { LinearLayer } from './linear-layer';

/** Options of {@link FeedForwardNN}. */
export interface FeedForwardNNOptions {
  /** Number of input features, the last dimension of `x`. Required. */
  inputSize: number;
  /** Widths of the hidden layers, in order; `[]` makes a single linear map. Required. */
  hiddenSizes: readonly number[];
  /** Number of outputs, the last dimension of the result. Required. */
  outputSize: number;
  /** Activation after every hidden layer: `'relu'` (default), `'gelu'` (exact erf), `'tanh'`, `'sigmoid'` or `'silu'`. */
  activation?: ActivationName;
  /** Dropout probability after every hidden activation, in training mode. Default `0`. */
  dropout?: number;
  /** Whether every hidden layer normalises its pre-activation output with a LayerNorm (eps 1e-5). Default `false`. */
  useLayerNorm?: boolean;
  /**
   * Whether hidden layers whose input and output widths match add their input to their output
   * (`x + layer(x)`); layers that change the width have no residual. Default `false`.
   */
  useResidual?: boolean;
}

/** The resolved options of a {@link FeedForwardNN}: every field set. */
export interface FeedForwardNNConfig {
  readonly inputSize: number;
  readonly hiddenSizes: readonly number[];
  readonly outputSize: number;
  readonly activation: ActivationName;
  readonly dropout: number;
  readonly useLayerNorm: boolean;
  readonly useResidual: boolean;
}

const OPTIONS = ['inputSize', 'hiddenSizes', 'outputSize', 'activation', 'dropout', 'useLayerNorm', 'useResidual'] as const;

/** Validates the options of a {@link FeedForwardNN} (or a subclass called `name`) and fills in the defaults. */
function resolveOptions(name: string, options: FeedForwardNNOptions): FeedForwardNNConfig {
  const { inputSize, hiddenSizes, outputSize, activation = 'relu', dropout = 0, useLayerNorm = false, useResidual = false } =
    checkOptions(name, options, OPTIONS);
  return {
    inputSize: checkPositiveInteger(name, 'inputSize', inputSize),
    hiddenSizes: Object.freeze(checkPositiveIntegers(name, 'hiddenSizes', hiddenSizes)),
    outputSize: checkPositiveInteger(name, 'outputSize', outputSize),
    activation: checkActivation(name, activation),
    dropout: checkDropout(name, dropout),
    useLayerNorm: checkBoolean(name, 'useLayerNorm', useLayerNorm),
    useResidual: checkBoolean(name, 'useResidual', useResidual),
  };
}

/**
 * A configurable feed-forward network (the design's `FeedForwardNN`, a `BaseModel` that saves and
 * loads). Each hidden layer computes, in this order,
 *
 *   h = dropout(activation(layerNorm(x W^T + b)))     // layerNorm only with useLayerNorm
 *   h = useResidual && width unchanged ? x + h : h
 *
 * and a plain linear `outputLayer` (no activation, normalisation or dropout) gives the output.
 * Hidden layers are initialised with Kaiming-uniform for `'relu'` and Xavier-uniform otherwise,
 * the output layer with Xavier-uniform; biases are uniform(+-1/sqrt(fanIn)).
 * State: `hiddenLayers.N.{weight,bias}`, `hiddenLayers.N.layerNorm.{weight,bias}` (with
 * `useLayerNorm`), `outputLayer.{weight,bias}`.
 *
 * `Config` is the type of `config`: subclasses with their own option names (as
 * {@link FeedForwardClassifier}) set it and override `configFrom`.
 */
export class FeedForwardNN<Config extends object = FeedForwardNNConfig> extends BaseModel<Config> {
  /** The resolved options: `new FeedForwardNN(model.config)` rebuilds this architecture. */
  readonly config: Config;
  /** One linear layer per entry of `hiddenSizes`. */
  readonly hiddenLayers: LinearLayer[];
  /** `lastHiddenSize -> outputSize` (or `inputSize -> outputSize` without hidden layers). */
  readonly outputLayer: LinearLayer;
  /** The network options, whatever names the subclass's `config` uses. */
  protected readonly network: FeedForwardNNConfig;
  readonly #activation: ActivationFunction;

  constructor(options: FeedForwardNNOptions) {
    super();
    this.network = Object.freeze(resolveOptions(new.target.name, options));
    this.config = Object.freeze(this.configFrom(this.network));
    const { inputSize, hiddenSizes, outputSize, activation, useLayerNorm } = this.network;
    this.#activation = getActivation(activation, new.target.name);
    this.hiddenLayers = createHiddenLayers(inputSize, hiddenSizes, activation, useLayerNorm);
    this.outputLayer = new LinearLayer({
      inFeatures: hiddenSizes.length > 0 ? hiddenSizes[hiddenSizes.length - 1] : inputSize,
      outFeatures: outputSize,
      initType: 'xavier_uniform',
    });
  }

  /**
   * The `config` kept for the resolved network options. Called once from the constructor, before
   * a subclass's own fields exist: it may only read its argument.
   */
  protected configFrom(network: FeedForwardNNConfig): Config {
    return network as unknown as Config;
  }

  /** Maps `x [..., inputSize]` (float32, usually `[batch, inputSize]`) to `[..., outputSize]`. */
  forward(x: tf.Tensor): tf.Tensor {
    const { inputSize, dropout, useResidual } = this.network;
    checkFeatures(this.constructor.name, 'input x', x, inputSize, 'inputSize');
    return tf.tidy(() => {
      const hidden = hiddenLayersForward(this.hiddenLayers, x, this.#activation, dropout, this.training, useResidual);
      return this.outputLayer.forward(hidden);
    });
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(FeedForwardNN, 'FeedForwardNN');
