import { setBackend, setSeed, tf } from '@mie/core';
import { ALiBiAttention } from './alibi-attention';
import { GroupedQueryAttention } from './grouped-query-attention';
import { KeyValueCache } from './kv-cache';
import { MultiHeadAttention } from './multi-head-attention';

type Step = (x: tf.Tensor, cache?: KeyValueCache) => tf.Tensor;

/** Runs `step` over `x` in chunks of the given sizes with one cache, concatenating the outputs. */
function decodeInChunks(step: Step, x: tf.Tensor, chunks: number[]): { output: tf.Tensor; cacheLength: number } {
  const cache = new KeyValueCache();
  const outputs: tf.Tensor[] = [];
  let start = 0;
  for (const size of chunks) {
    const piece = tf.slice(x, [0, start, 0], [-1, size, -1]);
    outputs.push(step(piece, cache));
    piece.dispose();
    start += size;
  }
  const output = tf.concat(outputs, 1);
  tf.dispose(outputs);
  const cacheLength = cache.length;
  cache.dispose();
  return { output, cacheLength };
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

const cases: Array<[string, () => { step: Step; dispose(): void }]> = [
  ['MultiHeadAttention', () => {
    const m = new MultiHeadAttention({ inputDim: 16, numHeads: 4 }).eval();
    return { step: (x, cache) => { const [o, w] = m.forward(x, x, x, { causal: true, cache }); w.dispose(); return o; }, dispose: () => m.dispose() };
  }],
  ['MultiHeadAttention with rotary embeddings', () => {
    const m = new MultiHeadAttention({ inputDim: 16, numHeads: 4, useRotaryEmbeddings: true, maxSeqLength: 32 }).eval();
    return { step: (x, cache) => { const [o, w] = m.forward(x, x, x, { causal: true, cache }); w.dispose(); return o; }, dispose: () => m.dispose() };
  }],
  ['GroupedQueryAttention', () => {
    const m = new GroupedQueryAttention({ dModel: 16, numHeads: 4, numKeyValueHeads: 2 }).eval();
    return { step: (x, cache) => m.forward(x, { causal: true, cache }), dispose: () => m.dispose() };
  }],
  ['GroupedQueryAttention (multi-query)', () => {
    const m = new GroupedQueryAttention({ dModel: 16, numHeads: 4, numKeyValueHeads: 1 }).eval();
    return { step: (x, cache) => m.forward(x, { causal: true, cache }), dispose: () => m.dispose() };
  }],
  ['ALiBiAttention', () => {
    const m = new ALiBiAttention({ hiddenSize: 16, numHeads: 4, maxSeqLength: 32 }).eval();
    return { step: (x, cache) => m.forward(x, { causal: true, cache }), dispose: () => m.dispose() };
  }],
];

describe.each(['cpu', 'wasm'] as const)('cached decoding on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
    setSeed(5);
  });

  it.each(cases)('%s: step by step equals one full causal pass', (_name, make) => {
    const before = tf.memory().numTensors;
    const { step, dispose } = make();
    const x = tf.randomNormal([2, 7, 16], 0, 1, 'float32', 9);
    const full = step(x);
    for (const chunks of [[1, 1, 1, 1, 1, 1, 1], [3, 1, 2, 1], [7]]) {
      const { output, cacheLength } = decodeInChunks(step, x, chunks);
      expect(cacheLength).toBe(7);
      expect(maxAbsDiff(output, full)).toBeLessThan(1e-5);
      output.dispose();
    }
    tf.dispose([x, full]);
    dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('KeyValueCache', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('appends in place, frees what it replaces, reorders and disposes', () => {
    const before = tf.memory().numTensors;
    const cache = new KeyValueCache();
    expect(cache.length).toBe(0);
    const step = (value: number) => tf.tidy(() => cache.append(tf.fill([2, 1, 1, 3], value), tf.fill([2, 1, 1, 3], -value)));
    step(1);
    step(2);
    expect(cache.length).toBe(2);
    expect(tf.memory().numTensors).toBe(before + 2); // only the cached keys and values
    expect(Array.from(cache.keys!.dataSync()).slice(0, 6)).toEqual([1, 1, 1, 2, 2, 2]);
    tf.tidy(() => cache.reorder([1, 1, 0]));
    expect(cache.keys!.shape).toEqual([3, 1, 2, 3]);
    expect(tf.memory().numTensors).toBe(before + 2);
    cache[Symbol.dispose]();
    expect(cache.length).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects steps that do not match what it holds', () => {
    const cache = new KeyValueCache();
    tf.tidy(() => cache.append(tf.zeros([1, 2, 1, 4]), tf.zeros([1, 2, 1, 4])));
    expect(() => tf.tidy(() => cache.append(tf.zeros([2, 2, 1, 4]), tf.zeros([2, 2, 1, 4]), 'MultiHeadAttention'))).toThrow(
      /MultiHeadAttention: cache holds keys \[batch 1, heads 2, ·, headDim 4\]/,
    );
    cache.dispose();
  });

  it('keeps only the key/value heads of grouped-query attention', () => {
    const gqa = new GroupedQueryAttention({ dModel: 16, numHeads: 8, numKeyValueHeads: 2 });
    const cache = new KeyValueCache();
    const x = tf.ones([1, 3, 16]);
    tf.dispose(gqa.forward(x, { cache }));
    expect(cache.keys!.shape).toEqual([1, 2, 3, 2]);
    tf.dispose([x]);
    cache.dispose();
    gqa.dispose();
  });

  it('positions continue from the cache: ALiBi refuses to go past maxSeqLength', () => {
    const alibi = new ALiBiAttention({ hiddenSize: 8, numHeads: 2, maxSeqLength: 4 });
    const cache = new KeyValueCache();
    const x = tf.ones([1, 3, 8]);
    tf.dispose(alibi.forward(x, { cache, causal: true }));
    expect(() => alibi.forward(x, { cache, causal: true })).toThrow('ALiBiAttention: positions up to 6 (cache 3 + sequence 3) exceed maxSeqLength 4.');
    tf.dispose(x);
    cache.dispose();
    alibi.dispose();
  });
});

describe('projected cross-attention keys and values', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each([false, true])('computed once, they give the same output as projecting every step (rotary: %s)', (useRotaryEmbeddings) => {
    const before = tf.memory().numTensors;
    const mha = new MultiHeadAttention({ inputDim: 8, numHeads: 2, useRotaryEmbeddings, maxSeqLength: 16 }).eval();
    const memory = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 4);
    const queries = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 5);
    const padding = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]);
    const [expected, expectedWeights] = mha.forward(queries, memory, memory, { keyPaddingMask: padding });
    const projected = mha.projectKeyValue(memory, memory);
    const [actual, actualWeights] = mha.forward(queries, memory, memory, { keyPaddingMask: padding, projectedKeyValue: projected });
    expect(maxAbsDiff(actual, expected)).toBeLessThan(1e-6);
    expect(maxAbsDiff(actualWeights, expectedWeights)).toBeLessThan(1e-6);
    expect(() => mha.forward(queries, memory, memory, { projectedKeyValue: projected, cache: new KeyValueCache() })).toThrow(/not both/);
    tf.dispose([memory, queries, padding, expected, expectedWeights, projected.keys, projected.values, actual, actualWeights]);
    mha.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
