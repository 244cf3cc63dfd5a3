import { setBackend, setSeed, tf } from '@mie/core';
import { FeedForwardClassifier } from '@mie/layers';
import { crossEntropyLoss } from './cross-entropy-loss';
import { GradientAccumulator } from './gradient-accumulator';
import { valueAndGradients } from './gradients';

describe('GradientAccumulator', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('averaged over equal micro-batches equals the gradient of one big batch, without leaks', () => {
    setSeed(3);
    const model = new FeedForwardClassifier({ inputSize: 5, hiddenSizes: [8], numClasses: 3 });
    const x = tf.randomNormal([12, 5], 0, 1, 'float32', 1);
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2, 2, 1, 0, 0, 1, 2], 'int32');
    const before = tf.memory().numTensors;
    const big = valueAndGradients(model, () => crossEntropyLoss(model.forward(x), y));
    const accumulator = new GradientAccumulator();
    for (let start = 0; start < 12; start += 4) {
      const { value, grads } = valueAndGradients(model, () =>
        crossEntropyLoss(model.forward(tf.slice(x, [start, 0], [4, -1])), tf.slice(y, [start], [4])),
      );
      accumulator.add(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(accumulator.count).toBe(3);
    const averaged = accumulator.average();
    expect(Object.keys(averaged).sort()).toEqual(Object.keys(big.grads).sort());
    for (const [name, grad] of Object.entries(big.grads)) {
      const expected = grad.dataSync();
      averaged[name].dataSync().forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(1e-6));
    }
    accumulator.dispose();
    expect(accumulator.count).toBe(0);
    tf.dispose([big.value, ...Object.values(big.grads), ...Object.values(averaged)]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('rejects a gradient whose shape changed', () => {
    const accumulator = new GradientAccumulator();
    accumulator.add({ w: tf.ones([2]) });
    expect(() => accumulator.add({ w: tf.ones([3]) })).toThrow(/"w" has shape \[3\]/);
    accumulator.dispose();
  });

  it('averages one micro-batch without a division (values unchanged, new tensors)', async () => {
    const accumulator = new GradientAccumulator();
    const grad = tf.tensor1d([1.5, -2, 3e-8]);
    accumulator.add({ a: grad });
    const profile = await tf.profile(() => tf.dispose(Object.values(accumulator.average())));
    expect(profile.kernelNames).not.toContain('RealDiv');
    const { a } = accumulator.average();
    expect(a).not.toBe(grad);
    expect(Array.from(a.dataSync())).toEqual(Array.from(grad.dataSync()));
    accumulator.dispose();
    expect(a.isDisposed).toBe(false);
    tf.dispose([a, grad]);
  });
});
