/**
 * Leaks and long runs: 2000 training steps and 200 generations (greedy, beam, sampled, aborted
 * streams, concurrent generations on one model) leave tf.memory() at its baseline, and resident
 * memory stops growing after warm-up.
 */
import { setBackend, setSeed, tf } from '@mie/core';
import { FeedForwardClassifier } from '@mie/layers';
import { AdamW, ShuffledBatches, Trainer, crossEntropyLoss } from '@mie/training';
import { EncoderDecoderTransformer } from '@mie/transformer';
import { testBackend } from './helpers';

/** Resident memory may grow this much after warm-up (allocator and JIT noise), and no more. */
const RSS_SLACK = 48 * 1024 * 1024;

/**
 * The training soak's leak rate: the median growth of resident memory over 100 steps after
 * warm-up must stay under this (the old whole-run bound of 48 MB over 1800 steps, per 100 steps).
 * A leak grows in every interval; high-water marks that never shrink (the wasm heap, V8's heap)
 * jump in one or two, by an amount that depends on what else the machine does (73 MB in one CI
 * run on Node 24, 21 MB in the last interval of a quiet run), so a median is the measure that
 * tells the two apart.
 */
const LEAK_PER_100_STEPS = 2.5 * 1024 * 1024;

/** Resident memory may not grow more than this in all over a 1800-step soak, jumps included. */
const RSS_CEILING = 256 * 1024 * 1024;

/**
 * A full collection before each resident-memory reading (the package's test script runs Jest
 * under `node --expose-gc`): without it a reading counts garbage that V8 has not collected yet,
 * which under load (other test processes on the machine) was 170 MB.
 */
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

beforeAll(async () => {
  await setBackend(testBackend());
});

it('2000 training steps: tensors and bytes return to the baseline, resident memory stops growing', async () => {
  expect(typeof (globalThis as { gc?: unknown }).gc).toBe('function'); // run through `pnpm test` (node --expose-gc)
  setSeed(1);
  const before = tf.memory().numTensors;
  const x = tf.randomUniform([256, 8], -1, 1, 'float32', 2);
  const y = tf.tidy(() => tf.cast(tf.greater(tf.sum(x, 1), 0), 'int32'));
  const model = new FeedForwardClassifier({ inputSize: 8, hiddenSizes: [32], numClasses: 2, dropout: 0.1 });
  const optimizer = new AdamW(model, { lr: 1e-3 });
  const samples: Array<{ step: number; tensors: number; bytes: number; rss: number }> = [];
  const trainer = new Trainer({
    model,
    data: new ShuffledBatches({ size: 256, batchSize: 16, makeBatch: (i) => ({ x: tf.gather(x, i), y: tf.gather(y, i) }) }),
    loss: (m, batch) => crossEntropyLoss(m.forward(batch.x), batch.y),
    optimizer,
    maxSteps: 2000,
    clipGradNorm: 1,
    progress: 'none',
    onStep: ({ step }) => {
      if (step % 100 !== 0) return;
      gc();
      samples.push({ step, tensors: tf.memory().numTensors, bytes: tf.memory().numBytes, rss: process.memoryUsage().rss });
    },
  });
  const result = await trainer.fit();
  expect(result.step).toBe(2000);
  expect(result.history.at(-1)!.loss).toBeLessThan(result.history[0].loss);
  // The optimizer state appears in the first step and then stays: every later sample is equal.
  const steady = samples.filter((s) => s.step >= 200);
  expect(new Set(steady.map((s) => s.tensors)).size).toBe(1);
  expect(new Set(steady.map((s) => s.bytes)).size).toBe(1);
  const increments = steady.slice(1).map((s, i) => s.rss - steady[i].rss).sort((a, b) => a - b);
  const trace = { medianGrowthPer100Steps: increments[increments.length >> 1], totalGrowth: steady.at(-1)!.rss - steady[0].rss, rssMiB: steady.map((s) => Math.round(s.rss / 2 ** 20)).join(' ') };
  expect({ ...trace, leaks: trace.medianGrowthPer100Steps >= LEAK_PER_100_STEPS, pastCeiling: trace.totalGrowth >= RSS_CEILING }).toEqual({ ...trace, leaks: false, pastCeiling: false });
  optimizer.dispose();
  model.dispose();
  tf.dispose([x, y]);
  expect(tf.memory().numTensors).toBe(before);
}, 120_000);

