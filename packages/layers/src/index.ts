/**
 * @mie/layers: the building blocks under every MIE model: `LinearLayer`, `LayerNorm`, `RMSNorm`,
 * activations by name, `FeedForwardBlock`, and the saveable models `FeedForwardNN`,
 * `FeedForwardClassifier` and `MultiLayerPerceptron`.
 */
export {
  ACTIVATIONS,
  checkActivation,
  getActivation,
  relu,
  gelu,
  tanh,
  sigmoid,
  silu,
  type ActivationFunction,
  type ActivationName,
} from './activations';
export { LinearLayer, type LinearLayerConfig, type LinearLayerOptions } from './linear-layer';
export { LayerNorm, type LayerNormConfig, type LayerNormOptions } from './layer-norm';
export { RMSNorm, RMS_NORM_DEFAULT_EPS, type RMSNormConfig, type RMSNormOptions } from './rms-norm';
export { FeedForwardBlock, type FeedForwardBlockConfig, type FeedForwardBlockOptions } from './feed-forward-block';
export { FeedForwardNN, type FeedForwardNNConfig, type FeedForwardNNOptions } from './feed-forward-nn';
export { FeedForwardClassifier, type FeedForwardClassifierConfig, type FeedForwardClassifierOptions } from './feed-forward-classifier';
export {
  MultiLayerPerceptron,
  type MultiLayerPerceptronConfig,
  type MultiLayerPerceptronOptions,
} from './multi-layer-perceptron';
