/**
 * `node dist/node-gpu-paths.js <out.json>` on webgpu in Node: what MIE does where tensors live on
 * the GPU and cannot be read back synchronously. Writes what happened; the test asserts on it.
 * tfjs-backend-webgpu runs small ops on host data on the CPU (WEBGPU_CPU_FORWARD); that is turned
 * off so that computed tensors really are GPU-only.
 */
import { writeFileSync } from 'node:fs';
import { enableFiniteChecks, hostValues, setBackend, synchronousReadsAvailable, tf } from '@mie/core';
import { fromAdditiveMask } from '@mie/attention';
import { TokenEmbedding } from '@mie/embeddings';
import { FeedForwardNN } from '@mie/layers';
import { clipGradNorm, clipGradNormAsync, crossEntropyLoss } from '@mie/training';

type Outcome = { ok: true; value?: unknown } | { ok: false; name: string; message: string };

async function attempt(work: () => unknown): Promise<Outcome> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, name: (error as Error).name, message: (error as Error).message };
  }
}

/** A GPU-only copy of `values`: the output of an op, never on the host. */
function onGpu(values: number[][], dtype: 'int32' | 'float32'): tf.Tensor {
  return tf.tidy(() => tf.add(tf.tensor2d(values, undefined, dtype), tf.zeros([values.length, values[0].length], dtype)));
}

async function main(): Promise<void> {
  const out = process.argv[2];
  const device = await setBackend('webgpu');
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const before = tf.memory().numTensors;
  const report: Record<string, unknown> = { device, synchronousReads: synchronousReadsAvailable() };
  const embedding = new TokenEmbedding({ vocabSize: 9, dModel: 4 });

  const hostIds = tf.tensor2d([[0, 9]], undefined, 'int32');
  report.hostIdsOnHost = hostValues(hostIds) !== null;
  report.hostIdsOutOfRange = await attempt(() => embedding.forward(hostIds));
  hostIds.dispose();

  const gpuIds = onGpu([[1, 2], [9, -1]], 'int32');
  report.gpuIdsOnHost = hostValues(gpuIds) !== null;
  const rows = embedding.forward(gpuIds);
  const values = Array.from(await rows.data());
  report.gpuIdRows = [0, 1, 2, 3].map((row) => values.slice(row * 4, row * 4 + 4));
  const inRangeIds = tf.tensor2d([[1, 2]], undefined, 'int32');
  const expected = embedding.forward(inRangeIds);
  report.gpuIdExpected = Array.from(await expected.data());
  tf.dispose([gpuIds, rows, inRangeIds, expected]);

  const logits = tf.tensor2d([[2, 1, 0], [0, 1, 2]]);
  const hostTargets = tf.tensor1d([0, 3], 'int32');
  report.hostTargetsOutOfRange = await attempt(() => crossEntropyLoss(logits, hostTargets));
  const gpuTargets = tf.tidy(() => tf.add(tf.tensor1d([0, 3], 'int32'), tf.zeros([2], 'int32')));
  const gpuLoss = crossEntropyLoss(logits, gpuTargets, { reduction: 'none' });
  report.gpuTargetLosses = Array.from(await gpuLoss.data());
  const inRange = tf.tidy(() => tf.add(tf.tensor1d([0, 2], 'int32'), tf.zeros([2], 'int32')));
  const inRangeLoss = crossEntropyLoss(logits, inRange);
  const hostInRange = tf.tensor1d([0, 2], 'int32');
  const hostLoss = crossEntropyLoss(logits, hostInRange);
  report.inRangeLosses = [(await inRangeLoss.data())[0], (await hostLoss.data())[0]];
  tf.dispose([logits, hostTargets, gpuTargets, gpuLoss, inRange, inRangeLoss, hostInRange, hostLoss]);

  const model = new FeedForwardNN({ inputSize: 3, hiddenSizes: [4], outputSize: 2 });
  // After an update the weights exist only on the GPU.
  for (const variable of model.parameters()) tf.tidy(() => variable.assign(tf.mul(variable, 1.5)));
  report.toBuffers = await attempt(() => model.toBuffers());
  report.toBuffersAsync = await attempt(async () => (await model.toBuffersAsync()).weights.length);

  const grads = { a: onGpu([[3, 4]], 'float32'), b: onGpu([[12]], 'float32') };
  report.clipGradNorm = await attempt(() => clipGradNorm(grads, 1));
  const clipped = await clipGradNormAsync(grads, 1);
  report.clipGradNormAsync = { totalNorm: clipped.totalNorm, a: Array.from(await clipped.grads.a.data()) };
  tf.dispose([...Object.values(grads), ...Object.values(clipped.grads)]);

  const hostMask = tf.tensor2d([[0, -Infinity]]);
  report.hostAdditiveMask = await attempt(async () => {
    const allowed = fromAdditiveMask(hostMask);
    const data = Array.from(await allowed.data());
    allowed.dispose();
    return data;
  });
  const gpuMask = onGpu([[0, -1e9]], 'float32');
  report.gpuAdditiveMask = await attempt(() => fromAdditiveMask(gpuMask));
  tf.dispose([hostMask, gpuMask]);

  report.finiteChecks = await attempt(() => enableFiniteChecks(model));
  model.dispose();
  embedding.dispose();
  report.leakedTensors = tf.memory().numTensors - before;
  writeFileSync(out, JSON.stringify(report));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error)?.stack ?? error}\n`);
    process.exit(1);
  },
);
