/** Test helpers for generation: small random models and references built from full forward passes. */
import { setSeed, tf } from '@mie/core';
import { EncoderDecoderTransformer, type EncoderDecoderTransformerOptions } from '../encoder-decoder-transformer';
import { applyNoRepeatNgram, applyRepetitionPenalty, argmax, logSoftmax } from '../logits-processors';

export const PAD = 0;
export const BOS = 1;
export const EOS = 2;

/** A small random model in eval mode (dropout 0, padTokenId 0), seeded. */
export function smallModel(seed: number, options: Partial<EncoderDecoderTransformerOptions> = {}): EncoderDecoderTransformer {
  setSeed(seed);
  return new EncoderDecoderTransformer({
    srcVocabSize: 12,
    tgtVocabSize: 12,
    dModel: 16,
    numHeads: 2,
    numEncoderLayers: 1,
    numDecoderLayers: 2,
    dFf: 32,
    dropout: 0,
    padTokenId: PAD,
    ...options,
  });
}

/** `rows` (ragged) padded with PAD into an int32 `[b, maxLength]` tensor. */
export function padded(rows: number[][]): tf.Tensor2D {
  const length = Math.max(...rows.map((row) => row.length));
  return tf.tensor2d(rows.map((row) => [...row, ...new Array<number>(length - row.length).fill(PAD)]), [rows.length, length], 'int32');
}

/** Log-probabilities (float64) of the next token after `[BOS, ...prefix]` for one source, from a full forward pass. */
export async function nextLogits(model: EncoderDecoderTransformer, source: number[], prefix: number[]): Promise<Float32Array> {
  const logits = tf.tidy(() => {
    const src = tf.tensor2d([source], [1, source.length], 'int32');
    const tgt = tf.tensor2d([[BOS, ...prefix]], [1, prefix.length + 1], 'int32');
    const out = model.forward(src, tgt, { tgtKeyPaddingMask: tf.ones([1, prefix.length + 1]) }); // [1, t, V]
    return tf.reshape(tf.slice(out, [0, prefix.length, 0], [1, 1, -1]), [-1]);
  });
  const data = (await logits.data()) as Float32Array;
  logits.dispose();
  return data;
}

/** Greedy search by full forward passes and the processors, as a reference for the cached loop. */
export async function referenceGreedy(
  model: EncoderDecoderTransformer,
  source: number[],
  { maxNewTokens, eosTokenId = EOS, repetitionPenalty = 1, noRepeatNgramSize = 0 }: { maxNewTokens: number; eosTokenId?: number; repetitionPenalty?: number; noRepeatNgramSize?: number },
): Promise<number[]> {
  const tokens: number[] = [];
  while (tokens.length < maxNewTokens) {
    const row = Float64Array.from(await nextLogits(model, source, tokens));
    applyRepetitionPenalty(row, tokens, repetitionPenalty);
    applyNoRepeatNgram(row, tokens, noRepeatNgramSize);
    const token = argmax(row);
    tokens.push(token);
    if (token === eosTokenId) break;
  }
  return tokens;
}

export interface ScoredSequence {
  tokens: number[];
  score: number;
}

/**
 * Every possible output of at most `maxNewTokens` tokens (EOS only as the last token; sequences
 * without EOS only at full length), scored `sum log p / length ** lengthPenalty` from full forward
 * passes, best first.
 */
export async function bruteForceSequences(
  model: EncoderDecoderTransformer,
  source: number[],
  { vocabSize, maxNewTokens, lengthPenalty }: { vocabSize: number; maxNewTokens: number; lengthPenalty: number },
): Promise<ScoredSequence[]> {
  const all: ScoredSequence[] = [];
  const visit = async (prefix: number[], sum: number): Promise<void> => {
    const logProbs = logSoftmax(await nextLogits(model, source, prefix));
    for (let token = 0; token < vocabSize; token++) {
      const tokens = [...prefix, token];
      const total = sum + logProbs[token];
      if (token === EOS || tokens.length === maxNewTokens) all.push({ tokens, score: total / tokens.length ** lengthPenalty });
      else await visit(tokens, total);
    }
  };
  await visit([], 0);
  return all.sort((a, b) => b.score - a.score);
}

/** The number of n-grams of `size` that occur more than once in `tokens`. */
export function repeatedNgrams(tokens: number[], size: number): number {
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i + size <= tokens.length; i++) {
    const key = tokens.slice(i, i + size).join(',');
    if (seen.has(key)) repeats++;
    seen.add(key);
  }
  return repeats;
}

/** Collects every step of a stream. */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const steps: T[] = [];
  for await (const step of stream) steps.push(step);
  return steps;
}
