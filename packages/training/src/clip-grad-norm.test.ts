import { MieConfigError, setBackend, tf } from '@mie/core';
import { clipGradNorm, clipGradNormAsync, type ClippedGradients } from './clip-grad-norm';
import { FIXTURE_BACKENDS, expectClose, loadFixture, toTensor, type EncodedTensor } from './__tests__/fixtures';

// Produced by scripts/fixtures/training.py with torch.nn.utils.clip_grad_norm_.
const fixture = loadFixture().clipGradNorm as Array<{ maxNorm: number; totalNorm: number; grads: Record<string, EncodedTensor>; clipped: Record<string, EncodedTensor> }>;

describe.each(FIXTURE_BACKENDS)('clipGradNorm on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  const clippers: Array<[string, (grads: Record<string, tf.Tensor>, maxNorm: number) => Promise<ClippedGradients>]> = [
    ['clipGradNorm', async (grads, maxNorm) => clipGradNorm(grads, maxNorm)],
    ['clipGradNormAsync', clipGradNormAsync],
  ];
  it.each(clippers.flatMap(([name, clip]) => [0, 1, 2].map((i) => [name, i, clip] as const)))('%s matches clip_grad_norm_ (case %i) without leaking', async (_name, i, clip) => {
    const c = fixture[i];
    const before = tf.memory().numTensors;
    const grads = Object.fromEntries(Object.entries(c.grads).map(([name, g]) => [name, toTensor(g)]));
    const { grads: clipped, totalNorm } = await clip(grads, c.maxNorm);
    expect(Math.abs(totalNorm - c.totalNorm)).toBeLessThanOrEqual(1e-5 * (1 + c.totalNorm));
    for (const name of Object.keys(c.clipped)) expectClose(clipped[name], c.clipped[name], name);
    expect(grads.a.isDisposed).toBe(false);
    tf.dispose([...Object.values(grads), ...Object.values(clipped)]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('clipGradNorm', () => {
  it('handles no gradients and rejects a bad maxNorm', () => {
    expect(clipGradNorm({}, 1)).toEqual({ grads: {}, totalNorm: 0 });
    expect(() => clipGradNorm({}, 0)).toThrow(MieConfigError);
    return expect(clipGradNormAsync({}, Number.NaN)).rejects.toThrow(/^clipGradNormAsync: maxNorm must be a number > 0/);
  });

  it('sums the norms of many gradients (more than a WebGPU shader has buffers)', async () => {
    // 101 gradients of one value each, k = 1..101: total norm sqrt(sum k^2).
    const grads = Object.fromEntries(Array.from({ length: 101 }, (_, k) => [`g${k}`, tf.tensor1d([k + 1])]));
    const expected = Math.sqrt(Array.from({ length: 101 }, (_, k) => (k + 1) ** 2).reduce((a, b) => a + b, 0));
    const before = tf.memory().numTensors;
    const { grads: clipped, totalNorm } = await clipGradNormAsync(grads, 1);
    expect(totalNorm).toBeCloseTo(expected, 2);
    expect(clipped.g100.dataSync()[0]).toBeCloseTo(101 / (expected + 1e-6), 6);
    tf.dispose(Object.values(clipped));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(grads));
  });
});
