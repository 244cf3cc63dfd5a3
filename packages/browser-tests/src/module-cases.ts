/**
 * Every public MIE module, each with a small configuration and inputs, for the backend-agreement
 * check on webgpu and webgl (in Node and in Chromium). The configurations follow the module
 * batteries of each package. Browser-safe: imports only the model packages and browser-safe test helpers.
 */
import { tf } from '@mie/core';
import { FeedForwardBlock, FeedForwardClassifier, FeedForwardNN, LayerNorm, LinearLayer, MultiLayerPerceptron, RMSNorm } from '@mie/layers';
import { ALiBiAttention, GroupedQueryAttention, MultiHeadAttention, ScaledDotProductAttention, SimpleAttention } from '@mie/attention';
import { PositionalEncoding, RotaryPositionEncoding } from '@mie/positional';
import { PatchEmbedding, TokenEmbedding } from '@mie/embeddings';
import {
  DecoderOnlyTransformer,
  EncoderDecoderTransformer,
  ImageToSequenceTransformer,
  Transformer,
  TransformerDecoder,
  TransformerDecoderLayer,
  TransformerEncoder,
  TransformerEncoderLayer,
  VisionTransformerEncoder,
} from '@mie/transformer';
import type { ConfigurableModule, InputFactory } from '@mie/test-utils/backend-agreement';
import { withInputScale } from '@mie/test-utils/test-modules';

export interface ModuleCase {
  /** Unique, e.g. `MultiHeadAttention (rotary, cross)`. */
  name: string;
  factory: () => ConfigurableModule;
  input: InputFactory;
  /** Compare in training mode: dropout on, the same masks on every backend. */
  training?: boolean;
}

const normal = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
const ids = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
const randomIds = (vocab: number, t: number, seed: number) => tf.tidy(() => tf.cast(tf.randomUniform([2, t], 1, vocab, 'float32', seed), 'int32'));
const x = (t = 5) => normal([2, t, 16], 7);

const ScaledPositional = withInputScale(PositionalEncoding);
const ScaledRotary = withInputScale(RotaryPositionEncoding);

