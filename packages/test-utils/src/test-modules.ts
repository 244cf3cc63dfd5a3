/**
 * Small modules built only from @mie/core, used to test the battery itself (and core's Module
 * and BaseModel through it).
 */
import { BaseModel, Module, dropout, parameter, registerModel, tf, xavierUniform, kaimingUniform } from '@mie/core';

export interface TinyMlpOptions {
  inputSize: number;
  hiddenSize: number;
  outputSize: number;
  dropout?: number;
}

/** Dense -> tanh -> dropout -> dense, with an embedded child module for nesting. */
export class TinyMlp extends BaseModel<Required<TinyMlpOptions>> {
  readonly config: Required<TinyMlpOptions>;
  first: TinyDense;
  second: TinyDense;

  constructor(options: TinyMlpOptions) {
    super();
    this.config = { dropout: 0, ...options };
    this.first = new TinyDense({ inFeatures: options.inputSize, outFeatures: options.hiddenSize });
    this.second = new TinyDense({ inFeatures: options.hiddenSize, outFeatures: options.outputSize });
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.second.forward(dropout(tf.tanh(this.first.forward(x)), this.config.dropout, this.training)));
  }
}
registerModel(TinyMlp);

/** y = x W^T + b with PyTorch layout. */
export class TinyDense extends Module {
  readonly config: { inFeatures: number; outFeatures: number };
  weight: tf.Variable;
  bias: tf.Variable;

  constructor(config: { inFeatures: number; outFeatures: number }) {
    super();
    this.config = { ...config };
    this.weight = parameter([config.outFeatures, config.inFeatures], (shape) => kaimingUniform(shape));
    this.bias = parameter([config.outFeatures], (shape) => tf.zeros(shape));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.add(tf.matMul(x, this.weight, false, true), this.bias));
  }
}

/** An embedding table with a gather forward (exercises UnsortedSegmentSum on wasm). */
export class TinyEmbedding extends Module {
  readonly config: { vocabSize: number; dim: number };
  weight: tf.Variable;

  constructor(config: { vocabSize: number; dim: number }) {
    super();
    this.config = { ...config };
    this.weight = parameter([config.vocabSize, config.dim], (shape) => xavierUniform(shape));
  }

  forward(ids: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.gather(this.weight, ids));
  }
}

/**
 * Wraps a module without parameters behind a trainable scalar `scale` (1) that multiplies its first
 * input. The battery skips gradient checks for parameter-free modules; through the wrapper it
 * checks that gradients flow through the wrapped module and agree on cpu and wasm.
 */
export function withInputScale<O extends object, M extends Module & { readonly config: O }>(
  Inner: new (options: O) => M,
): new (options: O) => Module & { readonly config: O; inner: M } {
  return class InputScaled extends Module {
    readonly config: O;
    scale = parameter(() => tf.ones([1]));
    inner: M;

    constructor(options: O) {
      super();
      this.inner = new Inner(options);
      this.config = this.inner.config;
    }

    forward(x: tf.Tensor, ...rest: unknown[]): unknown {
      return tf.tidy(() => (this.inner.forward as (...args: unknown[]) => tf.TensorContainer)(tf.mul(x, this.scale), ...rest));
    }
  };
}
