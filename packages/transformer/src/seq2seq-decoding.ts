/**
 * The decoding interface of {@link EncoderDecoderTransformer}: the sources are encoded once, with
 * their key padding masks, and decoded over (memory-decoding.ts).
 *
 * Legend: b sources, s source length, k rows per source, d dModel, V target vocabulary.
 */
import { MieShapeError, errorMessage, tf } from '@mie/core';
import type { DecodingSpec, DecodingStartOptions, DecodingState } from './decoding';
import type { EncoderDecoderTransformer } from './encoder-decoder-transformer';
import { MemoryDecodingState, memoryDecodingBytes } from './memory-decoding';

const NAME = 'EncoderDecoderTransformer.generate';

/** Checks `src` (int32 `[b, s]`, both >= 1) and describes what generation may do with it. */
export function seq2seqDecodingSpec(model: EncoderDecoderTransformer, src: unknown): DecodingSpec {
  if (!(src instanceof tf.Tensor) || src.isDisposed || src.dtype !== 'int32' || src.rank !== 2 || src.shape[0] === 0 || src.shape[1] === 0) {
    throw new MieShapeError(errorMessage(NAME, 'src', 'must be a live int32 tensor of token ids [batch, srcLength] (both >= 1)', src));
  }
  const { dModel, numHeads, numDecoderLayers: layers, tgtVocabSize: vocab, maxSeqLength, bosTokenId, eosTokenId, padTokenId } = model.config;
  const srcLength = src.shape[1] as number;
  return {
    name: NAME,
    inputName: 'src',
    maskOption: 'srcKeyPaddingMask',
    vocabSize: vocab,
    maxNewTokens: () => maxSeqLength,
    bosTokenId,
    eosTokenId,
    padTokenId,
    requiresBos: true,
    bytesPerRow: (maxNewTokens, useCache) => memoryDecodingBytes({ dModel, numHeads, layers, vocab }, srcLength, maxNewTokens, useCache),
  };
}

/** A seq2seq decoding: the sources encoded once (with their key padding masks), then the decoder stepped. */
export function seq2seqDecodingState(model: EncoderDecoderTransformer, src: tf.Tensor, { rowsPerInput, useCache, bosTokenId, padTokenId, keyPaddingMask }: DecodingStartOptions): DecodingState {
  return new MemoryDecodingState(
    model,
    () => {
      const mask =
        keyPaddingMask !== undefined
          ? tf.cast(keyPaddingMask, 'float32')
          : padTokenId !== null
            ? tf.cast(tf.notEqual(src, tf.scalar(padTokenId, 'int32')), 'float32')
            : undefined;
      const memory = model.encode(src, { srcKeyPaddingMask: mask ?? tf.onesLike(tf.cast(src, 'float32')) });
      return mask ? { memory, mask } : { memory };
    },
    { rows: src.shape[0] * rowsPerInput, rowsPerInput, useCache, bosTokenId: bosTokenId as number, vocab: model.config.tgtVocabSize },
  );
}
