/**
 * The G2P model: an `EncoderDecoderTransformer` over letters (source) and ARPAbet phonemes
 * (target), saved together with both vocabularies so that a checkpoint directory is all that
 * pronouncing needs.
 *
 * Source ids: the word's letters then `<eos>`; target input: `<bos>` then the phonemes; target
 * output: the phonemes then `<eos>`. Id 0 is padding everywhere.
 */
import { BaseModel, MieConfigError, checkOptions, registerModel, tf } from '@mie/core';
import { EncoderDecoderTransformer, type EncoderDecoderTransformerOptions, type GenerateOptions } from '@mie/transformer';
import { Vocabulary } from '@mie/training';
import { GRAPHEMES, PHONEMES } from './vocabulary';

/** Saved configuration of a {@link G2PModel}. */
export interface G2PModelConfig {
  /** Source tokens (letters), without the special tokens. */
  graphemes: string[];
  /** Target tokens (phonemes), without the special tokens. */
  phonemes: string[];
  /** The transformer's options except the vocabulary sizes and `padTokenId`, which follow from the vocabularies. */
  transformer: Omit<EncoderDecoderTransformerOptions, 'srcVocabSize' | 'tgtVocabSize' | 'padTokenId'>;
}

export const PAD = Vocabulary.PAD_ID;
export const BOS = Vocabulary.BOS_ID;
export const EOS = Vocabulary.EOS_ID;

/** A letters-to-phonemes transformer with its vocabularies. */
export class G2PModel extends BaseModel<G2PModelConfig> {
  readonly config: G2PModelConfig;
  readonly transformer: EncoderDecoderTransformer;
  readonly #letters: Vocabulary;
  readonly #phonemes: Vocabulary;

  constructor(config: Partial<G2PModelConfig> & Pick<G2PModelConfig, 'transformer'>) {
    super();
    const { graphemes = GRAPHEMES, phonemes = [...PHONEMES], transformer } = checkOptions('G2PModel', config, ['graphemes', 'phonemes', 'transformer']);
    if (typeof transformer !== 'object' || transformer === null) {
      throw new MieConfigError('G2PModel: option "transformer" must be an object of EncoderDecoderTransformer options.');
    }
    this.#letters = new Vocabulary({ tokens: graphemes });
    this.#phonemes = new Vocabulary({ tokens: phonemes });
    this.config = { graphemes: [...graphemes], phonemes: [...phonemes], transformer: { ...transformer } };
    this.transformer = new EncoderDecoderTransformer({
      ...transformer,
      srcVocabSize: this.#letters.size,
      tgtVocabSize: this.#phonemes.size,
      padTokenId: PAD,
    });
  }

  /** The letter vocabulary (unknown characters are an error naming them). */
  get letters(): Vocabulary {
    return this.#letters;
  }

  /** The phoneme vocabulary. */
  get phonemeVocabulary(): Vocabulary {
    return this.#phonemes;
  }

  /** Source ids of a word: letters then `<eos>`. Throws a `MieConfigError` naming an unknown character. */
  encodeWord(word: string): number[] {
    try {
      return this.#letters.encode(word, { addEos: true });
    } catch (error) {
      throw new MieConfigError(`G2PModel: cannot spell "${word}": ${(error as Error).message} The model knows: ${this.config.graphemes.join(' ')}`);
    }
  }

  /** Phoneme ids of a pronunciation (no specials). */
  encodePronunciation(phonemes: string[]): number[] {
    return this.#phonemes.encode(phonemes);
  }

  /** Logits `[b, t, V]` for source ids `[b, s]` and target input ids `[b, t]`. */
  forward(src: tf.Tensor, tgtIn: tf.Tensor): tf.Tensor {
    return this.transformer.forward(src, tgtIn);
  }

  /** `[b, s]` int32 source ids for words (padded with 0). */
  sourceBatch(words: string[]): tf.Tensor {
    const rows = words.map((word) => this.encodeWord(word));
    const length = Math.max(1, ...rows.map((r) => r.length));
    const ids = new Int32Array(words.length * length);
    rows.forEach((row, i) => ids.set(row, i * length));
    return tf.tensor2d(ids, [words.length, length], 'int32');
  }

  /**
   * The cross-attention of `word` against `phonemes` (by default, its greedy pronunciation): the
   * last decoder layer's weights, averaged over heads, as `weights[i][j]`, how much the step that
   * produces target token i attends to source token j. Source tokens are the letters then
   * `</s>`; target tokens the phonemes then `</s>`. Read asynchronously; frees what it computes.
   */
  async attentionMap(word: string, phonemes?: string[]): Promise<{ sourceTokens: string[]; targetTokens: string[]; weights: number[][] }> {
    const target = phonemes ?? (await this.pronounce([word]))[0];
    const phonemeIds = this.encodePronunciation(target);
    const src = this.sourceBatch([word]);
    const tgtIn = tf.tensor2d([[BOS, ...phonemeIds]], [1, phonemeIds.length + 1], 'int32');
    const output = this.transformer.forward(src, tgtIn, { returnAttention: true });
    const map = tf.tidy(() => {
      const cross = output.crossAttention[output.crossAttention.length - 1]; // [1, h, t, s]
      return tf.squeeze(tf.mean(cross, 1), [0]); // [1, h, t, s] -> [t, s]
    });
    try {
      return { sourceTokens: [...word.split(''), '</s>'], targetTokens: [...target, '</s>'], weights: (await map.array()) as number[][] };
    } finally {
      tf.dispose([map, src, tgtIn, output.logits, ...output.crossAttention, ...output.encoderSelfAttention, ...output.decoderSelfAttention]);
    }
  }

  /** Pronounces `words` (greedy, or beam search with `numBeams`), in batches of `batchSize`. */
  async pronounce(
    words: string[],
    { numBeams = 1, batchSize = 256, maxNewTokens = Math.min(32, this.config.transformer.maxSeqLength ?? 5000) }: { numBeams?: number; batchSize?: number; maxNewTokens?: number } = {},
  ): Promise<string[][]> {
    const results: string[][] = [];
    for (let start = 0; start < words.length; start += batchSize) {
      const chunk = words.slice(start, start + batchSize);
      const src = this.sourceBatch(chunk);
      try {
        const options: GenerateOptions = { bosTokenId: BOS, eosTokenId: EOS, padTokenId: PAD, maxNewTokens, numBeams };
        const { sequences } = await this.transformer.generate(src, options);
        for (const sequence of sequences) {
          const ids = sequence.filter((id) => id !== EOS && id !== PAD && id !== BOS);
          results.push(ids.map((id) => this.#phonemes.decode([id])));
        }
      } finally {
        src.dispose();
      }
    }
    return results;
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(G2PModel, 'G2PModel');
