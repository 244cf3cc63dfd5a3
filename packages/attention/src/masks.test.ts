import { MieShapeError, setBackend, tf } from '@mie/core';
import { buildAttentionMask, causalMask, fromAdditiveMask, fromTorchBoolMask } from './masks';
import { MultiHeadAttention } from './multi-head-attention';
import { ScaledDotProductAttention } from './scaled-dot-product-attention';
import { GroupedQueryAttention } from './grouped-query-attention';

describe.each(['cpu', 'wasm'] as const)('masks on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it('a query row with nothing to attend to gets zero weights, a finite output and finite gradients', () => {
    const before = tf.memory().numTensors;
    const mha = new MultiHeadAttention({ inputDim: 8, numHeads: 2, dropout: 0 });
    const x = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 1);
    const padding = tf.tensor2d([[1, 1, 1], [0, 0, 0]]); // the second sequence is all padding
    const [output, weights] = mha.forward(x, x, x, { keyPaddingMask: padding });
    expect(output.dataSync().every(Number.isFinite)).toBe(true);
    const w = weights.arraySync() as number[][][][];
    expect(w[1].flat(2).every((v) => v === 0)).toBe(true);
    expect(Math.abs(w[0][0][0].reduce((a, b) => a + b) - 1)).toBeLessThan(1e-6);
    const { value, grads } = tf.variableGrads(() => tf.sum(mha.forward(x, x, x, { keyPaddingMask: padding })[0]) as tf.Scalar, mha.trainableParameters());
    for (const grad of Object.values(grads)) expect(grad.dataSync().every(Number.isFinite)).toBe(true);
    const inputGrad = tf.grad((input: tf.Tensor) => tf.sum(mha.forward(input, input, input, { keyPaddingMask: padding })[0]))(x);
    expect(inputGrad.dataSync().every(Number.isFinite)).toBe(true);
    tf.dispose([x, padding, output, weights, value, inputGrad, ...Object.values(grads)]);
    mha.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the causal mask is aligned to the end of the keys', () => {
    const mask = causalMask(2, 5);
    expect(mask.shape).toEqual([1, 1, 2, 5]);
    expect(mask.dtype).toBe('bool');
    expect(mask.arraySync()).toEqual([[[[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]]]); // bool reads back as 1/0
    mask.dispose();
    // Every small shape, both dtypes, against the definition j <= i + (k - q).
    for (let q = 1; q <= 5; q++) {
      const empty = causalMask(q, 0);
      expect(empty.shape).toEqual([1, 1, q, 0]); // no keys (an empty tensor reads back as [])
      empty.dispose();
      for (let k = 1; k <= 6; k++) {
        const expected = Array.from({ length: q }, (_, i) => Array.from({ length: k }, (_, j) => (j <= i + (k - q) ? 1 : 0)));
        for (const dtype of ['bool', 'float32'] as const) {
          const m = causalMask(q, k, dtype);
          expect([m.dtype, m.shape, m.arraySync()]).toEqual([dtype, [1, 1, q, k], [[expected]]]);
          m.dispose();
        }
      }
    }
  });

  it('a single query (a cached decoding step) sees every key: no causal mask is built', () => {
    const none = buildAttentionMask('Test', { causal: true }, { batch: 2, heads: 1, queryLength: 1, keyLength: 7 });
    expect(none).toBeNull();
    const padding = tf.tensor2d([[1, 1, 0]]);
    const merged = buildAttentionMask('Test', { causal: true, keyPaddingMask: padding }, { batch: 1, heads: 1, queryLength: 1, keyLength: 3 })!;
    expect(merged.arraySync()).toEqual([[[[1, 1, 0]]]]);
    const two = buildAttentionMask('Test', { causal: true }, { batch: 1, heads: 1, queryLength: 2, keyLength: 3 })!;
    expect(two.arraySync()).toEqual([[[[1, 1, 0], [1, 1, 1]]]]);
    tf.dispose([padding, merged, two]);
  });

  it('merges mask, keyPaddingMask and causal (logical and)', () => {
    const sdpaLike = new MultiHeadAttention({ inputDim: 4, numHeads: 1, dropout: 0 });
    const x = tf.randomNormal([1, 3, 4], 0, 1, 'float32', 2);
    const mask = tf.tensor2d([[1, 1, 0], [1, 1, 1], [0, 1, 1]], [3, 3], 'bool');
    const padding = tf.tensor2d([[1, 1, 0]]);
    const [out, weights] = sdpaLike.forward(x, x, x, { mask, keyPaddingMask: padding, causal: true });
    const blocked = (weights.arraySync() as number[][][][])[0][0].map((row) => row.map((v) => v === 0));
    expect(blocked).toEqual([
      [false, true, true],
      [false, false, true],
      [true, false, true],
    ]);
    tf.dispose([x, mask, padding, out, weights]);
    sdpaLike.dispose();
  });
});

describe('mask validation and conversion', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('rejects masks of the wrong shape with a MieShapeError naming the module and argument', () => {
    const mha = new MultiHeadAttention({ inputDim: 4, numHeads: 2 });
    const x = tf.zeros([2, 3, 4]);
    const badMask = tf.ones([3, 4]);
    const badPadding = tf.ones([2, 4]);
    expect(() => mha.forward(x, x, x, { mask: badMask })).toThrow(MieShapeError);
    expect(() => mha.forward(x, x, x, { mask: badMask })).toThrow(
      'MultiHeadAttention: mask of shape [3, 4] does not broadcast to [batch 2, heads 2, queries 3, keys 3].',
    );
    expect(() => mha.forward(x, x, x, { keyPaddingMask: badPadding })).toThrow(
      'MultiHeadAttention: keyPaddingMask must be [batch 2, keys 3] (1 = real token). Received: tensor float32[2, 4].',
    );
    const gqa = new GroupedQueryAttention({ dModel: 4, numHeads: 2, numKeyValueHeads: 1 });
    expect(() => gqa.forward(x, { mask: badMask })).toThrow(/^GroupedQueryAttention: mask of shape/);
    const sdpa = new ScaledDotProductAttention();
    expect(() => sdpa.forward(x, x, x, { mask: badMask })).toThrow(/ScaledDotProductAttention: mask must broadcast to the scores \[2, 3, 3\]/);
    tf.dispose([x, badMask, badPadding]);
    mha.dispose();
    gqa.dispose();
  });

  it('converts PyTorch masks to MIE polarity', () => {
    const torchBool = tf.tensor2d([[false, true], [false, false]], [2, 2], 'bool'); // True = blocked
    const additive = tf.tensor2d([[0, -Infinity], [-1e9, 0]]);
    const a = fromTorchBoolMask(torchBool);
    const b = fromAdditiveMask(additive);
    expect(a.arraySync()).toEqual([[1, 0], [1, 1]]);
    expect(b.arraySync()).toEqual([[1, 0], [0, 1]]);
    const bias = tf.tensor1d([0, -0.5]);
    expect(() => fromAdditiveMask(bias)).toThrow(/other values are a bias, not a mask/);
    tf.dispose([torchBool, additive, a, b, bias]);
  });
});
