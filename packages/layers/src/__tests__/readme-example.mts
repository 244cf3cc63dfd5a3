import * as os from 'node:os';
import * as path from 'node:path';
import { setBackend, setSeed, tf } from '@mie/core';
import { FeedForwardClassifier } from '@mie/layers';

await setBackend('cpu');
setSeed(0);
const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [16], numClasses: 3 });
const x = tf.randomNormal([6, 4]);
const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3);
const optimizer = tf.train.adam(0.05);
for (let step = 0; step < 100; step++) {
  optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, model.forward(x)) as tf.Scalar, false, model.trainableParameters());
}
model.predict(x).print(); // [0, 1, 2, 0, 1, 2]: the six labels, learned
const dir = path.join(os.tmpdir(), 'mie-readme-classifier');
await model.save(dir);
const loaded = await FeedForwardClassifier.load(dir);
loaded.predictProba(x).print(); // [6, 3] class probabilities
