/**
 * The decoding interface of {@link ImageToSequenceTransformer}, as the seq2seq model's: the
 * images are encoded once and decoded over (memory-decoding.ts). Images are never padded: there
 * is no memory mask.
 *
 * Legend: b images, s encoder sequence (patches, +1 with a class token), k rows per image,
 * d dModel, V vocabulary.
 */
import { MieConfigError, type tf } from '@mie/core';
import { checkImages } from '@mie/embeddings';
import type { DecodingSpec, DecodingStartOptions, DecodingState } from './decoding';
import type { ImageToSequenceTransformer } from './image-to-sequence-transformer';
import { MemoryDecodingState, memoryDecodingBytes } from './memory-decoding';

const NAME = 'ImageToSequenceTransformer.generate';

/** Checks `images` (float32 `[b, H, W, c]` of the model's size) and describes what generation may do with them. */
export function imageToSequenceDecodingSpec(model: ImageToSequenceTransformer, images: unknown): DecodingSpec {
  checkImages(NAME, images, model.config);
  const { dModel, numHeads, numDecoderLayers: layers, vocabSize: vocab, maxSeqLength, bosTokenId, eosTokenId, padTokenId } = model.config;
  const length = model.encoder.sequenceLength;
  return {
    name: NAME,
    inputName: 'images',
    maskOption: 'srcKeyPaddingMask',
    vocabSize: vocab,
    maxNewTokens: () => maxSeqLength,
    bosTokenId,
    eosTokenId,
    padTokenId,
    requiresBos: true,
    bytesPerRow: (maxNewTokens, useCache) => memoryDecodingBytes({ dModel, numHeads, layers, vocab }, length, maxNewTokens, useCache),
  };
}

/** An image-to-sequence decoding: the images encoded once (no padding: no memory mask), then the decoder stepped. */
export function imageToSequenceDecodingState(model: ImageToSequenceTransformer, images: tf.Tensor, { rowsPerInput, useCache, bosTokenId, keyPaddingMask }: DecodingStartOptions): DecodingState {
  if (keyPaddingMask !== undefined) {
    throw new MieConfigError(`${NAME}: option "srcKeyPaddingMask" does not apply: images have no padding (every patch is attended to).`);
  }
  return new MemoryDecodingState(model, () => ({ memory: model.encode(images) }), {
    rows: images.shape[0] * rowsPerInput,
    rowsPerInput,
    useCache,
    bosTokenId: bosTokenId as number,
    vocab: model.config.vocabSize,
  });
}
