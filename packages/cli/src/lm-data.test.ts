import { setBackend, tf } from '@mie/core';
import {
  BOS,
  CharVocabulary,
  EOS,
  PAD,
  RandomWindows,
  UNK,
  detokenize,
  loadBrownDocuments,
  loadLMSplits,
  lmSplitOf,
  ngramBaselines,
  readBrownText,
  scoringWindows,
} from './lm-data';

beforeAll(async () => {
  await setBackend('cpu');
});

const documents = loadBrownDocuments();
const splits = loadLMSplits(documents);
const vocabulary = CharVocabulary.fromTexts(splits.train.map((d) => d.text));
const encode = (split: keyof typeof splits) => splits[split].map((d) => vocabulary.encodeDocument(d.text));

describe('the Brown Corpus as plain text', () => {
  it('drops the tags and puts punctuation and quotes where print has them', () => {
    expect(detokenize('\t``/`` Only/rb a/at relative/jj handful/nn \'\'/\'\' ,/, the/at jury/nn said/vbd ./.')).toBe('"Only a relative handful", the jury said.');
    expect(detokenize('He/pps said/vbd (/( quietly/rb )/) that/cs 1/2/cd --/-- no/at ,/, never/rb !/.')).toBe('He said (quietly) that 1/2--no, never!');
    expect(readBrownText('\n\n\tOne/cd ./.\nTwo/cd ./.\n\n\n\tThree/cd ./.\n')).toBe('One. Two.\nThree.');
  });

  it('reads all 500 documents, 15 genres, about 6 million characters', () => {
    expect(documents).toHaveLength(500);
    expect(new Set(documents.map((d) => d.category)).size).toBe(15);
    const characters = documents.reduce((n, d) => n + d.text.length, 0);
    expect(characters).toBeGreaterThan(5_500_000);
    expect(characters).toBeLessThan(6_500_000);
    expect(documents[0].text.startsWith('The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that')).toBe(true);
    // No tag is left (the text has a few slashes of its own: "and/or", "B.t.u./sq. ft./in."), nor
    // an opening quote token ('' is also inches: 4' 10'').
    const tagLike = (text: string) => (text.match(/\/(at|nn|in|vbd|cc|jj)\b/g) ?? []).length;
    expect(documents.filter((d) => tagLike(d.text) > 3 || d.text.includes('``')).map((d) => d.id)).toEqual([]);
  });
});

describe('the split by document', () => {
  it('is 450 / 25 / 25, disjoint, fixed, and has every genre of 20 documents or more in validation and test', () => {
    expect([splits.train.length, splits.validation.length, splits.test.length]).toEqual([450, 25, 25]);
    const ids = (split: keyof typeof splits) => new Set(splits[split].map((d) => d.id));
    const [train, validation, test] = [ids('train'), ids('validation'), ids('test')];
    for (const id of validation) expect(train.has(id) || test.has(id)).toBe(false);
    for (const id of test) expect(train.has(id)).toBe(false);
    expect(train.size + validation.size + test.size).toBe(500);
    expect([lmSplitOf(0), lmSplitOf(9), lmSplitOf(19), lmSplitOf(29)]).toEqual(['train', 'validation', 'test', 'validation']);
    expect(splits.validation[0].id).toBe('ca10');
    expect(splits.test[0].id).toBe('ca20');
    const large = [...new Set(documents.map((d) => d.category))].filter((c) => documents.filter((d) => d.category === c).length >= 20);
    for (const category of large) {
      expect(splits.validation.some((d) => d.category === category)).toBe(true);
      expect(splits.test.some((d) => d.category === category)).toBe(true);
    }
  });
});

describe('the character vocabulary', () => {
  it('has the four special ids first and round-trips the text of every split', () => {
    expect([PAD, BOS, EOS, UNK]).toEqual([0, 1, 2, 3]);
    expect(vocabulary.size).toBe(4 + vocabulary.characters.length);
    expect(vocabulary.size).toBeGreaterThan(80);
    expect(vocabulary.size).toBeLessThan(100);
    for (const c of ' \n"abcxyzABCXYZ0123456789.,;:?!()$%&') expect(vocabulary.has(c)).toBe(true);
    for (const split of ['train', 'validation', 'test'] as const) {
      for (const { text } of splits[split]) {
        const unknown = vocabulary.unknownCharacters(text);
        const ids = vocabulary.encodeDocument(text);
        expect(ids[0]).toBe(BOS);
        expect(ids[ids.length - 1]).toBe(EOS);
        expect(vocabulary.decode(ids)).toBe(unknown.length === 0 ? text : text.replace(/./gsu, (c) => (vocabulary.has(c) ? c : '\uFFFD')));
      }
    }
    // Rare characters are <unk>: "[" appears twice in the whole corpus.
    expect(vocabulary.has('[')).toBe(false);
    expect(vocabulary.encode('a[b')).toEqual([vocabulary.encode('a')[0], UNK, vocabulary.encode('b')[0]]);
    expect(vocabulary.unknownCharacters('été [x]')).toEqual(['é', '[', ']']);
    expect(new CharVocabulary(vocabulary.characters).encode('Hello')).toEqual(vocabulary.encode('Hello'));
    expect(() => new CharVocabulary(['a', 'a'])).toThrow(/appears twice/);
    expect(() => new CharVocabulary(['ab'])).toThrow(/must be one character/);
  });
});

