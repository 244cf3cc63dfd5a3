/**
 * The stack of hidden layers shared by `FeedForwardNN` (and so `FeedForwardClassifier`) and
 * `MultiLayerPerceptron`. Hidden layer i, of width `widths[i + 1]`, computes
 *
 *   h = dropout(activation(linear_i(x)))      // linear_i = x W^T + b, then its layer norm if any
 *   h = residual && width unchanged ? x + h : h
 */
import { dropout, tf } from '@mie/core';
import type { ActivationFunction, ActivationName } from './activations';
import { LinearLayer } from './linear-layer';

/**
 * One `LinearLayer` per hidden width, initialised with Kaiming-uniform for `'relu'` and
 * Xavier-uniform otherwise, with a layer norm on its output when `useLayerNorm`.
 */
export function createHiddenLayers(
  inputSize: number,
  hiddenSizes: readonly number[],
  activation: ActivationName,
  useLayerNorm: boolean,
): LinearLayer[] {
  const initType = activation === 'relu' ? 'kaiming_uniform' : 'xavier_uniform';
  return hiddenSizes.map(
    (width, i) => new LinearLayer({ inFeatures: i === 0 ? inputSize : hiddenSizes[i - 1], outFeatures: width, initType, useLayerNorm }),
  );
}

/** Runs `x` through the hidden layers (see the file comment). Call inside a `tf.tidy`. */
export function hiddenLayersForward(
  layers: readonly LinearLayer[],
  x: tf.Tensor,
  activation: ActivationFunction,
  rate: number,
  training: boolean,
  useResidual: boolean,
): tf.Tensor {
  return layers.reduce((input, layer) => {
    const h = dropout(activation(layer.forward(input)), rate, training);
    return useResidual && layer.config.inFeatures === layer.config.outFeatures ? tf.add(input, h) : h;
  }, x);
}