it('200 generations, aborted streams and concurrent generations: tensors return to the baseline', async () => {
  setSeed(2);
  const model = new EncoderDecoderTransformer({ srcVocabSize: 12, tgtVocabSize: 12, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, maxSeqLength: 16, padTokenId: 0 });
  model.eval();
  const src = tf.tensor2d([[3, 4, 5, 6], [7, 8, 9, 0]], [2, 4], 'int32');
  const base = { bosTokenId: 1, eosTokenId: 2, maxNewTokens: 8 };
  // Warm-up: every kind of generation below once, so that lazily built tables, kernels and the
  // JIT's code for each path exist before the resident-memory baseline is taken.
  await model.generate(src, base);
  await model.generate(src, { ...base, numBeams: 3, numReturnSequences: 2 });
  await model.generate(src, { ...base, doSample: true, topK: 5, seed: 0 });
  const warmStream = model.generateStream(src, base);
  await warmStream.next();
  await warmStream.return(undefined as never);
  await Promise.all([model.generate(src, base), model.generate(src, { ...base, numBeams: 2 })]);
  gc();
  const baseline = tf.memory();
  const greedy = await model.generate(src, base);
  let aborted = 0;
  // Two passes of 40 rounds: resident memory is compared across the second only. The first grows
  // high-water marks that never shrink (the wasm heap, V8's heap) to what concurrent generations
  // need, which depends on how they interleave; a leak grows in every pass.
  let rssAfterFirstPass = 0;
  for (let round = 0; round < 80; round++) {
    if (round === 40) {
      gc();
      rssAfterFirstPass = process.memoryUsage().rss;
    }
    const kind = round % 5;
    if (kind === 0) expect(await model.generate(src, base)).toEqual(greedy);
    else if (kind === 1) await model.generate(src, { ...base, numBeams: 3, numReturnSequences: 2 });
    else if (kind === 2) await model.generate(src, { ...base, doSample: true, topK: 5, seed: round });
    else if (kind === 3) {
      // An aborted stream: stop after two steps; the generator frees everything and rejects.
      const controller = new AbortController();
      const stream = model.generateStream(src, { ...base, signal: controller.signal });
      let steps = 0;
      const outcome = await (async () => {
        for await (const _step of stream) {
          if (++steps === 2) controller.abort(new Error('stop'));
        }
      })().then(
        () => 'finished',
        (error: Error) => error.message,
      );
      expect(outcome).toBe('stop');
      aborted++;
      // A stream abandoned by `return()` halfway also frees everything.
      const abandoned = model.generateStream(src, base);
      await abandoned.next();
      await abandoned.return(undefined as never);
    } else {
      // Concurrent generations on one model: the same results as one at a time.
      const results = await Promise.all([model.generate(src, base), model.generate(src, { ...base, numBeams: 2 }), model.generate(src, base)]);
      expect(results[0]).toEqual(greedy);
      expect(results[2]).toEqual(greedy);
    }
  }
  // 80 rounds are 128 generations (16 x (1 + 1 + 1 + 2 streams + 3 concurrent)); 72 short ones make 200.
  for (let i = 0; i < 72; i++) await model.generate(src, { ...base, maxNewTokens: 3 });
  expect(aborted).toBe(16);
  expect(model.training).toBe(false);
  gc();
  expect(tf.memory().numTensors).toBe(baseline.numTensors);
  expect(tf.memory().numBytes).toBe(baseline.numBytes);
  expect(process.memoryUsage().rss - rssAfterFirstPass).toBeLessThan(RSS_SLACK);
  src.dispose();
  model.dispose();
}, 120_000);
