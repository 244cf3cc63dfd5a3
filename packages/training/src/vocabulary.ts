import { MieConfigError, MieSerializationError, MieShapeError, checkOptions, checkOneOf, describeValue, errorMessage } from '@mie/core';

/** The special tokens, with fixed ids 0-3 in every {@link Vocabulary}. */
export const SPECIAL_TOKENS = Object.freeze({ pad: '<pad>', bos: '<bos>', eos: '<eos>', unk: '<unk>' });

/** What {@link Vocabulary.encode} does with a token it does not know. */
export type UnknownTokenPolicy = 'error' | 'unk';

/** Options of {@link Vocabulary}. */
export interface VocabularyOptions {
  /** The ordinary tokens (characters for a character vocabulary), ids 4, 5, ... in order; no duplicates, no special token. Required. */
  tokens: readonly string[];
  /** `'error'` (default): encoding an unknown token throws a `MieShapeError` naming it; `'unk'`: it becomes `<unk>`. */
  unknown?: UnknownTokenPolicy;
}

/** Options of {@link Vocabulary.encode}. */
export interface EncodeOptions {
  /** Prepend `<bos>`. Default `false`. */
  addBos?: boolean;
  /** Append `<eos>`. Default `false`. */
  addEos?: boolean;
}

/** Options of {@link Vocabulary.decode}. */
export interface DecodeOptions {
  /** Leave out `<pad>`, `<bos>` and `<eos>` (and stop at the first `<eos>`). Default `true`. */
  skipSpecial?: boolean;
  /** Put between decoded tokens: `''` (default) for characters, `' '` for words. */
  separator?: string;
}

/** The JSON form of a {@link Vocabulary} (`toJSON`), saved next to a model as `vocabulary.json`. */
export interface VocabularyJSON {
  format: 'mie-vocabulary';
  formatVersion: 1;
  /** Every token by id, the four special tokens first. */
  tokens: string[];
  unknown: UnknownTokenPolicy;
}

const NAME = 'Vocabulary';
const SPECIALS = [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.bos, SPECIAL_TOKENS.eos, SPECIAL_TOKENS.unk];

