import { MieConfigError, MieShapeError, setBackend, setSeed, tf } from '@mie/core';
import type { EncoderDecoderTransformer } from './encoder-decoder-transformer';
import { beamSearch, generate, type GenerateOptions } from './generation';
import { BOS, EOS, bruteForceSequences, padded, referenceGreedy, repeatedNgrams, smallModel } from './__tests__/generation-helpers';

const SOURCES = [
  [3, 4, 5, 6, 7],
  [8, 9],
  [5, 10, 11],
];

// Most tests run on wasm (faster); the first block checks cpu too.
beforeAll(async () => {
  await setBackend('wasm');
});

/** Runs `body` and checks that it leaves no tensors behind. */
async function noLeaks<T>(body: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await body();
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

describe.each(['cpu', 'wasm'] as const)('cached decoding on %s', (backend) => {
  let model: EncoderDecoderTransformer;
  let src: tf.Tensor2D;
  beforeAll(async () => {
    await setBackend(backend);
    model = smallModel(11);
    src = padded(SOURCES);
  });
  afterAll(async () => {
    src.dispose();
    model.dispose();
    await setBackend('wasm');
  });

  it.each([
    ['greedy', {}],
    ['beam search (numBeams 3)', { numBeams: 3, numReturnSequences: 3 }],
    ['sampling', { doSample: true, seed: 5, topK: 6 }],
  ])('equals the uncached reference token for token (%s)', async (_label, extra: GenerateOptions) => {
    const options: GenerateOptions = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8, ...extra };
    const cached = await noLeaks(() => model.generate(src, options));
    const uncached = await noLeaks(() => model.generate(src, { ...options, useCache: false }));
    expect(cached.sequences).toEqual(uncached.sequences);
    cached.scores.forEach((score, i) => expect(score).toBeCloseTo(uncached.scores[i], 4));
    expect(cached.sequences).toHaveLength(SOURCES.length * (extra.numReturnSequences ?? 1));
  });
});

it.each([
  ['rotary positions', { positionalEncoding: 'rotary' as const }],
  ['learned positions, pre-norm', { positionalEncoding: 'learned' as const, normFirst: true, maxSeqLength: 16 }],
  ['shared embeddings, no padding token', { shareEmbeddings: true, padTokenId: null }],
])('cached decoding equals uncached with %s', async (_label, config) => {
  const model = smallModel(21, config);
  const src = padded(SOURCES);
  for (const extra of [{}, { numBeams: 2, numReturnSequences: 2 }]) {
    const options = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8, ...extra };
    const cached = await noLeaks(() => model.generate(src, options));
    expect(cached.sequences).toEqual((await model.generate(src, { ...options, useCache: false })).sequences);
  }
  src.dispose();
  model.dispose();
});

