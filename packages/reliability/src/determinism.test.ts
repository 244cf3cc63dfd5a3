/**
 * Determinism: the same seed on the same backend gives bit-identical weights after training; the
 * cpu and wasm backends agree within a tolerance.
 */
import { setBackend, setSeed, tf } from '@mie/core';
import { AdamW, Trainer, crossEntropyLoss } from '@mie/training';
import { EncoderDecoderTransformer, TransformerEncoderLayer } from '@mie/transformer';

async function train(backend: 'cpu' | 'wasm', seed: number): Promise<{ weights: Float32Array[]; losses: number[] }> {
  await setBackend(backend);
  setSeed(seed);
  const model = new EncoderDecoderTransformer({ srcVocabSize: 10, tgtVocabSize: 10, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, maxSeqLength: 8, dropout: 0.1 });
  const batches = Array.from({ length: 4 }, (_, i) => {
    const src = tf.tidy(() => tf.cast(tf.randomUniform([4, 6], 1, 10, 'float32', 100 + i), 'int32'));
    return { src, tgtIn: tf.slice(src, [0, 0], [4, 5]), tgtOut: tf.slice(src, [0, 1], [4, 5]) };
  });
  const trainer = new Trainer({
    model,
    data: () => batches,
    loss: (m, b) => crossEntropyLoss(m.forward(b.src, b.tgtIn), b.tgtOut),
    optimizer: new AdamW(model, { lr: 3e-3 }),
    maxSteps: 30,
    seed,
    progress: 'none',
    disposeBatches: false,
  });
  const { history } = await trainer.fit();
  const weights = model.parameters().map((v) => v.dataSync().slice() as Float32Array);
  model.dispose();
  tf.dispose(batches.flatMap((b) => [b.src, b.tgtIn, b.tgtOut]));
  return { weights, losses: history.map((r) => r.loss) };
}

afterAll(async () => {
  await setBackend('cpu');
});

it('the same seed on the same backend gives identical weights and losses (with dropout)', async () => {
  const a = await train('cpu', 3);
  const b = await train('cpu', 3);
  expect(b.losses).toEqual(a.losses);
  expect(b.weights).toEqual(a.weights);
  const c = await train('cpu', 4);
  expect(c.weights).not.toEqual(a.weights);
}, 60_000);

it('cpu and wasm agree within tolerance after training, and wasm is deterministic too', async () => {
  const cpu = await train('cpu', 5);
  const wasm = await train('wasm', 5);
  const again = await train('wasm', 5);
  expect(again.weights).toEqual(wasm.weights);
  cpu.losses.forEach((loss, i) => expect(Math.abs(loss - wasm.losses[i])).toBeLessThan(1e-3));
  let worst = 0;
  cpu.weights.forEach((w, i) => w.forEach((value, j) => (worst = Math.max(worst, Math.abs(value - wasm.weights[i][j])))));
  // AdamW divides by sqrt(v) + eps: on near-zero gradients it magnifies float rounding differences
  // between the backends' kernels, so weights agree less tightly than losses.
  expect(worst).toBeLessThan(2e-2);
}, 60_000);

it('an encoder layer forward in eval mode agrees across cpu and wasm', async () => {
  const outputs: Float32Array[] = [];
  for (const backend of ['cpu', 'wasm'] as const) {
    await setBackend(backend);
    setSeed(9);
    const layer = new TransformerEncoderLayer({ dModel: 16, numHeads: 4, dFf: 32 }).eval();
    const x = tf.randomNormal([2, 5, 16], 0, 1, 'float32', 1);
    const y = layer.forward(x);
    outputs.push(y.dataSync().slice() as Float32Array);
    tf.dispose([x, y]);
    layer.dispose();
  }
  outputs[0].forEach((value, i) => expect(Math.abs(value - outputs[1][i])).toBeLessThan(1e-4));
});