describe('the n-gram baselines', () => {
  const train = encode('train');
  const validation = ngramBaselines(train, encode('validation'), vocabulary.size);
  const test = ngramBaselines(train, encode('test'), vocabulary.size);

  it('order as they must: bigram < unigram < uniform, on validation and test', () => {
    const uniform = Math.log2(vocabulary.size - 2);
    for (const { unigram, bigram } of [validation, test]) {
      expect(unigram.bpc).toBeLessThan(uniform);
      expect(bigram.bpc).toBeLessThan(unigram.bpc - 0.8);
      expect(unigram.bpc).toBeGreaterThan(4);
      expect(bigram.bpc).toBeGreaterThan(3);
      expect(unigram.tokens).toBe(bigram.tokens);
    }
    const characters = splits.validation.reduce((n, d) => n + d.text.length + 1, 0);
    expect(validation.unigram.tokens).toBe(characters);
  });

  it('are exact on a small example (add-one smoothing)', () => {
    // Vocabulary of 6 ids (V = 4 predictable): train "<s> a a b </s>", score "<s> a </s>".
    const a = 4;
    const b = 5;
    const { unigram, bigram } = ngramBaselines([[BOS, a, a, b, EOS]], [[BOS, a, EOS]], 6);
    // Unigram: n(a) = 2, n(</s>) = 1, N = 4.
    expect(unigram.bpc).toBeCloseTo(-(Math.log2(3 / 8) + Math.log2(2 / 8)) / 2, 12);
    // Bigram: n(<s> a) = 1, n(<s>) = 1; n(a </s>) = 0, n(a) = 2.
    expect(bigram.bpc).toBeCloseTo(-(Math.log2(2 / 5) + Math.log2(1 / 6)) / 2, 12);
    expect(unigram.tokens).toBe(2);
  });
});

describe('windows', () => {
  it('score every target of every document exactly once', () => {
    const docs = [[BOS, 4, 5, 6, 7, 8, 9, 10, 11, 12, EOS], [BOS, 4, EOS], [BOS, ...Array.from({ length: 20 }, (_, i) => 4 + (i % 7)), EOS]];
    for (const [length, stride] of [[4, 2], [4, 4], [4, 1], [16, 8], [3, 2]]) {
      const windows = scoringWindows(docs, length, stride);
      const scored = windows.flatMap((w) => w.target.filter((t) => t !== PAD));
      expect(scored).toEqual(docs.flatMap((d) => d.slice(1)));
      for (const w of windows) {
        expect(w.input).toHaveLength(length);
        expect(w.target).toHaveLength(length);
      }
    }
    // A long document: every window but the first scores only its last `stride` targets or fewer.
    const windows = scoringWindows([docs[0]], 4, 2);
    expect(windows.map((w) => w.input)).toEqual([[1, 4, 5, 6], [5, 6, 7, 8], [7, 8, 9, 10], [9, 10, 11, 12]]);
    expect(windows.map((w) => w.target)).toEqual([[4, 5, 6, 7], [0, 0, 8, 9], [0, 0, 10, 11], [0, 0, 12, EOS]]);
    expect(() => scoringWindows(docs, 4, 5)).toThrow(/stride must be an integer in \[1, 4\]/);
  });

  it('training batches are next-token pairs, fixed by (seed, epoch, batch), and never train a target <s>', () => {
    const train = encode('train').slice(0, 40);
    const data = new RandomWindows({ documents: train, length: 32, batchSize: 8, seed: 5 });
    const stream = train.flat();
    const first = data.batch(0, 3);
    const again = [...data.batches(0, 3)][0];
    const other = data.batch(1, 3);
    try {
      const input = first.input.arraySync() as number[][];
      const target = first.target.arraySync() as number[][];
      expect(first.input.shape).toEqual([8, 32]);
      expect(input).toEqual(again.input.arraySync());
      expect(input).not.toEqual(other.input.arraySync());
      let counted = 0;
      for (let row = 0; row < 8; row++) {
        // Find the window in the stream: the target is the input shifted by one.
        const at = stream.findIndex((_, i) => input[row].every((id, j) => stream[i + j] === id) && target[row].every((id, j) => id === (stream[i + j + 1] === BOS ? PAD : stream[i + j + 1])));
        expect(at).toBeGreaterThanOrEqual(0);
        counted += target[row].filter((id) => id !== PAD).length;
        expect(target[row]).not.toContain(BOS);
      }
      expect(first.tokens).toBe(counted);
      expect(data.batchesPerEpoch).toBe(Math.floor(stream.length / (32 * 8)));
    } finally {
      tf.dispose([first, again, other].flatMap((b) => [b.input, b.target]));
    }
  });
});
