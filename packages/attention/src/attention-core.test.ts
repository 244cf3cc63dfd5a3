/**
 * The one attention core: MultiHeadAttention with grouped key/value heads, rotary and ALiBi
 * positions, and an extra bias, checked against the design's named classes (GroupedQueryAttention,
 * ALiBiAttention) with the same weights, and cached decoding against the full pass.
 */
import { MieConfigError, MieShapeError, setBackend, setSeed, tf } from '@mie/core';
import { ALiBiAttention } from './alibi-attention';
import { alibiBias } from './attention-core';
import { GroupedQueryAttention } from './grouped-query-attention';
import { KeyValueCache } from './kv-cache';
import { MultiHeadAttention } from './multi-head-attention';

beforeAll(async () => {
  await setBackend('cpu');
  setSeed(7);
});

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Copies the four projections of `from` into `to` (same names, same shapes). */
function copyWeights(from: { stateDict(): Record<string, tf.Tensor> }, to: { loadStateDict(s: Record<string, tf.Tensor>): unknown }): void {
  to.loadStateDict(from.stateDict());
}

/** Runs `module` causally one token at a time with a cache; returns the outputs concatenated. */
function stepwise(call: (x: tf.Tensor, cache: KeyValueCache) => tf.Tensor, x: tf.Tensor): tf.Tensor {
  const cache = new KeyValueCache();
  const steps: tf.Tensor[] = [];
  for (let t = 0; t < (x.shape[1] as number); t++) {
    const step = tf.slice(x, [0, t, 0], [-1, 1, -1]);
    steps.push(call(step, cache));
    step.dispose();
  }
  const out = tf.concat(steps, 1);
  tf.dispose(steps);
  cache.dispose();
  return out;
}

