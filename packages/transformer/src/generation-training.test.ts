/**
 * End to end: a small model trained here (teacher forcing, cross entropy, Adam, on wasm) to reverse
 * sequences of 3-5 distinct tokens generates the right outputs for held-out sequences, with greedy and beam
 * search.
 */
import { setBackend, setSeed, tf } from '@mie/core';
import { EncoderDecoderTransformer } from './encoder-decoder-transformer';
import { seededRandom } from './logits-processors';
import { BOS, EOS, PAD, padded } from './__tests__/generation-helpers';

const VOCAB = 10; // PAD 0, BOS 1, EOS 2, symbols 3..9
const SYMBOLS = VOCAB - 3;
const random = seededRandom(2024);

/** 3 to 5 distinct symbols (repeated symbols make the toy task about counting, and slower to learn). */
function randomSequence(): number[] {
  const length = 3 + Math.floor(random() * 3);
  const sequence: number[] = [];
  while (sequence.length < length) {
    const symbol = 3 + Math.floor(random() * SYMBOLS);
    if (!sequence.includes(symbol)) sequence.push(symbol);
  }
  return sequence;
}

/** Masked mean cross entropy of `logits [b, t, V]` against `targets [b, t]` (PAD ignored). */
function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  const logProbs = tf.logSoftmax(logits); // [b, t, V]
  const picked = tf.sum(tf.mul(logProbs, tf.oneHot(targets, VOCAB)), -1); // [b, t]
  const mask = tf.cast(tf.notEqual(targets, tf.scalar(PAD, 'int32')), 'float32');
  return tf.div(tf.neg(tf.sum(tf.mul(picked, mask))), tf.sum(mask));
}

it('a model trained to reverse sequences generates held-out reversals (greedy and beam search)', async () => {
  await setBackend('wasm');
  setSeed(7);
  const model = new EncoderDecoderTransformer({
    srcVocabSize: VOCAB, tgtVocabSize: VOCAB, dModel: 32, numHeads: 4, numEncoderLayers: 1, numDecoderLayers: 1,
    dFf: 64, dropout: 0, maxSeqLength: 16, padTokenId: PAD,
  });
  const heldOut: number[][] = [];
  const held = new Set<string>();
  while (heldOut.length < 40) {
    const sequence = randomSequence();
    if (held.has(sequence.join())) continue;
    held.add(sequence.join());
    heldOut.push(sequence);
  }

  const optimizer = tf.train.adam(0.005);
  let loss = Infinity;
  // Stops once the loss is low (about 175 steps, ~10 s here). Bounded by steps, not by time, so
  // that a loaded machine is slower but never changes the outcome.
  for (let step = 0; step < 600; step++) {
    const batch: number[][] = [];
    while (batch.length < 64) {
      const sequence = randomSequence();
      if (!held.has(sequence.join())) batch.push(sequence);
    }
    const reversed = batch.map((sequence) => [...sequence].reverse());
    const src = padded(batch);
    const tgtIn = padded(reversed.map((r) => [BOS, ...r])); // teacher forcing: BOS y1 .. yn
    const tgtOut = padded(reversed.map((r) => [...r, EOS])); // predicts y1 .. yn EOS
    const cost = optimizer.minimize(() => crossEntropy(model.forward(src, tgtIn), tgtOut), true, model.trainableParameters());
    if (step % 25 === 24) loss = (await cost!.data())[0];
    tf.dispose([src, tgtIn, tgtOut, cost!]);
    if (loss < 0.02) break;
  }
  expect(loss).toBeLessThan(0.05);

  model.train(); // generation switches to eval itself
  const src = padded(heldOut);
  const before = tf.memory().numTensors;
  const expected = heldOut.map((sequence) => [...sequence].reverse().concat(EOS));
  const exact = (sequences: number[][]) => sequences.filter((tokens, i) => tokens.join() === expected[i].join()).length / expected.length;
  const greedy = await model.generate(src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8 });
  const beam = await model.generate(src, { bosTokenId: BOS, eosTokenId: EOS, maxNewTokens: 8, numBeams: 3 });
  expect(tf.memory().numTensors).toBe(before);
  expect(exact(greedy.sequences)).toBeGreaterThanOrEqual(0.9);
  expect(exact(beam.sequences)).toBeGreaterThanOrEqual(0.9);
  expect(model.training).toBe(true);
  src.dispose();
  optimizer.dispose();
  model.dispose();
});