describe('greedy and beam search', () => {
  let model: EncoderDecoderTransformer;
  beforeAll(() => {
    model = smallModel(11);
  });
  afterAll(() => model.dispose());

  it('greedy equals a reference greedy search by full forward passes; sequences stop at EOS', async () => {
    const src = padded(SOURCES);
    const { sequences, scores } = await noLeaks(() => generate(model, src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 10 }));
    for (const [i, source] of SOURCES.entries()) {
      expect(sequences[i]).toEqual(await referenceGreedy(model, source, { maxNewTokens: 10 }));
      expect(sequences[i].indexOf(EOS)).toBeGreaterThanOrEqual(sequences[i].includes(EOS) ? sequences[i].length - 1 : -1);
      expect(scores[i]).toBeLessThan(0);
    }
    src.dispose();
  });

  it('beam search with numBeams 1 (earlyStopping) equals greedy, also with processors', async () => {
    const src = padded(SOURCES);
    for (const extra of [{}, { repetitionPenalty: 1.5, noRepeatNgramSize: 2 }]) {
      const options = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 10, ...extra };
      const greedy = await generate(model, src, options);
      // generate() runs greedy search for numBeams 1; beamSearch() runs the beam path regardless.
      const beam = await noLeaks(() => beamSearch(model, src, { ...options, numBeams: 1, earlyStopping: true }));
      expect(beam.sequences).toEqual(greedy.sequences);
      beam.scores.forEach((score, i) => expect(score).toBeCloseTo(greedy.scores[i] / greedy.sequences[i].length, 6));
    }
    src.dispose();
  });

  it.each([1, 2, 0, -0.5])('beam search over a tiny vocabulary matches brute force (lengthPenalty %d)', async (lengthPenalty) => {
    const tiny = smallModel(4, { srcVocabSize: 6, tgtVocabSize: 5 });
    // Make EOS likely, so that hypotheses finished early compete with full-length ones.
    const bias = tiny.outputProjection!.bias!;
    bias.assign(tf.tidy(() => tf.add(bias, tf.tensor1d([0, 0, 1.5, 0, 0])))); // EOS = 2
    const source = [3, 4, 5];
    const maxNewTokens = 3;
    const all = await bruteForceSequences(tiny, source, { vocabSize: 5, maxNewTokens, lengthPenalty });
    const src = padded([source]);
    // 80 beams keep every candidate (16 live prefixes x 5 tokens at the last step): beam search is exhaustive.
    const exhaustive = await noLeaks(() => tiny.generate(src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens, numBeams: 80, numReturnSequences: 10, lengthPenalty }));
    expect(exhaustive.sequences).toEqual(all.slice(0, 10).map((s) => s.tokens));
    exhaustive.scores.forEach((score, i) => expect(score).toBeCloseTo(all[i].score, 5));
    // Hypotheses that finished early (EOS) and at full length are both among the best (a
    // length penalty of 2 favours long ones too strongly for early ones to make the top 10).
    if (lengthPenalty <= 1) expect(exhaustive.sequences.some((tokens) => tokens.length < maxNewTokens)).toBe(true);
    expect(exhaustive.sequences.some((tokens) => tokens.length === maxNewTokens)).toBe(true);
    // A narrow beam returns true scores of real sequences, never better than the optimum.
    const narrow = await tiny.generate(src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens, numBeams: 3, numReturnSequences: 3, lengthPenalty });
    narrow.sequences.forEach((tokens, i) => {
      const match = all.find((s) => s.tokens.join() === tokens.join());
      expect(match).toBeDefined();
      expect(narrow.scores[i]).toBeCloseTo(match!.score, 5);
      expect(narrow.scores[i]).toBeLessThanOrEqual(all[i].score + 1e-6);
    });
    expect(narrow.scores).toEqual([...narrow.scores].sort((a, b) => b - a));
    src.dispose();
    tiny.dispose();
  });

  it('batched sources of different lengths give the same outputs as each source alone', async () => {
    const src = padded(SOURCES);
    for (const extra of [{}, { numBeams: 3, numReturnSequences: 2 }] as GenerateOptions[]) {
      const options = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8, ...extra };
      const batched = await model.generate(src, options);
      const perRow = extra.numReturnSequences ?? 1;
      for (const [i, source] of SOURCES.entries()) {
        const one = padded([source]);
        const alone = await model.generate(one, options);
        expect(batched.sequences.slice(i * perRow, (i + 1) * perRow)).toEqual(alone.sequences);
        alone.scores.forEach((score, r) => expect(batched.scores[i * perRow + r]).toBeCloseTo(score, 4));
        one.dispose();
      }
    }
    // An explicit source mask does the same as padTokenId.
    const mask = tf.cast(tf.notEqual(src, tf.scalar(0, 'int32')), 'float32');
    const explicit = await model.generate(src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8, padTokenId: null, srcKeyPaddingMask: mask });
    expect(explicit.sequences).toEqual((await model.generate(src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8 })).sequences);
    tf.dispose([src, mask]);
  });

  it('without eosTokenId generates exactly maxNewTokens tokens', async () => {
    const src = padded(SOURCES);
    const { sequences } = await model.generate(src, { bosTokenId: BOS, maxNewTokens: 6 });
    expect(sequences.map((s) => s.length)).toEqual([6, 6, 6]);
    src.dispose();
  });

  it('runs in eval mode and restores every module mode afterwards', async () => {
    const noisy = smallModel(11, { dropout: 0.3 });
    const src = padded(SOURCES);
    noisy.train();
    noisy.decoder.layers[0].eval(); // a mixed state survives too
    const options = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8 };
    const first = await noisy.generate(src, options);
    const [a, b] = await Promise.all([noisy.generate(src, options), noisy.generate(src, { ...options, numBeams: 2 })]);
    expect(a.sequences).toEqual(first.sequences);
    expect(b.sequences).toHaveLength(3);
    expect(noisy.training).toBe(true);
    expect(noisy.decoder.layers[0].training).toBe(false);
    expect(noisy.decoder.layers[1].training).toBe(true);
    // A failed generation restores modes as well.
    await expect(noisy.generate(src, { ...options, signal: AbortSignal.abort() })).rejects.toThrow();
    expect(noisy.training).toBe(true);
    src.dispose();
    noisy.dispose();
  });
});

