/** Token embedding plus absolute positions, shared by the encoder and decoder stacks. */
import { dropout, tf } from '@mie/core';
import type { TokenEmbedding } from '@mie/embeddings';
import type { PositionalEncoding } from '@mie/positional';

/**
 * `dropout(embedding(ids) + positions)` for sinusoidal or learned encodings (the dropout is
 * PositionalEncoding's), or `dropout(embedding(ids))` for rotary and none. `offset` is the position
 * of the first id (cached decoding).
 */
export function embedWithPositions(
  ids: tf.Tensor,
  embedding: TokenEmbedding,
  positionalEncoding: PositionalEncoding | null,
  rate: number,
  training: boolean,
  offset = 0,
): tf.Tensor {
  return tf.tidy(() => {
    const embedded = embedding.forward(ids); // [b, t] -> [b, t, d]
    return positionalEncoding ? positionalEncoding.forward(embedded, { offset }) : dropout(embedded, rate, training);
  });
}
