/**
 * The character language model `mie train lm` trains: a `DecoderOnlyTransformer` over the
 * characters of a {@link CharVocabulary}, saved with its characters so that a model directory is
 * all that `mie generate` needs.
 *
 * A text is `<s>` then its characters; the model predicts each next character, and `</s>` where a
 * document ends. Generation longer than the model's context slides a window over the text: each
 * round gives the model the last `maxSeqLength / 2` tokens (at least) and generates up to the
 * rest of its context.
 */
import { BaseModel, MieConfigError, checkOptions, registerModel, tf } from '@mie/core';
import { DecoderOnlyTransformer, type DecoderOnlyTransformerOptions } from '@mie/transformer';
import { mixSeeds } from '@mie/training';
import { BOS, CharVocabulary, EOS, PAD } from './lm-data';

/** The transformer's options a {@link CharLanguageModel} takes (vocabulary size and special ids follow from the vocabulary). */
export type CharTransformerOptions = Omit<DecoderOnlyTransformerOptions, 'vocabSize' | 'padTokenId' | 'bosTokenId' | 'eosTokenId'>;

/** Saved configuration of a {@link CharLanguageModel}. */
export interface CharLanguageModelConfig {
  /** The characters, in id order after the four special tokens (see lm-data.ts). */
  characters: string[];
  /** The transformer's options. */
  transformer: CharTransformerOptions;
}

/** Options of {@link CharLanguageModel.generateText}. */
export interface GenerateTextOptions {
  /** Characters to generate at most (generation also stops at a document's end). Default 200. */
  maxNewTokens?: number;
  /** Sample (true) or take the most probable character (false, default). */
  doSample?: boolean;
  /** Sampling temperature, > 0. Default 1. */
  temperature?: number;
  /** Sampling: keep the `topK` most probable characters; 0 (default) keeps all. */
  topK?: number;
  /** Sampling: nucleus filtering in (0, 1]. Default 1. */
  topP?: number;
  /** Sampling seed (round `r` of a long generation uses `mixSeeds(seed, r)`). Default 0. */
  seed?: number;
  /** Beam search with this many beams (best beam of each window round). Default 1. */
  numBeams?: number;
  /** Called with each piece of text as soon as it is generated (a character, or a round's text with beams). */
  onText?: (text: string) => void;
}

const GENERATE_OPTIONS = ['maxNewTokens', 'doSample', 'temperature', 'topK', 'topP', 'seed', 'numBeams', 'onText'] as const;

/** A character-level decoder-only transformer with its vocabulary. */
export class CharLanguageModel extends BaseModel<CharLanguageModelConfig> {
  readonly config: CharLanguageModelConfig;
  readonly transformer: DecoderOnlyTransformer;
  readonly #vocabulary: CharVocabulary;

  constructor(config: CharLanguageModelConfig) {
    super();
    const { characters, transformer } = checkOptions('CharLanguageModel', config, ['characters', 'transformer']);
    if (typeof transformer !== 'object' || transformer === null) {
      throw new MieConfigError('CharLanguageModel: option "transformer" must be an object of DecoderOnlyTransformer options.');
    }
    this.#vocabulary = new CharVocabulary(characters);
    this.config = { characters: [...characters], transformer: { ...transformer } };
    this.transformer = new DecoderOnlyTransformer({
      ...transformer,
      vocabSize: this.#vocabulary.size,
      padTokenId: PAD,
      bosTokenId: BOS,
      eosTokenId: EOS,
    });
  }

  /** The character vocabulary. */
  get vocabulary(): CharVocabulary {
    return this.#vocabulary;
  }

  /** The longest sequence the model reads at once. */
  get contextLength(): number {
    return this.transformer.config.maxSeqLength;
  }

  /** Logits `[b, t, V]` of the next token at every position of `ids [b, t]` (causal). */
  forward(ids: tf.Tensor): tf.Tensor {
    return this.transformer.forward(ids);
  }

  /**
   * Continues `prompt` (which starts a document: `<s>` is put before it) and resolves to the
   * generated text. A prompt character outside the vocabulary is a `MieConfigError` naming it.
   * Greedy by default; `doSample` samples; `numBeams` > 1 runs beam search in each window round.
   */
  async generateText(prompt: string, options: GenerateTextOptions = {}): Promise<string> {
    const { maxNewTokens = 200, doSample = false, temperature = 1, topK = 0, topP = 1, seed = 0, numBeams = 1, onText } = checkOptions(
      'CharLanguageModel.generateText',
      options,
      GENERATE_OPTIONS,
    );
    const unknown = this.#vocabulary.unknownCharacters(prompt);
    if (unknown.length > 0) {
      throw new MieConfigError(
        `CharLanguageModel.generateText: the prompt holds ${unknown.length === 1 ? 'a character' : 'characters'} outside the model's vocabulary: ` +
          `${unknown.map((c) => JSON.stringify(c)).join(', ')}. The model knows: ${JSON.stringify(this.#vocabulary.characters.join(''))}.`,
      );
    }
    const ids = [BOS, ...this.#vocabulary.encode(prompt)];
    const context = this.contextLength;
    const keep = Math.max(1, Math.floor(context / 2));
    let text = '';
    let left = maxNewTokens;
    for (let round = 0; left > 0; round++) {
      // The window: the last tokens, leaving room for at least half the context of new ones.
      const window = ids.slice(-Math.min(ids.length, keep + Math.max(0, context - keep - left)));
      const count = Math.min(left, context - window.length);
      const input = tf.tensor2d([window], [1, window.length], 'int32');
      // The window holds its own <s> (or starts mid-text): generate must not prepend one.
      const generation = {
        maxNewTokens: count,
        numBeams,
        bosTokenId: null,
        eosTokenId: EOS,
        ...(doSample ? { doSample, temperature, topK, topP, seed: mixSeeds(seed, round) } : {}),
      };
      let tokens: number[];
      let ended = false;
      try {
        if (numBeams > 1) {
          tokens = (await this.transformer.generate(input, generation)).sequences[0];
        } else {
          tokens = [];
          for await (const step of this.transformer.generateStream(input, generation)) {
            const token = step.tokens[0];
            if (token === null || token === undefined) break;
            tokens.push(token);
            if (token !== EOS) onText?.(this.#vocabulary.decode([token]));
          }
        }
      } finally {
        input.dispose();
      }
      const end = tokens.indexOf(EOS);
      if (end >= 0) {
        tokens = tokens.slice(0, end);
        ended = true;
      }
      const piece = this.#vocabulary.decode(tokens);
      if (numBeams > 1 && piece !== '') onText?.(piece);
      text += piece;
      ids.push(...tokens);
      left -= count;
      if (ended || tokens.length < count) break;
    }
    return text;
  }
}
// Named explicitly: bundlers rename classes and minifiers mangle them.
registerModel(CharLanguageModel, 'CharLanguageModel');
