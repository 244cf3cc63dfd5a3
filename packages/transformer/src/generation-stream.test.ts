import { MieConfigError, setBackend, tf } from '@mie/core';
import type { EncoderDecoderTransformer } from './encoder-decoder-transformer';
import type { GenerateOptions, GenerationStreamStep } from './generation';
import { BOS, EOS, collect, padded, smallModel } from './__tests__/generation-helpers';

const SOURCES = [
  [3, 4, 5, 6, 7],
  [8, 9],
  [5, 10, 11],
];

let model: EncoderDecoderTransformer;
let src: tf.Tensor2D;
let decoderCalls = 0;

beforeAll(async () => {
  await setBackend('wasm');
  model = smallModel(11);
  src = padded(SOURCES);
  model.decoder.registerForwardHook(() => {
    decoderCalls++;
  });
});
afterAll(() => {
  model.dispose();
  src.dispose();
});
beforeEach(() => {
  decoderCalls = 0;
});

/** The non-null tokens of each row, concatenated. */
function rowsOf(steps: GenerationStreamStep[], rows: number): number[][] {
  return Array.from({ length: rows }, (_, row) => steps.map((step) => step.tokens[row]).filter((token): token is number => token !== null));
}

describe('generateStream', () => {
  it.each([
    ['greedy', {}],
    ['sampling', { doSample: true, seed: 3, numReturnSequences: 2 }],
    ['greedy without cache', { useCache: false }],
  ])('yields one token per row per step, equal to generate() (%s)', async (_label, extra: GenerateOptions) => {
    const options = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 10, ...extra };
    const expected = await model.generate(src, options);
    const before = tf.memory().numTensors;
    const steps = await collect(model.generateStream(src, options));
    expect(tf.memory().numTensors).toBe(before);
    const rows = SOURCES.length * (extra.numReturnSequences ?? 1);
    expect(steps.map((step) => step.step)).toEqual(steps.map((_, i) => i));
    for (const step of steps) {
      expect(step.tokens).toHaveLength(rows);
      expect(step.finished).toHaveLength(rows);
    }
    expect(rowsOf(steps, rows)).toEqual(expected.sequences);
    // A row's token is null only after it finished; the last step finishes every row or hits maxNewTokens.
    steps.forEach((step, i) => step.tokens.forEach((token, row) => expect(token === null).toBe(i > 0 && steps[i - 1].finished[row])));
    expect(steps.length === 10 || steps[steps.length - 1].finished.every(Boolean)).toBe(true);
  });

  it('is lazy and incremental: each step runs the decoder once, as it is consumed', async () => {
    const stream = model.generateStream(src, { bosTokenId: BOS, maxNewTokens: 6 });
    expect(decoderCalls).toBe(0);
    const seen: number[] = [];
    for await (const step of stream) seen.push(step.step, decoderCalls);
    expect(seen).toEqual([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
  });

  it('the generator returns the whole output, like generate()', async () => {
    const options = { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 10 };
    const stream = model.generateStream(src, options);
    let next = await stream.next();
    while (!next.done) next = await stream.next();
    expect(next.value).toEqual(await model.generate(src, options));
  });

  it('breaking out early frees everything and restores the mode', async () => {
    model.train();
    const before = tf.memory().numTensors;
    let steps = 0;
    for await (const step of model.generateStream(src, { bosTokenId: BOS, maxNewTokens: 20 })) {
      expect(step.step).toBe(steps++);
      expect(model.training).toBe(false);
      if (steps === 3) break;
    }
    expect(decoderCalls).toBe(3);
    expect(tf.memory().numTensors).toBe(before);
    expect(model.training).toBe(true);
    model.eval();
  });

  it('aborting mid-way stops before the next step, frees everything and ends with an AbortError', async () => {
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const received: number[] = [];
    const consume = async () => {
      for await (const step of model.generateStream(src, { bosTokenId: BOS, maxNewTokens: 20, signal: controller.signal })) {
        received.push(step.step);
        if (step.step === 2) controller.abort();
      }
    };
    await expect(consume()).rejects.toMatchObject({ name: 'AbortError' });
    expect(received).toEqual([0, 1, 2]);
    expect(decoderCalls).toBe(3);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a custom abort reason is what the iterator throws', async () => {
    const controller = new AbortController();
    const stream = model.generateStream(src, { bosTokenId: BOS, maxNewTokens: 20, signal: controller.signal });
    await stream.next();
    controller.abort(new Error('user cancelled'));
    await expect(stream.next()).rejects.toThrow('user cancelled');
    expect((await stream.next()).done).toBe(true);
  });

  it('an abort from a timer stops generate() promptly (greedy and beam search), leaving no tensors', async () => {
    for (const extra of [{}, { numBeams: 3 }]) {
      const before = tf.memory().numTensors;
      decoderCalls = 0;
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 30);
      await expect(model.generate(src, { bosTokenId: BOS, maxNewTokens: 2000, signal: controller.signal, ...extra })).rejects.toMatchObject({ name: 'AbortError' });
      expect(decoderCalls).toBeGreaterThan(0);
      expect(decoderCalls).toBeLessThan(2000);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('an already aborted signal rejects before any work', async () => {
    const signal = AbortSignal.abort();
    await expect(model.generate(src, { bosTokenId: BOS, signal })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(collect(model.generateStream(src, { bosTokenId: BOS, signal }))).rejects.toMatchObject({ name: 'AbortError' });
    expect(decoderCalls).toBe(0);
  });

  it('checks options at once; beam search is not streamed', () => {
    expect(() => model.generateStream(src, { bosTokenId: BOS, numBeams: 2 })).toThrow(MieConfigError);
    expect(() => model.generateStream(src, { bosTokenId: BOS, numBeams: 2 })).toThrow(/generateStream: option "numBeams" must be 1/);
    expect(() => model.generateStream(src, { maxNewTokens: 3 })).toThrow(/option "bosTokenId" is required/);
  });
});
