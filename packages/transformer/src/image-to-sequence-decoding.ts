/**
 * The decoding interface of {@link ImageToSequenceTransformer}, as the seq2seq model's
 * (seq2seq-decoding.ts): the images are encoded once and expanded to `k` rows each; with caches,
 * every decoder layer keeps its self-attention keys and values and the cross-attention keys and
 * values over the patches are projected once per image. Images are never padded: there is no
 * memory mask.
 *
 * Legend: b images, s encoder sequence (patches, +1 with a class token), k rows per image,
 * d dModel, V vocabulary.
 */
import { MieConfigError, float32Bytes, tf } from '@mie/core';
import { KeyValueCache, type ProjectedKeyValue } from '@mie/attention';
import { checkImages } from '@mie/embeddings';
import type { DecodingSpec, DecodingStartOptions, DecodingState } from './decoding';
import type { ImageToSequenceTransformer } from './image-to-sequence-transformer';

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
    // The expanded encoder output and every layer's cross-attention keys/values, the caches for
    // maxNewTokens positions, the step's logits and their read-back copy, the attention scores.
    bytesPerRow: (maxNewTokens, useCache) =>
      float32Bytes(
        useCache
          ? length * dModel * (1 + 2 * layers) + 2 * layers * maxNewTokens * dModel + 3 * vocab + 2 * numHeads * (length + maxNewTokens)
          : length * dModel + maxNewTokens * (3 * vocab + 4 * dModel + 2 * numHeads * (length + maxNewTokens)),
      ),
  };
}

/** An image-to-sequence decoding in progress. */
export class ImageToSequenceDecodingState implements DecodingState {
  readonly rows: number;
  readonly #model: ImageToSequenceTransformer;
  readonly #bosTokenId: number;
  readonly #memory: tf.Tensor; // [b*k, s, d]
  readonly #memoryKeyValues: ProjectedKeyValue[] | undefined; // per layer [b*k, kvHeads, s, headDim]
  readonly #caches: KeyValueCache[] | undefined;

  constructor(model: ImageToSequenceTransformer, images: tf.Tensor, { rowsPerInput: k, useCache, bosTokenId, keyPaddingMask }: DecodingStartOptions) {
    if (keyPaddingMask !== undefined) {
      throw new MieConfigError(`${NAME}: option "srcKeyPaddingMask" does not apply: images have no padding (every patch is attended to).`);
    }
    this.#model = model;
    this.#bosTokenId = bosTokenId as number;
    this.rows = images.shape[0] * k;
    const expanded = tf.tidy(() => {
      // Encode each image once; row i of the expansion is image floor(i / k).
      const memory = model.encode(images);
      const index = tf.tensor1d(Array.from({ length: this.rows }, (_, i) => Math.floor(i / k)), 'int32');
      const projected = useCache ? model.decoder.projectMemory(memory) : undefined;
      return {
        memory: k === 1 ? memory : tf.gather(memory, index), // [b, s, d] -> [b*k, s, d]
        memoryKeyValues: projected?.map(({ keys, values }) => (k === 1 ? { keys, values } : { keys: tf.gather(keys, index), values: tf.gather(values, index) })),
      };
    });
    this.#memory = expanded.memory;
    this.#memoryKeyValues = expanded.memoryKeyValues;
    this.#caches = useCache ? model.decoder.layers.map(() => new KeyValueCache()) : undefined;
  }

  step(generated: readonly (readonly number[])[]): tf.Tensor {
    const rows = this.rows;
    const vocab = this.#model.config.vocabSize;
    const bos = this.#bosTokenId;
    return tf.tidy(() => {
      if (this.#caches) {
        // Only the newest token: earlier positions are in the caches. [rows, 1] -> [rows, 1, V]
        const ids = tf.tensor2d(generated.map((tokens) => [tokens.length > 0 ? tokens[tokens.length - 1] : bos]), [rows, 1], 'int32');
        const out = this.#model.decode(ids, this.#memory, { caches: this.#caches, memoryKeyValues: this.#memoryKeyValues });
        return tf.reshape(out, [rows, vocab]);
      }
      // Reference path: the whole target again. [rows, t] -> [rows, t, V] -> last position [rows, V]
      const length = generated[0].length + 1;
      const ids = tf.tensor2d(generated.map((tokens) => [bos, ...tokens]), [rows, length], 'int32');
      const out = this.#model.decode(ids, this.#memory, { tgtKeyPaddingMask: tf.ones([rows, length]) });
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
    this.#memory.dispose();
    for (const { keys, values } of this.#memoryKeyValues ?? []) tf.dispose([keys, values]);
    for (const cache of this.#caches ?? []) cache.dispose();
  }
}
