import { MieConfigError, MieShapeError, setBackend, tf } from '@mie/core';
import { crossEntropyLoss, type LossReduction } from './cross-entropy-loss';
import { FIXTURE_BACKENDS, expectClose, loadFixture, toTensor } from './__tests__/fixtures';

// Produced by scripts/fixtures/training.py with torch.nn.functional.cross_entropy.
const fixture = loadFixture().crossEntropy;

describe.each(FIXTURE_BACKENDS)('crossEntropyLoss on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  const table: Array<[number, number, number, string]> = fixture.cases.map(
    (c: { ignoreIndex: number; labelSmoothing: number; reduction: string }, i: number) => [i, c.ignoreIndex, c.labelSmoothing, c.reduction],
  );
  it.each(table)(
    'matches PyTorch: case %i (ignore %i, smoothing %f, %s), loss and gradient',
    (i) => {
      const c = fixture.cases[i];
      const before = tf.memory().numTensors;
      const logits = toTensor(c.logits ?? fixture.logits);
      const targets = toTensor(c.targets, 'int32');
      const lossWeights = toTensor(c.lossWeights);
      const options = { ignoreIndex: c.ignoreIndex, labelSmoothing: c.labelSmoothing, reduction: c.reduction as LossReduction };
      const loss = crossEntropyLoss(logits, targets, options);
      expectClose(loss, c.loss, 'loss');
      const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(crossEntropyLoss(x, targets, options), lossWeights)))(logits);
      expectClose(grad, c.grad, 'gradient');
      tf.dispose([logits, targets, lossWeights, loss, grad]);
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});

describe('crossEntropyLoss', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('rejects a target out of range, naming it, but accepts ignoreIndex', () => {
    const logits = tf.zeros([2, 3]);
    expect(() => crossEntropyLoss(logits, tf.tensor1d([0, 3], 'int32'))).toThrow(MieShapeError);
    expect(() => crossEntropyLoss(logits, tf.tensor1d([0, 3], 'int32'))).toThrow(/Received: 3 at flat position 1/);
    expect(() => crossEntropyLoss(logits, tf.tensor1d([-1, 0], 'int32'))).toThrow(MieShapeError);
    const loss = crossEntropyLoss(logits, tf.tensor1d([-100, 2], 'int32'));
    expect(loss.dataSync()[0]).toBeCloseTo(Math.log(3), 6);
  });

  it('checks shapes, dtypes and options', () => {
    const logits = tf.zeros([2, 3]);
    expect(() => crossEntropyLoss(logits, tf.tensor1d([0, 1, 2], 'int32'))).toThrow(/targets must have shape \[2\]/);
    expect(() => crossEntropyLoss(logits, tf.tensor1d([0, 1], 'float32'))).toThrow(/int32/);
    expect(() => crossEntropyLoss(logits, tf.tensor1d([0, 1], 'int32'), { labelSmoothing: 1.5 })).toThrow(MieConfigError);
    expect(() => crossEntropyLoss(logits, tf.tensor1d([0, 1], 'int32'), { reduction: 'avg' as never })).toThrow(MieConfigError);
  });

  it('is stable for huge logits and gives NaN, like PyTorch, when every target is ignored', () => {
    const loss = crossEntropyLoss(tf.tensor2d([[1e4, -1e4, 0]]), tf.tensor1d([1], 'int32'), { labelSmoothing: 0.1 });
    expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
    expect(loss.dataSync()[0]).toBeCloseTo(0.9 * 2e4 + (0.1 / 3) * (0 + 2e4 + 1e4), 0);
    expect(crossEntropyLoss(tf.zeros([2, 3]), tf.tensor1d([-100, -100], 'int32')).dataSync()[0]).toBeNaN();
  });
});
