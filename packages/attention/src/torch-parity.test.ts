import { setBackend, tf } from '@mie/core';
import { ALiBiAttention, alibiSlopes } from './alibi-attention';
import { GroupedQueryAttention } from './grouped-query-attention';
import { MultiHeadAttention } from './multi-head-attention';
import { ScaledDotProductAttention } from './scaled-dot-product-attention';
import { fixture, maxDifference, tensor, tensors } from './__tests__/fixture';

const TOLERANCE = 1e-5;

describe.each(['cpu', 'wasm'] as const)('PyTorch parity on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });
  let baseline = 0;
  beforeEach(() => {
    baseline = tf.memory().numTensors;
  });
  afterEach(() => {
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('MultiHeadAttention self-attention with key padding = torch.nn.MultiheadAttention', () => {
    const f = fixture.mhaSelf;
    const mha = new MultiHeadAttention({ inputDim: f.embedDim, numHeads: f.numHeads }).eval();
    const state = tensors(f.torchState);
    mha.loadTorchState(state);
    const x = tensor(f.x);
    const padding = tensor(f.keyPaddingMask);
    const [output, weights] = mha.forward(x, x, x, { keyPaddingMask: padding });
    expect(maxDifference(output, f.output)).toBeLessThan(TOLERANCE);
    expect(maxDifference(weights, f.weights)).toBeLessThan(TOLERANCE);
    tf.dispose([output, weights, x, padding, ...Object.values(state)]);
    mha.dispose();
  });

  it('MultiHeadAttention cross-attention with an explicit mask = torch.nn.MultiheadAttention', () => {
    const f = fixture.mhaCross;
    const mha = new MultiHeadAttention({ inputDim: f.embedDim, numHeads: f.numHeads }).eval();
    const state = tensors(f.torchState);
    mha.loadTorchState(state);
    const [query, memory, mask] = [tensor(f.query), tensor(f.memory), tensor(f.mask)];
    const [output, weights] = mha.forward(query, memory, memory, { mask });
    expect(maxDifference(output, f.output)).toBeLessThan(TOLERANCE);
    expect(maxDifference(weights, f.weights)).toBeLessThan(TOLERANCE);
    tf.dispose([output, weights, query, memory, mask, ...Object.values(state)]);
    mha.dispose();
  });

  it('ScaledDotProductAttention with a causal mask', () => {
    const f = fixture.sdpaCausal;
    const sdpa = new ScaledDotProductAttention({ dropout: 0 });
    const [q, k, v] = [tensor(f.q), tensor(f.k), tensor(f.v)];
    const causal = tf.tidy(() => tf.linalg.bandPart(tf.ones([4, 4]), -1, 0));
    const [context, weights] = sdpa.forward(q, k, v, { mask: causal });
    expect(maxDifference(context, f.context)).toBeLessThan(TOLERANCE);
    expect(maxDifference(weights, f.weights)).toBeLessThan(TOLERANCE);
    tf.dispose([q, k, v, causal, context, weights]);
  });

  it('GroupedQueryAttention = a repeat_interleave reference (causal, key padding)', () => {
    const f = fixture.gqa;
    const gqa = new GroupedQueryAttention({ dModel: f.dModel, numHeads: f.numHeads, numKeyValueHeads: f.numKeyValueHeads }).eval();
    const state = tensors(f.state);
    gqa.loadStateDict(state);
    const [x, padding] = [tensor(f.x), tensor(f.keyPaddingMask)];
    const output = gqa.forward(x, { causal: true, keyPaddingMask: padding });
    expect(maxDifference(output, f.output)).toBeLessThan(TOLERANCE);
    tf.dispose([output, x, padding, ...Object.values(state)]);
    gqa.dispose();
  });

  it.each(['bidirectional', 'causal'])('ALiBiAttention (%s) = the reference', (variant) => {
    const f = fixture.alibi;
    const alibi = new ALiBiAttention({ hiddenSize: f.hiddenSize, numHeads: f.numHeads }).eval();
    const state = tensors(f.state);
    alibi.loadStateDict(state);
    const x = tensor(f.x);
    const output = alibi.forward(x, { causal: variant === 'causal' });
    expect(maxDifference(output, f[variant])).toBeLessThan(TOLERANCE);
    tf.dispose([output, x, ...Object.values(state)]);
    alibi.dispose();
  });
});

it('alibiSlopes follows the paper, also for head counts that are not powers of two', () => {
  for (const [n, slopes] of Object.entries(fixture.alibiSlopes as Record<string, number[]>)) {
    const ours = alibiSlopes(Number(n));
    expect(ours).toHaveLength(slopes.length);
    ours.forEach((slope, i) => expect(slope).toBeCloseTo(slopes[i], 12));
  }
  expect(alibiSlopes(8)).toEqual([1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]);
});
