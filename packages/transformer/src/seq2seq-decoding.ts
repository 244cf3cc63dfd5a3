/**
 * The decoding interface of {@link EncoderDecoderTransformer}: the sources are encoded once and
 * expanded to `k` rows each; with caches, every decoder layer keeps its self-attention keys and
 * values and the cross-attention keys/values are projected once per source.
 *
 * Legend: b sources, s source length, k rows per source, d dModel, V target vocabulary.
 */
import { MieShapeError, errorMessage, float32Bytes, tf } from '@mie/core';
import { KeyValueCache, type ProjectedKeyValue } from '@mie/attention';
import type { DecodingSpec, DecodingStartOptions, DecodingState } from './decoding';
import type { EncoderDecoderTransformer } from './encoder-decoder-transformer';

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
    // The expanded encoder output and every layer's cross-attention keys/values, the caches for
    // maxNewTokens positions, the step's logits and their read-back copy, the attention scores.
    bytesPerRow: (maxNewTokens, useCache) =>
      float32Bytes(
        useCache
          ? srcLength * dModel * (1 + 2 * layers) + 2 * layers * maxNewTokens * dModel + 3 * vocab + 2 * numHeads * (srcLength + maxNewTokens)
          : srcLength * dModel + maxNewTokens * (3 * vocab + 4 * dModel + 2 * numHeads * (srcLength + maxNewTokens)),
      ),
  };
}

/** A seq2seq decoding in progress. */
export class Seq2SeqDecodingState implements DecodingState {
  readonly rows: number;
  readonly #model: EncoderDecoderTransformer;
  readonly #bosTokenId: number;
  readonly #memory: tf.Tensor; // [b*k, s, d]
  readonly #memoryMask: tf.Tensor | undefined; // [b*k, s]
  readonly #memoryKeyValues: ProjectedKeyValue[] | undefined; // per layer [b*k, kvHeads, s, headDim]
  readonly #caches: KeyValueCache[] | undefined;

  constructor(model: EncoderDecoderTransformer, src: tf.Tensor, { rowsPerInput: k, useCache, bosTokenId, padTokenId, keyPaddingMask }: DecodingStartOptions) {
    this.#model = model;
    this.#bosTokenId = bosTokenId as number;
    this.rows = src.shape[0] * k;
    const expanded = tf.tidy(() => {
      const mask =
        keyPaddingMask !== undefined
          ? tf.cast(keyPaddingMask, 'float32')
          : padTokenId !== null
            ? tf.cast(tf.notEqual(src, tf.scalar(padTokenId, 'int32')), 'float32')
            : undefined;
      // Encode each source once; row i of the expansion is source floor(i / k).
      const memory = model.encode(src, { srcKeyPaddingMask: mask ?? tf.onesLike(tf.cast(src, 'float32')) });
      const index = tf.tensor1d(Array.from({ length: this.rows }, (_, i) => Math.floor(i / k)), 'int32');
      const projected = useCache ? model.decoder.projectMemory(memory) : undefined;
      return {
        memory: tf.gather(memory, index), // [b, s, d] -> [b*k, s, d]
        mask: mask && tf.gather(mask, index), // [b, s] -> [b*k, s]
        memoryKeyValues: projected?.map(({ keys, values }) => ({ keys: tf.gather(keys, index), values: tf.gather(values, index) })),
      };
    });
    this.#memory = expanded.memory;
    this.#memoryMask = expanded.mask;
    this.#memoryKeyValues = expanded.memoryKeyValues;
    this.#caches = useCache ? model.decoder.layers.map(() => new KeyValueCache()) : undefined;
  }

  step(generated: readonly (readonly number[])[]): tf.Tensor {
    const rows = this.rows;
    const vocab = this.#model.config.tgtVocabSize;
    const bos = this.#bosTokenId;
    return tf.tidy(() => {
      if (this.#caches) {
        // Only the newest token: earlier positions are in the caches. [rows, 1] -> [rows, 1, V]
        const ids = tf.tensor2d(generated.map((tokens) => [tokens.length > 0 ? tokens[tokens.length - 1] : bos]), [rows, 1], 'int32');
        const out = this.#model.decode(ids, this.#memory, { caches: this.#caches, memoryKeyValues: this.#memoryKeyValues, memoryKeyPaddingMask: this.#memoryMask });
        return tf.reshape(out, [rows, vocab]);
      }
      // Reference path: the whole target again. [rows, t] -> [rows, t, V] -> last position [rows, V]
      const length = generated[0].length + 1;
      const ids = tf.tensor2d(generated.map((tokens) => [bos, ...tokens]), [rows, length], 'int32');
      const out = this.#model.decode(ids, this.#memory, { tgtKeyPaddingMask: tf.ones([rows, length]), memoryKeyPaddingMask: this.#memoryMask });
      return tf.reshape(tf.slice(out, [0, length - 1, 0], [rows, 1, vocab]), [rows, vocab]);
    });
  }

  reorder(indices: readonly number[]): void {
    if (this.#caches && indices.some((source, i) => source !== i)) {
      const index = tf.tensor1d([...indices], 'int32');
      for (const cache of this.#caches) cache.reorder(index);
      index.dispose();
    }
  }

  dispose(): void {
    tf.dispose([this.#memory, ...(this.#memoryMask ? [this.#memoryMask] : [])]);
    for (const { keys, values } of this.#memoryKeyValues ?? []) tf.dispose([keys, values]);
    for (const cache of this.#caches ?? []) cache.dispose();
  }
}
