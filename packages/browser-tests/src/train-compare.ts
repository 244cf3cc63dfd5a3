/**
 * `node dist/train-compare.js <backend> <steps> <out.json>`: trains a small encoder-decoder to
 * reverse digit strings with the Trainer (AdamW, dropout, gradient clipping) and writes the loss
 * of every step. Run once on cpu and once on webgpu, the two runs must reach the same loss.
 */
import { writeFileSync } from 'node:fs';
import { setBackend, setSeed, tf } from '@mie/core';
import { EncoderDecoderTransformer } from '@mie/transformer';
import { AdamW, ShuffledBatches, Trainer, crossEntropyLoss } from '@mie/training';

const [BOS, EOS, PAD] = [1, 2, 0];
const LENGTH = 6;
const EXAMPLES = 256;

/** Example `i`: random digits (ids 3..12) and the same digits reversed, from a seeded generator. */
function examples(): { src: number[][]; tgt: number[][] } {
  let state = 12_345;
  const next = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const src: number[][] = [];
  const tgt: number[][] = [];
  for (let i = 0; i < EXAMPLES; i++) {
    const digits = Array.from({ length: LENGTH }, () => 3 + Math.floor(next() * 10));
    src.push([...digits, EOS]);
    tgt.push([BOS, ...digits.reverse(), EOS]);
  }
  return { src, tgt };
}

interface Batch {
  src: tf.Tensor;
  tgtIn: tf.Tensor;
  tgtOut: tf.Tensor;
}

async function main(): Promise<void> {
  const [backend, steps, out] = process.argv.slice(2);
  const device = await setBackend(backend as 'cpu' | 'webgpu');
  setSeed(7);
  const model = new EncoderDecoderTransformer({
    srcVocabSize: 13, tgtVocabSize: 13, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, dropout: 0.1, padTokenId: PAD,
  });
  const { src, tgt } = examples();
  const data = new ShuffledBatches<Batch>({
    size: EXAMPLES,
    batchSize: 16,
    seed: 3,
    makeBatch: (indices) => ({
      src: tf.tensor2d(indices.map((i) => src[i]), undefined, 'int32'),
      tgtIn: tf.tensor2d(indices.map((i) => tgt[i].slice(0, -1)), undefined, 'int32'),
      tgtOut: tf.tensor2d(indices.map((i) => tgt[i].slice(1)), undefined, 'int32'),
    }),
  });
  const trainer = new Trainer({
    model,
    data,
    loss: (m, batch) => crossEntropyLoss(m.forward(batch.src, batch.tgtIn), batch.tgtOut, { ignoreIndex: PAD }),
    optimizer: new AdamW(model, { lr: 3e-3 }),
    maxSteps: Number(steps),
    clipGradNorm: 1,
    seed: 11,
    progress: 'none',
  });
  const started = performance.now();
  const before = tf.memory().numTensors;
  const optimizer = trainer.optimizer;
  const result = await trainer.fit();
  const seconds = (performance.now() - started) / 1000;
  model.eval();
  const probe = tf.tensor2d([src[0], src[1]], undefined, 'int32');
  const { sequences } = await model.generate(probe, { maxNewTokens: LENGTH + 1, bosTokenId: BOS, eosTokenId: EOS });
  probe.dispose();
  optimizer.dispose(); // its moments are the only tensors fit may leave
  const leaked = tf.memory().numTensors - before;
  writeFileSync(out, JSON.stringify({
    device,
    seconds,
    losses: result.history.map((record) => record.loss),
    gradNorms: result.history.map((record) => record.gradNorm),
    generated: sequences,
    expected: [tgt[0].slice(1), tgt[1].slice(1)],
    leaked,
  }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error)?.stack ?? error}\n`);
    process.exit(1);
  },
);