describe('MultiHeadAttention as the attention core', () => {
  it('with numKeyValueHeads equals GroupedQueryAttention with the same weights', () => {
    const before = tf.memory().numTensors;
    const mha = new MultiHeadAttention({ inputDim: 16, numHeads: 4, numKeyValueHeads: 2, dropout: 0 }).eval();
    const gqa = new GroupedQueryAttention({ dModel: 16, numHeads: 4, numKeyValueHeads: 2, dropout: 0 }).eval();
    expect(mha.kProj.weight.shape).toEqual([8, 16]);
    copyWeights(mha, gqa);
    const x = tf.randomNormal([2, 5, 16]);
    const padding = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]);
    const [out, weights] = mha.forward(x, x, x, { keyPaddingMask: padding, causal: true });
    const reference = gqa.forward(x, { keyPaddingMask: padding, causal: true });
    expect(maxDiff(out, reference)).toBeLessThan(1e-6);
    expect(weights.shape).toEqual([2, 4, 5, 5]);
    const w = weights.arraySync() as number[][][][];
    expect(w[1][2][4].slice(3)).toEqual([0, 0]); // padded keys get no weight
    expect(w[0][1][0]).toEqual([1, 0, 0, 0, 0]); // causal: the first query sees only itself
    tf.dispose([x, padding, out, weights, reference]);
    mha.dispose();
    gqa.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("with positionalEncoding 'alibi' equals ALiBiAttention, and an explicit bias equals the built-in one", () => {
    const mha = new MultiHeadAttention({ inputDim: 12, numHeads: 3, positionalEncoding: 'alibi', dropout: 0 }).eval();
    const plain = new MultiHeadAttention({ inputDim: 12, numHeads: 3, dropout: 0 }).eval();
    const alibi = new ALiBiAttention({ hiddenSize: 12, numHeads: 3, dropout: 0 }).eval();
    copyWeights(mha, alibi);
    copyWeights(mha, plain);
    const x = tf.randomNormal([2, 6, 12]);
    const [out, w] = mha.forward(x, x, x, { causal: true });
    const reference = alibi.forward(x, { causal: true });
    expect(maxDiff(out, reference)).toBeLessThan(1e-6);
    const bias = alibiBias(alibi.slopes, 6, 6, 0);
    const [biased, w2] = plain.forward(x, x, x, { causal: true, bias });
    expect(maxDiff(biased, reference)).toBeLessThan(1e-6);
    const [unbiased, w3] = plain.forward(x, x, x, { causal: true });
    expect(maxDiff(unbiased, reference)).toBeGreaterThan(1e-3); // the bias matters
    tf.dispose([x, out, w, reference, bias, biased, w2, unbiased, w3]);
    for (const m of [mha, plain, alibi]) m.dispose();
  });

  it.each([
    ['rotary, 2 key/value heads', { numKeyValueHeads: 2, positionalEncoding: 'rotary' as const }],
    ['alibi, multi-query', { numKeyValueHeads: 1, positionalEncoding: 'alibi' as const }],
    ['none, 4 heads', {}],
  ])('cached causal decoding equals the full pass (%s)', (_label, options) => {
    const mha = new MultiHeadAttention({ inputDim: 16, numHeads: 4, dropout: 0, ...options }).eval();
    const x = tf.randomNormal([2, 7, 16]);
    const before = tf.memory().numTensors;
    const [full, w] = mha.forward(x, x, x, { causal: true });
    const cached = stepwise((step, cache) => {
      const [o, weights] = mha.forward(step, step, step, { causal: true, cache });
      weights.dispose();
      return o;
    }, x);
    expect(maxDiff(cached, full)).toBeLessThan(1e-5);
    tf.dispose([full, w, cached]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    mha.dispose();
  });

  it('projects cross-attention keys and values once into the key/value heads', () => {
    const mha = new MultiHeadAttention({ inputDim: 8, numHeads: 4, numKeyValueHeads: 2, dropout: 0 }).eval();
    const q = tf.randomNormal([1, 3, 8]);
    const memory = tf.randomNormal([1, 5, 8]);
    const projected = mha.projectKeyValue(memory, memory);
    expect(projected.keys.shape).toEqual([1, 2, 5, 2]); // [batch, kvHeads, keys, headDim]
    const [direct, w1] = mha.forward(q, memory, memory);
    const [viaProjection, w2] = mha.forward(q, memory, memory, { projectedKeyValue: projected });
    expect(maxDiff(direct, viaProjection)).toBeLessThan(1e-6);
    tf.dispose([q, memory, projected.keys, projected.values, direct, w1, w2, viaProjection]);
    mha.dispose();
  });

  it('trains: gradients reach every projection with grouped heads and ALiBi', () => {
    const mha = new MultiHeadAttention({ inputDim: 8, numHeads: 4, numKeyValueHeads: 2, positionalEncoding: 'alibi', dropout: 0 });
    const x = tf.randomNormal([2, 4, 8]);
    const { grads, value } = tf.variableGrads(() => {
      const [out, w] = mha.forward(x, x, x, { causal: true });
      w.dispose();
      return tf.sum(tf.square(out)) as tf.Scalar;
    }, mha.trainableParameters());
    expect(Object.keys(grads)).toHaveLength(8);
    for (const grad of Object.values(grads)) expect(tf.max(tf.abs(grad)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([x, value, ...Object.values(grads)]);
    mha.dispose();
  });

  it('refuses contradictory or impossible head and position options, naming them', () => {
    expect(() => new MultiHeadAttention({ inputDim: 16, numHeads: 4, numKeyValueHeads: 3 })).toThrow(/MultiHeadAttention: option "numHeads" must be divisible by numKeyValueHeads \(3\)/);
    expect(() => new MultiHeadAttention({ inputDim: 16, numHeads: 4, useRotaryEmbeddings: true, positionalEncoding: 'alibi' })).toThrow(MieConfigError);
    expect(() => new MultiHeadAttention({ inputDim: 16, numHeads: 4, positionalEncoding: 'sinusoidal' as never })).toThrow(/option "positionalEncoding" must be one of "none", "rotary", "alibi"/);
    const gqa = new MultiHeadAttention({ inputDim: 8, numHeads: 4, numKeyValueHeads: 2 });
    expect(() => gqa.loadTorchState({})).toThrow(/no grouped key\/value heads/);
    const x = tf.zeros([1, 2, 8]);
    const badBias = tf.zeros([1, 3, 2, 2]);
    expect(() => gqa.forward(x, x, x, { bias: badBias })).toThrow(MieShapeError);
    expect(() => gqa.forward(x, x, x, { bias: badBias })).toThrow(/option "bias" must be a float32 tensor broadcastable to the scores \[1, 4, 2, 2\]/);
    tf.dispose([x, badBias]);
    gqa.dispose();
  });
});