export const MODULE_CASES: readonly ModuleCase[] = [
  // @mie/layers
  { name: 'LinearLayer (layer norm, dropout)', factory: () => new LinearLayer({ inFeatures: 6, outFeatures: 5, useLayerNorm: true, dropout: 0.1 }), input: () => [normal([2, 3, 6], 5)] },
  { name: 'FeedForwardBlock (residual, norm)', factory: () => new FeedForwardBlock({ inputDim: 6, hiddenDim: 12, activation: 'silu', useLayerNorm: true, useResidual: true }), input: () => [normal([2, 3, 6], 5)] },
  { name: 'FeedForwardNN', factory: () => new FeedForwardNN({ inputSize: 5, hiddenSizes: [8, 6], outputSize: 3, activation: 'sigmoid', useLayerNorm: true }), input: () => [normal([4, 5], 5)] },
  { name: 'FeedForwardClassifier', factory: () => new FeedForwardClassifier({ inputSize: 6, hiddenSizes: [8, 8], numClasses: 4, activation: 'gelu', dropout: 0.2, useLayerNorm: true, useResidual: true }), input: () => [normal([5, 6], 5)] },
  { name: 'MultiLayerPerceptron', factory: () => new MultiLayerPerceptron({ inputDim: 4, hiddenDims: [7], outputDim: 3, activation: 'tanh' }), input: () => [normal([3, 4], 5)] },
  { name: 'LayerNorm', factory: () => new LayerNorm({ normalizedShape: 6 }), input: () => [tf.randomNormal([2, 3, 6], 1, 2, 'float32', 8)] },
  { name: 'RMSNorm', factory: () => new RMSNorm({ normalizedShape: 6 }), input: () => [normal([2, 3, 6], 8)] },
  // @mie/attention
  {
    name: 'ScaledDotProductAttention (mask)',
    factory: () => new ScaledDotProductAttention({ dropout: 0.1 }),
    input: () => [...[3, 4, 5].map((seed) => normal([2, 4, 6], seed)), { mask: tf.tensor2d([[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 1]]) }],
  },
  {
    name: 'MultiHeadAttention (causal, key padding)',
    factory: () => new MultiHeadAttention({ inputDim: 16, numHeads: 4 }),
    input: () => {
      const input = x();
      return [input, input, input, { causal: true, keyPaddingMask: tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]) }];
    },
  },
  { name: 'MultiHeadAttention (rotary, cross)', factory: () => new MultiHeadAttention({ inputDim: 16, numHeads: 2, useRotaryEmbeddings: true, maxSeqLength: 16 }), input: () => [x(), normal([2, 5, 16], 8), normal([2, 5, 16], 9)] },
  { name: 'SimpleAttention', factory: () => new SimpleAttention({ inputDim: 16, attentionDim: 8 }), input: () => [x()] },
  { name: 'GroupedQueryAttention (causal)', factory: () => new GroupedQueryAttention({ dModel: 16, numHeads: 4, numKeyValueHeads: 2 }), input: () => [x(), { causal: true }] },
  { name: 'ALiBiAttention', factory: () => new ALiBiAttention({ hiddenSize: 16, numHeads: 8 }), input: () => [x()] },
  {
    name: 'MultiHeadAttention (grouped heads, ALiBi, causal)',
    factory: () => new MultiHeadAttention({ inputDim: 16, numHeads: 4, numKeyValueHeads: 2, positionalEncoding: 'alibi', maxSeqLength: 16 }),
    input: () => [x(), x(), x(), { causal: true }],
  },
  // @mie/positional
  { name: 'PositionalEncoding (learned, offset)', factory: () => new PositionalEncoding({ dModel: 8, maxSeqLength: 16, encodingType: 'learned' }), input: () => [normal([2, 5, 8], 11), { offset: 9 }] },
  { name: 'PositionalEncoding (sinusoidal)', factory: () => new ScaledPositional({ dModel: 8, maxSeqLength: 16 }), input: () => [normal([2, 5, 8], 11), { offset: 3 }] },
  ...[false, true].map((interleaved) => ({
    name: `RotaryPositionEncoding (interleaved ${interleaved})`,
    factory: () => new ScaledRotary({ headDim: 8, maxSeqLength: 16, interleaved }),
    input: () => [normal([2, 5, 2, 8], 1), normal([2, 3, 1, 8], 2), { offset: 4 }],
  })),
  // @mie/embeddings
  { name: 'PatchEmbedding (RGB)', factory: () => new PatchEmbedding({ imageSize: [8, 12], patchSize: 4, numChannels: 3, dModel: 6 }), input: () => [tf.randomUniform([2, 8, 12, 3], 0, 1, 'float32', 4)] },
  { name: 'TokenEmbedding (padding row)', factory: () => new TokenEmbedding({ vocabSize: 9, dModel: 5, paddingIdx: -1 }), input: () => [ids([[0, 8, 3, 3], [8, 1, 2, 7]])] },
  // @mie/transformer
  ...(['relu', 'gelu'] as const).map((activation, i) => ({
    name: `TransformerEncoderLayer (${i ? 'pre-norm' : 'post-norm'} ${activation})`,
    factory: () => new TransformerEncoderLayer({ dModel: 16, numHeads: 4, dFf: 32, normFirst: i === 1, activation }),
    input: () => [x(), { keyPaddingMask: tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]) }],
  })),
  {
    name: 'TransformerDecoderLayer (rotary, causal, memory padding)',
    factory: () => new TransformerDecoderLayer({ dModel: 16, numHeads: 2, dFf: 32, useRotaryEmbeddings: true, maxSeqLength: 32 }),
    input: () => [x(4), x(6), { causal: true, memoryKeyPaddingMask: tf.tensor2d([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]) }],
  },
  {
    name: 'TransformerEncoder (learned positions, pre-norm)',
    factory: () => new TransformerEncoder({ vocabSize: 11, dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, positionalEncoding: 'learned', maxSeqLength: 8, normFirst: true }),
    input: () => [randomIds(11, 5, 1)],
  },
  {
    name: 'TransformerDecoder (rotary)',
    factory: () => new TransformerDecoder({ vocabSize: 9, dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, positionalEncoding: 'rotary', maxSeqLength: 16 }),
    input: () => [randomIds(9, 4, 2), x(6), { causal: true }],
  },
  {
    name: 'EncoderDecoderTransformer (padding from padTokenId)',
    factory: () => new EncoderDecoderTransformer({ srcVocabSize: 13, tgtVocabSize: 11, dModel: 16, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 1, dFf: 32, padTokenId: 0 }),
    input: () => [ids([[3, 4, 5, 6, 0], [7, 8, 0, 0, 0]]), ids([[1, 2, 3], [1, 4, 0]])],
  },
  {
    name: 'Transformer (continuous features, input and output projections)',
    factory: () => new Transformer({ dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, maxSeqLength: 16, inputDim: 6, outputDim: 3 }),
    input: () => [normal([2, 5, 6], 12)],
  },
  {
    name: 'DecoderOnlyTransformer (rotary, grouped heads, pre-norm)',
    factory: () => new DecoderOnlyTransformer({ vocabSize: 10, dModel: 16, numHeads: 4, numKeyValueHeads: 2, numLayers: 2, dFf: 32, maxSeqLength: 16, positionalEncoding: 'rotary', normFirst: true }),
    input: () => [randomIds(10, 5, 5)],
  },
  {
    name: 'DecoderOnlyTransformer (ALiBi, padding from padTokenId)',
    factory: () => new DecoderOnlyTransformer({ vocabSize: 10, dModel: 16, numHeads: 2, numLayers: 1, dFf: 32, maxSeqLength: 16, positionalEncoding: 'alibi', padTokenId: 0 }),
    input: () => [ids([[0, 0, 3, 4, 5], [6, 7, 8, 9, 1]])],
  },
  {
    name: 'VisionTransformerEncoder (class token, learned positions, pre-norm)',
    factory: () => new VisionTransformerEncoder({ imageSize: [8, 12], patchSize: 4, numChannels: 1, dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, normFirst: true }),
    input: () => [tf.randomUniform([2, 8, 12, 1], 0, 1, 'float32', 5)],
  },
  {
    name: 'ImageToSequenceTransformer (2-D sinusoidal positions, padding from padTokenId)',
    factory: () =>
      new ImageToSequenceTransformer({
        imageSize: [8, 12], patchSize: 4, numChannels: 1, vocabSize: 9, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32,
        maxSeqLength: 8, positionalEncoding: 'sinusoidal', padTokenId: 0,
      }),
    input: () => [tf.randomUniform([2, 8, 12, 1], 0, 1, 'float32', 6), ids([[1, 3, 4, 5], [1, 6, 0, 0]])],
  },
  // Training mode: MIE's dropout (host-drawn masks) and the gradients through it.
  {
    name: 'FeedForwardClassifier (training, dropout 0.2)',
    factory: () => new FeedForwardClassifier({ inputSize: 6, hiddenSizes: [8, 8], numClasses: 4, dropout: 0.2, useLayerNorm: true }),
    input: () => [normal([5, 6], 5)],
    training: true,
  },
  {
    name: 'EncoderDecoderTransformer (training, dropout 0.1)',
    factory: () => new EncoderDecoderTransformer({ srcVocabSize: 13, tgtVocabSize: 11, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, dropout: 0.1, padTokenId: 0 }),
    input: () => [ids([[3, 4, 5, 6, 0], [7, 8, 0, 0, 0]]), ids([[1, 2, 3], [1, 4, 0]])],
    training: true,
  },
  {
    name: 'EncoderDecoderTransformer (shared embeddings, sinusoidal)',
    factory: () => new EncoderDecoderTransformer({ srcVocabSize: 12, tgtVocabSize: 12, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, shareEmbeddings: true }),
    input: () => [randomIds(12, 5, 3), randomIds(12, 4, 4)],
  },
];