describe('sampling', () => {
  let model: EncoderDecoderTransformer;
  let src: tf.Tensor2D;
  beforeAll(() => {
    model = smallModel(11);
    src = padded(SOURCES);
  });
  afterAll(() => {
    model.dispose();
    src.dispose();
  });
  const base = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 10, doSample: true };

  it('the same seed reproduces the output; different seeds differ', async () => {
    const first = await noLeaks(() => model.generate(src, { ...base, seed: 1 }));
    expect((await model.generate(src, { ...base, seed: 1 })).sequences).toEqual(first.sequences);
    const others = await Promise.all([2, 3, 4].map((seed) => model.generate(src, { ...base, seed })));
    expect(others.some((other) => JSON.stringify(other.sequences) !== JSON.stringify(first.sequences))).toBe(true);
    // Without a seed, setSeed fixes the draws.
    setSeed(8);
    const seeded = await model.generate(src, base);
    setSeed(8);
    expect((await model.generate(src, base)).sequences).toEqual(seeded.sequences);
  });

  it('topK 1 and a tiny topP equal greedy', async () => {
    const greedy = await model.generate(src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 10 });
    for (const warp of [{ topK: 1 }, { topP: 1e-6 }, { topK: 1, temperature: 3 }]) {
      const sampled = await model.generate(src, { ...base, seed: 3, ...warp });
      expect(sampled.sequences).toEqual(greedy.sequences);
    }
  });

  it('numReturnSequences draws several samples per source, in source order', async () => {
    const { sequences } = await noLeaks(() => model.generate(src, { ...base, seed: 2, numReturnSequences: 4, temperature: 2 }));
    expect(sequences).toHaveLength(12);
    const perSource = [0, 1, 2].map((i) => new Set(sequences.slice(i * 4, i * 4 + 4).map((s) => s.join())).size);
    expect(Math.max(...perSource)).toBeGreaterThan(1);
  });
});

describe('repetition penalty and n-gram blocking end to end', () => {
  let model: EncoderDecoderTransformer;
  let src: tf.Tensor2D;
  beforeAll(() => {
    model = smallModel(11);
    src = padded(SOURCES);
  });
  afterAll(() => {
    model.dispose();
    src.dispose();
  });

  it('greedy with the processors equals the reference built from full forward passes', async () => {
    const plain = await model.generate(src, { bosTokenId: BOS, maxNewTokens: 12 });
    for (const processors of [{ repetitionPenalty: 1.8 }, { noRepeatNgramSize: 2 }, { repetitionPenalty: 1.3, noRepeatNgramSize: 3 }]) {
      const { sequences } = await model.generate(src, { bosTokenId: BOS, maxNewTokens: 12, ...processors });
      for (const [i, source] of SOURCES.entries()) {
        expect(sequences[i]).toEqual(await referenceGreedy(model, source, { maxNewTokens: 12, eosTokenId: -1, ...processors }));
      }
      expect(sequences).not.toEqual(plain.sequences); // the processors changed something
    }
  });

  it.each([
    ['greedy', {}],
    ['beam search', { numBeams: 3, numReturnSequences: 3 }],
    ['sampling', { doSample: true, seed: 4, numReturnSequences: 2 }],
  ])('noRepeatNgramSize leaves no repeated n-gram (%s)', async (_label, extra: GenerateOptions) => {
    const plain = await model.generate(src, { bosTokenId: BOS, maxNewTokens: 14, ...extra });
    expect(plain.sequences.some((tokens) => repeatedNgrams(tokens, 2) > 0)).toBe(true);
    for (const size of [2, 3]) {
      const { sequences } = await model.generate(src, { bosTokenId: BOS, maxNewTokens: 14, noRepeatNgramSize: size, ...extra });
      for (const tokens of sequences) expect(repeatedNgrams(tokens, size)).toBe(0);
    }
  });
});

