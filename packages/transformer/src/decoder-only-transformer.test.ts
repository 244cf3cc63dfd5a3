/**
 * DecoderOnlyTransformer: causality, generation through the decoding interface (cached and
 * uncached, greedy, beam, sampling, streaming), left-padded prompts, custom logits processors and
 * stopping criteria, hooks at every level, and errors.
 */
import { BaseModel, MieConfigError, MieShapeError, setBackend, setSeed, tf, type Module } from '@mie/core';
import { DecoderOnlyTransformer, type DecoderOnlyTransformerOptions } from './decoder-only-transformer';
import { argmax } from './logits-processors';

beforeAll(async () => {
  await setBackend('cpu');
});

function lm(seed: number, options: Partial<DecoderOnlyTransformerOptions> = {}): DecoderOnlyTransformer {
  setSeed(seed);
  return new DecoderOnlyTransformer({ vocabSize: 12, dModel: 16, numHeads: 4, numLayers: 2, dFf: 32, dropout: 0, maxSeqLength: 24, ...options }).eval();
}

const ids = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');

/** Greedy continuation by full forward passes: the reference for the cached loop. */
function referenceGreedy(model: DecoderOnlyTransformer, prompt: number[], steps: number): number[] {
  const tokens = [...prompt];
  for (let i = 0; i < steps; i++) {
    const logits = tf.tidy(() => {
      const out = model.forward(ids([tokens]));
      return tf.reshape(tf.slice(out, [0, tokens.length - 1, 0], [1, 1, -1]), [-1]);
    });
    tokens.push(argmax(Float64Array.from(logits.dataSync())));
    logits.dispose();
  }
  return tokens.slice(prompt.length);
}

const VARIANTS: Array<[string, Partial<DecoderOnlyTransformerOptions>]> = [
  ['sinusoidal, post-norm, tied', {}],
  ['rotary, GQA, pre-norm, untied', { positionalEncoding: 'rotary', numKeyValueHeads: 2, normFirst: true, tieEmbeddings: false }],
  ['ALiBi, multi-query, pre-norm', { positionalEncoding: 'alibi', numKeyValueHeads: 1, normFirst: true }],
  ['learned', { positionalEncoding: 'learned' }],
  ["T5's relative bias (causal buckets)", { positionalEncoding: 't5', normFirst: true }],
];

describe.each(VARIANTS)('DecoderOnlyTransformer (%s)', (_label, options) => {
  it('is causal: later tokens never change earlier logits', () => {
    const model = lm(1, options);
    const a = model.forward(ids([[3, 4, 5, 6, 7]]));
    const b = model.forward(ids([[3, 4, 5, 9, 1]]));
    const early = (t: tf.Tensor) => tf.slice(t, [0, 0, 0], [1, 3, -1]);
    const [ea, eb] = [early(a), early(b)];
    expect(tf.max(tf.abs(tf.sub(ea, eb))).dataSync()[0]).toBeLessThan(1e-6);
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeGreaterThan(1e-4);
    expect(a.shape).toEqual([1, 5, 12]);
    tf.dispose([a, b, ea, eb]);
    model.dispose();
  });

  it('cached greedy generation equals the uncached loop and full forward passes, without leaks', async () => {
    const model = lm(2, options);
    const prompt = ids([[3, 4, 5]]);
    const before = tf.memory().numTensors;
    const cached = await model.generate(prompt, { maxNewTokens: 6 });
    const uncached = await model.generate(prompt, { maxNewTokens: 6, useCache: false });
    expect(tf.memory().numTensors).toBe(before);
    expect(cached.sequences).toEqual(uncached.sequences);
    expect(cached.scores[0]).toBeCloseTo(uncached.scores[0], 4);
    expect(cached.sequences[0]).toEqual(referenceGreedy(model, [3, 4, 5], 6));
    const beams = await model.generate(prompt, { maxNewTokens: 5, numBeams: 3, numReturnSequences: 2 });
    const beamsUncached = await model.generate(prompt, { maxNewTokens: 5, numBeams: 3, numReturnSequences: 2, useCache: false });
    expect(beams.sequences).toEqual(beamsUncached.sequences);
    expect(beams.sequences).toHaveLength(2);
    expect(beams.scores[0]).toBeGreaterThanOrEqual(beams.scores[1]);
    expect(tf.memory().numTensors).toBe(before);
    prompt.dispose();
    model.dispose();
  });
});

