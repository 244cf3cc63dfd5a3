// What an outside project does with MIE, the same code in a browser page and in Node: load a
// checkpoint by URL, compute logits, greedy and beam outputs, take a few AdamW training steps
// (with dropout), and round-trip the trained model through bytes (and, in a browser, IndexedDB).
import { BaseModel, getDevice, setBackend, setSeed, synchronousReadsAvailable, tf } from '@mie/core';
import * as layers from '@mie/layers';
import * as attention from '@mie/attention';
import * as positional from '@mie/positional';
import * as embeddings from '@mie/embeddings';
import * as transformer from '@mie/transformer';
import { AdamW, crossEntropyLoss, valueAndGradients } from '@mie/training';
import { runWithCache, runWithHooks, zeroHeads } from '@mie/insight';

export const SRC = [[5, 6, 7, 8, 9, 2], [10, 11, 12, 2, 0, 0]];
export const TGT_IN = [[1, 5, 6, 7, 8, 9], [1, 10, 11, 12, 2, 0]];
export const TGT_OUT = [[5, 6, 7, 8, 9, 2], [10, 11, 12, 2, 0, 0]];
export const TRAINING_STEPS = 5;

const maxDifference = (a, b) => a.reduce((worst, value, i) => Math.max(worst, Math.abs(value - b[i])), 0);

async function logitsOf(model, src, tgt) {
  const logits = tf.tidy(() => model.forward(src, tgt));
  const values = Array.from(await logits.data());
  logits.dispose();
  return values;
}

/** Runs every check on `backend` with the checkpoint at `modelUrl`; resolves to plain data. */
export async function runChecks(backend, modelUrl, { indexedDb = false } = {}) {
  const device = await setBackend(backend);
  const before = tf.memory().numTensors;
  const packages = {
    layers: typeof layers.LinearLayer,
    attention: typeof attention.MultiHeadAttention,
    positional: typeof positional.RotaryPositionEncoding,
    embeddings: typeof embeddings.TokenEmbedding,
    transformer: typeof transformer.EncoderDecoderTransformer,
  };
  const model = await BaseModel.load(modelUrl);
  const src = tf.tensor2d(SRC, undefined, 'int32');
  const tgtIn = tf.tensor2d(TGT_IN, undefined, 'int32');
  const tgtOut = tf.tensor2d(TGT_OUT, undefined, 'int32');
  const result = { device, backendName: getDevice().backend, packages, className: model.className };
  try {
    model.eval();
    result.logits = await logitsOf(model, src, tgtIn);
    result.greedy = (await model.generate(src, { maxNewTokens: 8, bosTokenId: 1, eosTokenId: 2 })).sequences;
    const beams = await model.generate(src, { maxNewTokens: 6, bosTokenId: 1, eosTokenId: 2, numBeams: 3 });
    result.beams = beams.sequences;
    // Interpretability: the cross-attention patterns at the hook points, and a head ablated.
    const { output, cache } = await runWithCache(model, () => model.forward(src, tgtIn), { names: (name) => name.endsWith('crossAttn.hookPattern') });
    result.insight = { names: cache.names(), pattern: Array.from(await cache.get('decoder.layers.0.crossAttn.hookPattern').data()) };
    cache.dispose();
    output.dispose();
    const ablated = await runWithHooks(model, () => model.forward(src, tgtIn), { 'decoder.layers.0.crossAttn.hookZ': zeroHeads([0]) });
    result.insight.ablatedLogits = Array.from(await ablated.output.data());
    ablated.output.dispose();

    model.train();
    const optimizer = new AdamW(model, { lr: 3e-3 });
    result.losses = [];
    for (let step = 0; step < TRAINING_STEPS; step++) {
      setSeed(100 + step); // the same dropout masks on every backend
      const { value, grads } = valueAndGradients(model, () => crossEntropyLoss(model.forward(src, tgtIn), tgtOut, { ignoreIndex: 0 }));
      result.losses.push((await value.data())[0]);
      optimizer.step(grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    optimizer.dispose?.();
    model.eval();
    const trained = await logitsOf(model, src, tgtIn);

    // Bytes: toBuffers where the backend reads synchronously (webgpu in Node must refuse, naming
    // toBuffersAsync), first, while the trained weights are on the device only; then
    // toBuffersAsync, everywhere.
    if (synchronousReadsAvailable()) {
      const fromSync = BaseModel.fromBuffers(model.toBuffers());
      result.syncBytesRoundTrip = maxDifference(await logitsOf(fromSync, src, tgtIn), trained);
      fromSync.dispose();
    } else {
      try {
        model.toBuffers();
        result.syncBytesError = null;
      } catch (error) {
        result.syncBytesError = `${error.name}: ${error.message}`;
      }
    }
    const restored = BaseModel.fromBuffers(await model.toBuffersAsync());
    result.bytesRoundTrip = maxDifference(await logitsOf(restored, src, tgtIn), trained);
    restored.dispose();
    if (indexedDb) {
      await model.save('indexeddb://mie-outside-check');
      const again = await BaseModel.load('indexeddb://mie-outside-check');
      result.indexedDbRoundTrip = maxDifference(await logitsOf(again, src, tgtIn), trained);
      again.dispose();
    }
  } finally {
    tf.dispose([src, tgtIn, tgtOut]);
    model.dispose();
  }
  result.leakedTensors = tf.memory().numTensors - before;
  return result;
}