describe('validation', () => {
  let model: EncoderDecoderTransformer;
  let src: tf.Tensor2D;
  beforeAll(() => {
    model = smallModel(1);
    src = padded(SOURCES);
  });
  afterAll(() => {
    model.dispose();
    src.dispose();
  });

  it.each([
    [{}, /option "bosTokenId" is required/],
    [{ bosTokenId: 12 }, /option "bosTokenId" must be a token id in \[0, 12\)/],
    [{ bosTokenId: 1, eosTokenId: -1 }, /option "eosTokenId"/],
    [{ bosTokenId: 1, maxNewTokens: 0 }, /option "maxNewTokens"/],
    [{ bosTokenId: 1, maxNewTokens: 6000 }, /option "maxNewTokens" must be an integer in \[1, maxSeqLength = 5000\]/],
    [{ bosTokenId: 1, numBeams: 2, numReturnSequences: 3 }, /option "numReturnSequences" must be <= numBeams \(2\)/],
    [{ bosTokenId: 1, numReturnSequences: 2 }, /option "numReturnSequences" must be 1 for greedy search/],
    [{ bosTokenId: 1, doSample: true, topP: 0 }, /option "topP" must be a number in \(0, 1\]/],
    [{ bosTokenId: 1, doSample: true, topP: 1.5 }, /option "topP"/],
    [{ bosTokenId: 1, doSample: true, temperature: 0 }, /option "temperature" must be a finite number > 0/],
    [{ bosTokenId: 1, doSample: true, topK: -1 }, /option "topK"/],
    [{ bosTokenId: 1, doSample: true, numBeams: 2 }, /option "numBeams" must be 1 with doSample/],
    [{ bosTokenId: 1, temperature: 0.5 }, /option "temperature" only applies with doSample: true/],
    [{ bosTokenId: 1, repetitionPenalty: 0 }, /option "repetitionPenalty"/],
    [{ bosTokenId: 1, noRepeatNgramSize: 1.5 }, /option "noRepeatNgramSize"/],
    [{ bosTokenId: 1, lengthPenalty: NaN }, /option "lengthPenalty"/],
    [{ bosTokenId: 1, useCache: 'yes' }, /option "useCache" must be a boolean/],
    [{ bosTokenId: 1, signal: {} }, /option "signal" must be an AbortSignal/],
    [{ bosTokenId: 1, numbeams: 2 }, /unknown option "numbeams"/],
  ])('rejects %j with a MieConfigError naming the option', async (options, message) => {
    const before = tf.memory().numTensors;
    const call = model.generate(src, options as GenerateOptions);
    await expect(call).rejects.toThrow(MieConfigError);
    await expect(call).rejects.toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a source that is not int32 [batch, srcLength] with a MieShapeError', async () => {
    const float = tf.tensor2d([[1, 2]], [1, 2], 'float32');
    const rank1 = tf.tensor1d([1, 2], 'int32');
    const mask = tf.ones([1, 5]);
    for (const bad of [float, rank1, [[1, 2]]]) {
      await expect(model.generate(bad as tf.Tensor, { bosTokenId: 1 })).rejects.toThrow(MieShapeError);
    }
    await expect(model.generate(src, { bosTokenId: 1, srcKeyPaddingMask: mask })).rejects.toThrow(/option "srcKeyPaddingMask" must be a tensor \[3, 5\]/);
    // Ids out of range fail in the encoder, before any step, and leave nothing behind.
    const outOfRange = tf.tensor2d([[3, 40]], [1, 2], 'int32');
    const before = tf.memory().numTensors;
    await expect(model.generate(outOfRange, { bosTokenId: 1 })).rejects.toThrow(MieShapeError);
    await expect(model.generate(outOfRange, { bosTokenId: 1, numBeams: 2 })).rejects.toThrow(MieShapeError);
    expect(tf.memory().numTensors).toBe(before);
    expect(model.training).toBe(true);
    outOfRange.dispose();
    tf.dispose([float, rank1, mask]);
  });
});