/** Unicode code point of a character, for messages: `"é" (U+00E9)`. */
function describeToken(token: string): string {
  const points = Array.from(token).map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`);
  return `${JSON.stringify(token)} (${points.join(' ')})`;
}

/**
 * A character- or token-level vocabulary: `<pad>` = 0, `<bos>` = 1, `<eos>` = 2, `<unk>` = 3,
 * then the ordinary tokens. A string is encoded character by character (Unicode code points); an
 * array of strings token by token. Serializes to JSON (`JSON.stringify(vocabulary)`,
 * `Vocabulary.fromJSON`) to be saved next to a model.
 */
export class Vocabulary {
  /** Id of `<pad>` (0). */
  static readonly PAD_ID = 0;
  /** Id of `<bos>` (1). */
  static readonly BOS_ID = 1;
  /** Id of `<eos>` (2). */
  static readonly EOS_ID = 2;
  /** Id of `<unk>` (3). */
  static readonly UNK_ID = 3;

  /** The resolved options: `new Vocabulary(vocabulary.config)` rebuilds it. */
  readonly config: { readonly tokens: readonly string[]; readonly unknown: UnknownTokenPolicy };
  readonly #tokens: readonly string[];
  readonly #ids: Map<string, number>;

  constructor(options: VocabularyOptions) {
    const { tokens, unknown = 'error' } = checkOptions(NAME, options, ['tokens', 'unknown']);
    if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string' && t.length > 0)) {
      throw new MieConfigError(errorMessage(NAME, 'option "tokens"', 'must be an array of non-empty strings', tokens));
    }
    checkOneOf(NAME, 'unknown', unknown, ['error', 'unk'] as const);
    this.#tokens = Object.freeze([...SPECIALS, ...tokens]);
    this.#ids = new Map();
    this.#tokens.forEach((token, id) => {
      if (this.#ids.has(token)) {
        throw new MieConfigError(`${NAME}: option "tokens" holds ${describeToken(token)} twice, or a special token (${SPECIALS.join(', ')}).`);
      }
      this.#ids.set(token, id);
    });
    this.config = Object.freeze({ tokens: Object.freeze([...tokens]), unknown });
  }

  /** A character vocabulary of every character in `texts`, sorted by code point (deterministic). */
  static fromTexts(texts: Iterable<string>, options: { unknown?: UnknownTokenPolicy } = {}): Vocabulary {
    const characters = new Set<string>();
    for (const text of texts) for (const character of text) characters.add(character);
    const tokens = [...characters].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    return new Vocabulary({ tokens, ...options });
  }

  /** Rebuilds a vocabulary from `toJSON()`'s value (or its JSON text); a malformed one is a `MieSerializationError`. */
  static fromJSON(json: VocabularyJSON | string): Vocabulary {
    let value: unknown = json;
    if (typeof json === 'string') {
      try {
        value = JSON.parse(json);
      } catch (error) {
        throw new MieSerializationError(`${NAME}.fromJSON: not valid JSON (${(error as Error).message}).`);
      }
    }
    const v = value as Partial<VocabularyJSON> | null;
    if (typeof v !== 'object' || v === null || v.format !== 'mie-vocabulary') {
      throw new MieSerializationError(`${NAME}.fromJSON: expected an object with format "mie-vocabulary". Received: ${describeValue(value)}.`);
    }
    if (v.formatVersion !== 1) throw new MieSerializationError(`${NAME}.fromJSON: formatVersion must be 1. Received: ${describeValue(v.formatVersion)}.`);
    if (!Array.isArray(v.tokens) || v.tokens.length < SPECIALS.length || SPECIALS.some((s, i) => v.tokens![i] !== s)) {
      throw new MieSerializationError(`${NAME}.fromJSON: tokens must start with ${SPECIALS.join(', ')}. Received: ${describeValue(v.tokens)}.`);
    }
    try {
      return new Vocabulary({ tokens: v.tokens.slice(SPECIALS.length), unknown: v.unknown });
    } catch (error) {
      throw new MieSerializationError(`${NAME}.fromJSON: ${(error as Error).message}`);
    }
  }

  /** Number of tokens, special ones included: the `vocabSize` of an embedding. */
  get size(): number {
    return this.#tokens.length;
  }

  /** Every token by id. */
  get tokens(): readonly string[] {
    return this.#tokens;
  }

  /** The id of `token`, or `undefined`. */
  idOf(token: string): number | undefined {
    return this.#ids.get(token);
  }

  /** The token of `id`; an id outside `[0, size)` is a `MieShapeError`. */
  tokenOf(id: number): string {
    if (!Number.isSafeInteger(id) || id < 0 || id >= this.#tokens.length) {
      throw new MieShapeError(errorMessage(NAME, 'id', `must be an integer in [0, ${this.#tokens.length})`, id));
    }
    return this.#tokens[id];
  }

  /** Token ids of `text` (a string: its characters; an array: its tokens), with optional `<bos>`/`<eos>`. */
  encode(text: string | readonly string[], { addBos = false, addEos = false }: EncodeOptions = {}): number[] {
    const pieces = typeof text === 'string' ? Array.from(text) : text;
    const ids: number[] = addBos ? [Vocabulary.BOS_ID] : [];
    let position = 0;
    for (const piece of pieces) {
      const id = this.#ids.get(piece);
      if (id !== undefined) ids.push(id);
      else if (this.config.unknown === 'unk') ids.push(Vocabulary.UNK_ID);
      else {
        throw new MieShapeError(
          `${NAME}.encode: ${typeof text === 'string' ? 'character' : 'token'} ${describeToken(piece)} at position ${position} is not in the vocabulary ` +
            `(${this.#tokens.length} tokens); build the vocabulary from all your texts or pass unknown: 'unk'.`,
        );
      }
      position++;
    }
    if (addEos) ids.push(Vocabulary.EOS_ID);
    return ids;
  }

  /** The text of `ids`; by default without special tokens and stopping at the first `<eos>`. */
  decode(ids: Iterable<number>, { skipSpecial = true, separator = '' }: DecodeOptions = {}): string {
    const pieces: string[] = [];
    for (const id of ids) {
      const token = this.tokenOf(id);
      if (skipSpecial) {
        if (id === Vocabulary.EOS_ID) break;
        if (id === Vocabulary.PAD_ID || id === Vocabulary.BOS_ID) continue;
      }
      pieces.push(token);
    }
    return pieces.join(separator);
  }

  /** The JSON form (also what `JSON.stringify(vocabulary)` writes). */
  toJSON(): VocabularyJSON {
    return { format: 'mie-vocabulary', formatVersion: 1, tokens: [...this.#tokens], unknown: this.config.unknown };
  }
}
