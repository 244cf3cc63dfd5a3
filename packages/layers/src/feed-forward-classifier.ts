import { checkOptions, checkPositiveInteger, registerModel, tf } from '@mie/core';
import type { ActivationName } from './activations';
import { FeedForwardNN, type FeedForwardNNConfig, type FeedForwardNNOptions } from './feed-forward-nn';

/** Options of {@link FeedForwardClassifier}. */
export interface FeedForwardClassifierOptions {
  /** Number of input features, the last dimension of `x`. Required. */
  inputSize: number;
  /** Widths of the hidden layers, in order; `[]` makes multinomial logistic regression. Required. */
  hiddenSizes: readonly number[];
  /** Number of classes (>= 2), the width of the logits. Required. */
  numClasses: number;
  /** Dropout probability after every hidden activation, in training mode. Default `0`. */
  dropout?: number;
  /** Activation after every hidden layer: `'relu'` (default), `'gelu'` (exact erf), `'tanh'`, `'sigmoid'` or `'silu'`. */
  activation?: ActivationName;
  /** Whether every hidden layer normalises its pre-activation output with a LayerNorm (eps 1e-5). Default `false`. */
  useLayerNorm?: boolean;
  /** Whether hidden layers whose input and output widths match add their input to their output. Default `false`. */
  useResidual?: boolean;
}

/** The resolved options of a {@link FeedForwardClassifier}: every field set. */
export interface FeedForwardClassifierConfig {
  readonly inputSize: number;
  readonly hiddenSizes: readonly number[];
  readonly numClasses: number;
  readonly dropout: number;
  readonly activation: ActivationName;
  readonly useLayerNorm: boolean;
  readonly useResidual: boolean;
}

const OPTIONS = ['inputSize', 'hiddenSizes', 'numClasses', 'dropout', 'activation', 'useLayerNorm', 'useResidual'] as const;

/** Checks the classifier's own options and renames `numClasses` to the network's `outputSize`. */
function networkOptions(options: FeedForwardClassifierOptions): FeedForwardNNOptions {
  const { numClasses, ...rest } = checkOptions('FeedForwardClassifier', options, OPTIONS);
  return { ...rest, outputSize: checkPositiveInteger('FeedForwardClassifier', 'numClasses', numClasses, 2) };
}

/**
 * A feed-forward classifier (the design's `FeedForwardClassifier`): a {@link FeedForwardNN} whose
 * `forward` gives logits `[..., numClasses]`, plus `predict` (class ids) and `predictProba`
 * (softmax probabilities). Train it on `forward` with a cross-entropy loss on the logits
 * (`tf.losses.softmaxCrossEntropy`). Same layers, order of operations and state names as
 * `FeedForwardNN`.
 */
export class FeedForwardClassifier extends FeedForwardNN<FeedForwardClassifierConfig> {
  /** Builds the network `inputSize -> ...hiddenSizes -> numClasses`; throws a `MieConfigError` on a bad option. */
  constructor(options: FeedForwardClassifierOptions) {
    super(networkOptions(options));
  }

  /** Keeps the classifier's own option names: `numClasses` rather than the network's `outputSize`. */
  protected override configFrom(network: FeedForwardNNConfig): FeedForwardClassifierConfig {
    const { inputSize, hiddenSizes, outputSize, dropout, activation, useLayerNorm, useResidual } = network;
    return { inputSize, hiddenSizes, numClasses: outputSize, dropout, activation, useLayerNorm, useResidual };
  }

  /** Number of classes. */
  get numClasses(): number {
    return this.config.numClasses;
  }

  /**
   * The most probable class of each row of `x [..., inputSize]`: int32 `[...]`. Computed in
   * evaluation mode (no dropout) whatever the current mode, which it leaves unchanged.
   */
  predict(x: tf.Tensor): tf.Tensor {
    return this.#evaluate(() => tf.argMax(this.forward(x), -1));
  }

  /**
   * Class probabilities of each row of `x [..., inputSize]`: float32 `[..., numClasses]`, the
   * softmax of the logits. Computed in evaluation mode, which it leaves unchanged.
   */
  predictProba(x: tf.Tensor): tf.Tensor {
    return this.#evaluate(() => tf.softmax(this.forward(x), -1));
  }

  /** Runs `compute` with every submodule in evaluation mode, then restores each module's mode. */
  #evaluate(compute: () => tf.Tensor): tf.Tensor {
    const modes = this.modules().map((module) => [module, module.training] as const);
    this.eval();
    try {
      return tf.tidy(compute);
    } finally {
      for (const [module, training] of modes) module.training = training;
    }
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(FeedForwardClassifier, 'FeedForwardClassifier');
