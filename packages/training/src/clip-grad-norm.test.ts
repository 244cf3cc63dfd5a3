import { MieConfigError, setBackend, tf } from '@mie/core';
import { clipGradNorm } from './clip-grad-norm';
import { FIXTURE_BACKENDS, expectClose, loadFixture, toTensor, type EncodedTensor } from './__tests__/fixtures';

// Produced by scripts/fixtures/training.py with torch.nn.utils.clip_grad_norm_.
const fixture = loadFixture().clipGradNorm as Array<{ maxNorm: number; totalNorm: number; grads: Record<string, EncodedTensor>; clipped: Record<string, EncodedTensor> }>;

describe.each(FIXTURE_BACKENDS)('clipGradNorm on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each([0, 1, 2])('matches clip_grad_norm_ (case %i) without leaking', (i) => {
    const c = fixture[i];
    const before = tf.memory().numTensors;
    const grads = Object.fromEntries(Object.entries(c.grads).map(([name, g]) => [name, toTensor(g)]));
    const { grads: clipped, totalNorm } = clipGradNorm(grads, c.maxNorm);
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
  });
});