describe('DecoderOnlyTransformer generation', () => {
  it('streams the same tokens as generate, and samples reproducibly with a seed', async () => {
    const model = lm(3);
    const prompt = ids([[3, 4], [5, 6]]);
    const options = { maxNewTokens: 5, doSample: true, seed: 9, temperature: 0.8, numReturnSequences: 2 };
    const whole = await model.generate(prompt, options);
    const again = await model.generate(prompt, options);
    expect(again.sequences).toEqual(whole.sequences);
    const streamed: number[][] = [[], [], [], []];
    const stream = model.generateStream(prompt, options);
    for await (const step of stream) step.tokens.forEach((token, row) => token !== null && streamed[row].push(token));
    expect(streamed).toEqual(whole.sequences);
    tf.dispose(prompt);
    model.dispose();
  });

  it('left-padded prompts with rotary or ALiBi positions continue exactly as unpadded ones', async () => {
    for (const positionalEncoding of ['rotary', 'alibi'] as const) {
      const model = lm(4, { positionalEncoding, padTokenId: 0, normFirst: true });
      const alone = await model.generate(ids([[5, 6, 7]]), { maxNewTokens: 5 });
      const batched = await model.generate(ids([[0, 0, 5, 6, 7], [3, 4, 5, 6, 7]]), { maxNewTokens: 5 });
      expect(batched.sequences[0]).toEqual(alone.sequences[0]);
      expect(batched.scores[0]).toBeCloseTo(alone.scores[0], 4);
      model.dispose();
    }
  });

  it('takes bosTokenId and eosTokenId from its config, custom processors and stopping criteria', async () => {
    const model = lm(5, { bosTokenId: 1, eosTokenId: 2 });
    const prompt = ids([[3, 4]]);
    const withBos = await model.generate(prompt, { maxNewTokens: 6, eosTokenId: null });
    expect(withBos.sequences[0]).toEqual(referenceGreedy(model, [1, 3, 4], 6));
    const fromEmpty = await model.generate(tf.zeros([1, 0], 'int32'), { maxNewTokens: 3, eosTokenId: null });
    expect(fromEmpty.sequences[0]).toEqual(referenceGreedy(model, [1], 3));
    const banned = withBos.sequences[0][0];
    const seen: number[] = [];
    const processed = await model.generate(prompt, {
      maxNewTokens: 6,
      eosTokenId: null,
      logitsProcessors: [(scores, _tokens, { step }) => { seen.push(step); scores[banned] = -Infinity; }],
      stoppingCriteria: [(tokens) => tokens.length === 4],
    });
    expect(processed.sequences[0]).not.toContain(banned);
    expect(processed.sequences[0]).toHaveLength(4);
    expect(seen).toEqual([0, 1, 2, 3]);
    const beams = await model.generate(prompt, { maxNewTokens: 6, eosTokenId: null, numBeams: 2, stoppingCriteria: [(tokens) => tokens.length === 3] });
    expect(beams.sequences[0]).toHaveLength(3);
    tf.dispose([prompt]);
    model.dispose();
  });

  it('refuses bad prompts and options, naming them', async () => {
    const model = lm(6);
    const prompt = ids([[3, 4]]);
    await expect(model.generate(tf.zeros([1, 2]) as tf.Tensor, {})).rejects.toThrow(/DecoderOnlyTransformer.generate: promptIds must be a live int32 tensor/);
    await expect(model.generate(prompt, { maxNewTokens: 23 })).rejects.toThrow(/option "maxNewTokens" must be an integer in \[1, 22\] \(maxSeqLength less the prompt\)/);
    await expect(model.generate(prompt, { srcKeyPaddingMask: tf.ones([1, 2]) } as never)).rejects.toThrow(MieConfigError);
    await expect(model.generate(tf.zeros([1, 0], 'int32'), {})).rejects.toThrow(MieShapeError);
    await expect(model.generate(ids([[3, 40]]), {})).rejects.toThrow(/ids/);
    await expect(model.generate(prompt, { logitsProcessors: ['x'] as never })).rejects.toThrow(/option "logitsProcessors" must be an array of functions/);
    expect(() => lm(1, { numKeyValueHeads: 3 })).toThrow(/DecoderOnlyTransformer: option "numKeyValueHeads" must divide numHeads \(4\)/);
    expect(() => lm(1, { eosTokenId: 12 })).toThrow(/option "eosTokenId" must be null or a token id in \[0, 12\)/);
    const x = model.forward(prompt);
    expect(() => model.forward(prompt, { keyPaddingMask: tf.ones([1, 3]) })).toThrow(/option "keyPaddingMask" must be a tensor \[1, 2\]/);
    tf.dispose([x, prompt]);
    model.dispose();
  });

  it('saves and loads with its config, ties the output projection, and fires hooks on every module', async () => {
    const model = lm(7, { bosTokenId: 1, positionalEncoding: 'rotary' });
    expect(model.outputProjection).toBeNull();
    const bytes = model.toBuffers();
    const loaded = (await BaseModel.fromBuffers(bytes)) as DecoderOnlyTransformer;
    expect(loaded).toBeInstanceOf(DecoderOnlyTransformer);
    expect(loaded.config).toEqual(model.config);
    loaded.eval();
    const prompt = ids([[3, 4]]);
    const [a, b] = [await model.generate(prompt, { maxNewTokens: 4 }), await loaded.generate(prompt, { maxNewTokens: 4 })];
    expect(b).toEqual(a);
    const counts = new Map<string, number>();
    const removers = model.namedModules().map(([path, module]: [string, Module]) => module.registerForwardHook(() => void counts.set(path, (counts.get(path) ?? 0) + 1)));
    await model.generate(prompt, { maxNewTokens: 4 });
    const paths = model.namedModules().map(([path]) => path);
    // The prompt pass and 3 cached steps: each module once per step; rotary rotates q and k.
    const expected = (path: string) => (path.endsWith('.rotary') ? 8 : 4);
    expect(paths.filter((path) => counts.get(path) !== expected(path))).toEqual([]);
    removers.forEach((remove) => remove());
    prompt.dispose();
    model.dispose();
    loaded.dispose();
  });
});
