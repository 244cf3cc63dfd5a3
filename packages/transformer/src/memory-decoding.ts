/**
 * Decoding over an encoded memory, shared by the encoder-decoder models (text and images): the
 * inputs are encoded once and expanded to `k` rows each; with caches, every decoder layer keeps
 * its self-attention keys and values, and the cross-attention keys/values are projected once per
 * input. Each model encodes its input and says how it decodes; this steps the decoder.
 *
 * Legend: b inputs, s memory length, k rows per input, d dModel, V target vocabulary.
 */
import { float32Bytes, tf } from '@mie/core';
import { KeyValueCache, type ProjectedKeyValue } from '@mie/attention';
import type { DecodingState } from './decoding';
import type { TransformerDecoder } from './transformer-decoder';

/** The decoder side of an encoder-decoder model, as the decoding needs it. */
export interface MemoryDecoder {
  readonly decoder: TransformerDecoder;
  /** Logits `[b, t, V]` of `tgt` against `memory` (causal), as the model's own `decode`. */
  decode(
    tgt: tf.Tensor,
    memory: tf.Tensor,
    options: { tgtKeyPaddingMask?: tf.Tensor; memoryKeyPaddingMask?: tf.Tensor; caches?: KeyValueCache[]; memoryKeyValues?: ProjectedKeyValue[] },
  ): tf.Tensor;
}

/**
 * Bytes per output row of a generation over a memory of `length` positions: the expanded memory
 * and every layer's cross-attention keys/values, the caches for `maxNewTokens` positions, the
 * step's logits and their read-back copy, and the attention scores (or, without caches, each
 * step's whole decoder pass).
 */
export function memoryDecodingBytes(
  { dModel, numHeads, layers, vocab }: { dModel: number; numHeads: number; layers: number; vocab: number },
  length: number,
  maxNewTokens: number,
  useCache: boolean,
): number {
  return float32Bytes(
    useCache
      ? length * dModel * (1 + 2 * layers) + 2 * layers * maxNewTokens * dModel + 3 * vocab + 2 * numHeads * (length + maxNewTokens)
      : length * dModel + maxNewTokens * (3 * vocab + 4 * dModel + 2 * numHeads * (length + maxNewTokens)),
  );
}

/** A decoding in progress over an encoded memory. */
export class MemoryDecodingState implements DecodingState {
  readonly rows: number;
  readonly #model: MemoryDecoder;
  readonly #vocab: number;
  readonly #bosTokenId: number;
  readonly #memory: tf.Tensor; // [b*k, s, d]
  readonly #memoryMask: tf.Tensor | undefined; // [b*k, s]
  readonly #memoryKeyValues: ProjectedKeyValue[] | undefined; // per layer [b*k, kvHeads, s, headDim]
  readonly #caches: KeyValueCache[] | undefined;

  /**
   * `encode()` runs once, inside this constructor's `tf.tidy`, and returns the memory `[b, s, d]`
   * and its key padding mask `[b, s]` (or none).
   */
  constructor(
    model: MemoryDecoder,
    encode: () => { memory: tf.Tensor; mask?: tf.Tensor },
    { rows, rowsPerInput: k, useCache, bosTokenId, vocab }: { rows: number; rowsPerInput: number; useCache: boolean; bosTokenId: number; vocab: number },
  ) {
    this.#model = model;
    this.#vocab = vocab;
    this.#bosTokenId = bosTokenId;
    this.rows = rows;
    const expanded = tf.tidy(() => {
      const { memory, mask } = encode();
      // Row i of the expansion is input floor(i / k).
      const index = tf.tensor1d(Array.from({ length: rows }, (_, i) => Math.floor(i / k)), 'int32');
      const projected = useCache ? model.decoder.projectMemory(memory) : undefined;
      const expand = (t: tf.Tensor) => (k === 1 ? t : tf.gather(t, index));
      const out: { memory: tf.Tensor; mask?: tf.Tensor; memoryKeyValues?: ProjectedKeyValue[] } = { memory: expand(memory) };
      if (mask) out.mask = expand(mask);
      if (projected) out.memoryKeyValues = projected.map(({ keys, values }) => ({ keys: expand(keys), values: expand(values) }));
      return out as unknown as tf.TensorContainer;
    }) as unknown as { memory: tf.Tensor; mask?: tf.Tensor; memoryKeyValues?: ProjectedKeyValue[] };
    this.#memory = expanded.memory;
    this.#memoryMask = expanded.mask;
    this.#memoryKeyValues = expanded.memoryKeyValues;
    this.#caches = useCache ? model.decoder.layers.map(() => new KeyValueCache()) : undefined;
  }

  step(generated: readonly (readonly number[])[]): tf.Tensor {
    const rows = this.rows;
    const vocab = this.#vocab;
    const bos = this.#bosTokenId;
    return tf.tidy(() => {
      if (this.#caches) {
        // Only the newest token: earlier positions are in the caches. [rows, 1] -> [rows, 1, V]
        const ids = tf.tensor2d(generated.map((tokens) => [tokens.length > 0 ? tokens[tokens.length - 1] : bos]), [rows, 1], 'int32');
        const out = this.#model.decode(ids, this.#memory, { caches: this.#caches, memoryKeyValues: this.#memoryKeyValues, ...this.#maskOption() });
        return tf.reshape(out, [rows, vocab]);
      }
      // Reference path: the whole target again. [rows, t] -> [rows, t, V] -> last position [rows, V]
      const length = generated[0].length + 1;
      const ids = tf.tensor2d(generated.map((tokens) => [bos, ...tokens]), [rows, length], 'int32');
      const out = this.#model.decode(ids, this.#memory, { tgtKeyPaddingMask: tf.ones([rows, length]), ...this.#maskOption() });
      return tf.reshape(tf.slice(out, [0, length - 1, 0], [rows, 1, vocab]), [rows, vocab]);
    });
  }

  /** The memory mask as a decode option, only when there is one (image memories have none). */
  #maskOption(): { memoryKeyPaddingMask?: tf.Tensor } {
    return this.#memoryMask ? { memoryKeyPaddingMask: this.#memoryMask } : {};
  }

  reorder(indices: readonly number[]): void {
    // Rows of one input share its memory: only the caches follow a beam.
    if (this.#caches && indices.some((source, i) => source !== i)) {
      const index = tf.tensor1d([...indices], 'int32');
      for (const cache of this.#caches) cache.reorder(index);
      index.dispose();
    }
  }

  dispose(): void {
    tf.dispose(this.#memoryMask ? [this.#memory, this.#memoryMask] : [this.#memory]);
    for (const { keys, values } of this.#memoryKeyValues ?? []) tf.dispose([keys, values]);
    for (const cache of this.#caches ?? []) cache.dispose();
  }
}
