import { setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { DecoderOnlyTransformer, type DecoderOnlyTransformerOptions } from './decoder-only-transformer';
import { EncoderDecoderTransformer } from './encoder-decoder-transformer';
import { ImageToSequenceTransformer } from './image-to-sequence-transformer';
import { TransformerDecoder } from './transformer-decoder';
import { TransformerDecoderLayer } from './transformer-decoder-layer';
import { TransformerEncoder } from './transformer-encoder';
import { TransformerEncoderLayer } from './transformer-encoder-layer';
import { VisionTransformerEncoder } from './vision-transformer-encoder';

const linear = (i: number, o: number) => i * o + o;
const attention = (d: number) => 4 * linear(d, d);
const encoderLayer = (d: number, f: number) => attention(d) + linear(d, f) + linear(f, d) + 2 * 2 * d;
const decoderLayer = (d: number, f: number) => encoderLayer(d, f) + attention(d) + 2 * d;

const x = (t = 5) => tf.randomNormal([2, t, 16], 0, 1, 'float32', 7);
const ids = (vocab: number, t: number, seed: number) => tf.tidy(() => tf.cast(tf.randomUniform([2, t], 1, vocab, 'float32', seed), 'int32'));

beforeAll(async () => {
  await setBackend('cpu');
  setSeed(3);
});

describe('shared module battery', () => {
  it.each([
    ['post-norm relu', { normFirst: false, activation: 'relu' as const }],
    ['pre-norm gelu', { normFirst: true, activation: 'gelu' as const }],
  ])('TransformerEncoderLayer (%s)', async (_label, options) => {
    await runModuleTest(
      () => new TransformerEncoderLayer({ dModel: 16, numHeads: 4, dFf: 32, ...options }),
      () => [x(), { keyPaddingMask: tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]) }],
      { expectedParameterCount: encoderLayer(16, 32) },
    );
  });

  it('TransformerDecoderLayer (rotary, causal, memory padding)', async () => {
    await runModuleTest(
      () => new TransformerDecoderLayer({ dModel: 16, numHeads: 2, dFf: 32, useRotaryEmbeddings: true, maxSeqLength: 32 }),
      () => [x(4), x(6), { causal: true, memoryKeyPaddingMask: tf.tensor2d([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]) }],
      { expectedParameterCount: decoderLayer(16, 32) },
    );
  });

  it('TransformerEncoder (learned positions, pre-norm)', async () => {
    await runModuleTest(
      () => new TransformerEncoder({ vocabSize: 11, dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, positionalEncoding: 'learned', maxSeqLength: 8, normFirst: true }),
      () => [ids(11, 5, 1)],
      { expectedParameterCount: 11 * 16 + 8 * 16 + 2 * encoderLayer(16, 32) + 2 * 16 },
    );
  });

  it('TransformerDecoder (rotary)', async () => {
    await runModuleTest(
      () => new TransformerDecoder({ vocabSize: 9, dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, positionalEncoding: 'rotary', maxSeqLength: 16 }),
      () => [ids(9, 4, 2), x(6), { causal: true }],
      { expectedParameterCount: 9 * 16 + 2 * decoderLayer(16, 32) },
    );
  });

  it('EncoderDecoderTransformer (separate embeddings, padding from padTokenId)', async () => {
    await runModuleTest(
      () =>
        new EncoderDecoderTransformer({
          srcVocabSize: 13, tgtVocabSize: 11, dModel: 16, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 1, dFf: 32, padTokenId: 0,
        }),
      () => [tf.tensor2d([[3, 4, 5, 6, 0], [7, 8, 0, 0, 0]], [2, 5], 'int32'), tf.tensor2d([[1, 2, 3], [1, 4, 0]], [2, 3], 'int32')],
      { expectedParameterCount: 13 * 16 + 11 * 16 + 2 * encoderLayer(16, 32) + decoderLayer(16, 32) + linear(16, 11), allowZeroGradient: [] },
    );
  });

  it('EncoderDecoderTransformer (shared embeddings)', async () => {
    await runModuleTest(
      () => new EncoderDecoderTransformer({ srcVocabSize: 12, tgtVocabSize: 12, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, shareEmbeddings: true }),
      () => [ids(12, 5, 3), ids(12, 4, 4)],
      { expectedParameterCount: 12 * 16 + encoderLayer(16, 32) + decoderLayer(16, 32) },
    );
  });

  it.each([
    ['post-norm, sinusoidal, tied, padding from padTokenId', { normFirst: false, positionalEncoding: 'sinusoidal' as const, padTokenId: 0 }, 0],
    ['pre-norm, rotary, 2 key/value heads, untied', { normFirst: true, positionalEncoding: 'rotary' as const, numKeyValueHeads: 2, tieEmbeddings: false }, 1],
    ['pre-norm, ALiBi, multi-query', { normFirst: true, positionalEncoding: 'alibi' as const, numKeyValueHeads: 1 }, 2],
  ] as Array<[string, Partial<DecoderOnlyTransformerOptions>, number]>)('DecoderOnlyTransformer (%s)', async (_label, options, variant) => {
    const kv = 16 / 4 * (options.numKeyValueHeads ?? 4);
    const block = 2 * linear(16, 16) + 2 * linear(16, kv) + linear(16, 32) + linear(32, 16) + 2 * 2 * 16;
    const expected = 10 * 16 + 2 * block + (options.normFirst ? 2 * 16 : 0) + (variant === 1 ? linear(16, 10) : 0);
    await runModuleTest(
      () => new DecoderOnlyTransformer({ vocabSize: 10, dModel: 16, numHeads: 4, numLayers: 2, dFf: 32, maxSeqLength: 16, ...options }),
      () => [tf.tensor2d([[3, 4, 5, 6, 7], [8, 9, 2, 0, 0]], [2, 5], 'int32')],
      { expectedParameterCount: expected },
    );
  });

  it.each([
    ['class token, learned positions, pre-norm gelu', { classToken: true, positionalEncoding: 'learned' as const, normFirst: true, activation: 'gelu' as const }],
    ['2-D sinusoidal positions, post-norm', { classToken: false, positionalEncoding: 'sinusoidal' as const, normFirst: false }],
    ['rotary positions, pre-norm', { classToken: true, positionalEncoding: 'rotary' as const, normFirst: true }],
  ])('VisionTransformerEncoder (%s)', async (_label, options) => {
    const patches = 6; // 8 x 12 images, 4 x 4 patches
    const length = patches + (options.classToken ? 1 : 0);
    await runModuleTest(
      () => new VisionTransformerEncoder({ imageSize: [8, 12], patchSize: 4, numChannels: 2, dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, ...options }),
      () => [tf.randomUniform([2, 8, 12, 2], 0, 1, 'float32', 5)],
      {
        expectedParameterCount:
          16 * 2 * 4 * 4 + 16 + (options.classToken ? 16 : 0) + (options.positionalEncoding === 'learned' ? length * 16 : 0) + 2 * encoderLayer(16, 32) + (options.normFirst ? 2 * 16 : 0),
      },
    );
  });

  it('ImageToSequenceTransformer (pre-norm, target padding from padTokenId)', async () => {
    await runModuleTest(
      () =>
        new ImageToSequenceTransformer({
          imageSize: [8, 12], patchSize: 4, numChannels: 1, vocabSize: 9, dModel: 16, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 1, dFf: 32,
          maxSeqLength: 8, normFirst: true, padTokenId: 0, bosTokenId: 1, eosTokenId: 2,
        }),
      () => [tf.randomUniform([2, 8, 12, 1], 0, 1, 'float32', 6), tf.tensor2d([[1, 3, 4, 5], [1, 6, 0, 0]], [2, 4], 'int32')],
      { expectedParameterCount: 16 * 16 + 16 + 6 * 16 + 2 * encoderLayer(16, 32) + 2 * 16 + 9 * 16 + decoderLayer(16, 32) + 2 * 16 + linear(16, 9) },
    );
  });
});

it("the design's example model has the PyTorch parameter count (49,258,496)", () => {
  const model = new EncoderDecoderTransformer({
    srcVocabSize: 10000, tgtVocabSize: 10000, dModel: 512, numHeads: 8, numEncoderLayers: 6, numDecoderLayers: 6,
    dFf: 2048, dropout: 0.1, maxSeqLength: 512, positionalEncoding: 'sinusoidal', shareEmbeddings: true,
  });
  expect(model.countParameters()).toBe(49_258_496);
  expect(model.namedParameters().filter(([name]) => name.includes('embedding'))).toHaveLength(1);
  model.dispose();
});

it('rejects shared embeddings over different vocabularies', () => {
  expect(() => new EncoderDecoderTransformer({ srcVocabSize: 10, tgtVocabSize: 12, shareEmbeddings: true })).toThrow(
    /EncoderDecoderTransformer: option "shareEmbeddings" needs srcVocabSize = tgtVocabSize/,
  );
});
