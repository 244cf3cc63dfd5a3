/**
 * Requests too large for the backend's memory are refused with a MieResourceError before anything
 * is allocated, fast, leaking nothing, and the backend computes correctly afterwards. (Before:
 * `generate` with numBeams 1e6 ended in "memory access out of bounds" and every later op failed;
 * `encode` of [60000, 64] ids aborted the wasm module.)
 */
import { MieResourceError, memoryStatus, setBackend, setMemoryLimit, setSeed, tf } from '@mie/core';
import { ALiBiAttention, GroupedQueryAttention, MultiHeadAttention } from '@mie/attention';
import { TokenEmbedding } from '@mie/embeddings';
import { LinearLayer } from '@mie/layers';
import { DecoderOnlyTransformer, EncoderDecoderTransformer, TransformerEncoderLayer } from '@mie/transformer';
import { expectBackendHealthy, testBackend } from './helpers';

const TIME_LIMIT_MS = 2000;
let model: EncoderDecoderTransformer;
let src: tf.Tensor;

beforeAll(async () => {
  await setBackend(testBackend());
  setSeed(3);
  model = new EncoderDecoderTransformer({ srcVocabSize: 30, tgtVocabSize: 40, dModel: 128, numHeads: 4, numEncoderLayers: 2, numDecoderLayers: 2, dFf: 512, maxSeqLength: 64, padTokenId: 0 }).eval();
  src = tf.ones([1, 6], 'int32');
});
afterAll(() => {
  model.dispose();
  src.dispose();
});
afterEach(() => setMemoryLimit(null));

/** `run` must be refused with a MieResourceError naming `module`: fast, no leak, healthy backend. */
async function refused(module: string, run: () => unknown, what: RegExp): Promise<MieResourceError> {
  const before = tf.memory().numTensors;
  const start = performance.now();
  let error: unknown;
  try {
    const result = await run();
    tf.dispose(result as tf.Tensor);
  } catch (e) {
    error = e;
  }
  const elapsed = performance.now() - start;
  if (!(error instanceof MieResourceError)) throw new Error(`expected a MieResourceError, got ${error === undefined ? 'a result' : String(error)}`);
  expect(error.message.startsWith(`${module}: `)).toBe(true);
  expect(error.message).toMatch(what);
  expect(error.message).toMatch(/needs .* but the (wasm|cpu) backend has .* left of its .* limit/);
  expect(elapsed).toBeLessThan(TIME_LIMIT_MS);
  expect(tf.memory().numTensors).toBe(before);
  expectBackendHealthy();
  return error;
}

describe('generation', () => {
  it('refuses numBeams 1e6, a batch of 1e6 and 1e6 sampled sequences before decoding', async () => {
    await refused('EncoderDecoderTransformer.generate', () => model.generate(src, { numBeams: 1e6, bosTokenId: 1, eosTokenId: 2 }), /1000000 beams or sequences x batch 1/);
    await refused('EncoderDecoderTransformer.generate', () => model.generate(src, { numBeams: 1e6, numReturnSequences: 3, bosTokenId: 1 }), /1000000 rows/);
    await refused('EncoderDecoderTransformer.generate', () => model.generate(src, { doSample: true, numReturnSequences: 1e6, bosTokenId: 1 }), /1000000 rows/);
    const huge = tf.ones([1_000_000, 6], 'int32');
    await refused('EncoderDecoderTransformer.generate', () => model.generate(huge, { bosTokenId: 1 }), /batch 1000000/);
    expect(() => model.generateStream(huge, { bosTokenId: 1 })).toThrow(MieResourceError);
    huge.dispose();
    // The same model then generates as usual.
    const { sequences } = await model.generate(src, { numBeams: 3, bosTokenId: 1, maxNewTokens: 4 });
    expect(sequences).toHaveLength(1);
  });

  it('refuses the same for a decoder-only model, whose prompt counts too', async () => {
    const lm = new DecoderOnlyTransformer({ vocabSize: 40, dModel: 64, numHeads: 4, numKeyValueHeads: 2, numLayers: 2, dFf: 128, maxSeqLength: 64, positionalEncoding: 'rotary' }).eval();
    const prompt = tf.ones([1, 6], 'int32');
    await refused('DecoderOnlyTransformer.generate', () => lm.generate(prompt, { numBeams: 1e6 }), /1000000 beams or sequences x batch 1/);
    const huge = tf.ones([1_000_000, 6], 'int32');
    await refused('DecoderOnlyTransformer.generate', () => lm.generate(huge, {}), /batch 1000000/);
    huge.dispose();
    const { sequences } = await lm.generate(prompt, { numBeams: 2, maxNewTokens: 4 });
    expect(sequences[0]).toHaveLength(4);
    prompt.dispose();
    lm.dispose();
  });

  it('computes 150,000 beams that fit in memory, without overflowing the stack', async () => {
    const tiny = new EncoderDecoderTransformer({ srcVocabSize: 11, tgtVocabSize: 11, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, maxSeqLength: 10 }).eval();
    const before = tf.memory().numTensors;
    const { sequences, scores } = await tiny.generate(src, { numBeams: 150_000, bosTokenId: 1, maxNewTokens: 1 });
    expect(sequences).toHaveLength(1);
    expect(sequences[0]).toHaveLength(1);
    expect(Number.isFinite(scores[0])).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    tiny.dispose();
  }, 180_000); // 5 s alone on the cpu backend; a loaded machine takes several times that
});

describe('forward passes', () => {
  it('refuses an encode of [60000, 64] ids and a forward of [20000, 64] before the embedding runs', async () => {
    const ids = tf.ones([60_000, 64], 'int32');
    await refused('TransformerEncoder', () => model.encode(ids), /a forward of ids \[60000, 64\]/);
    ids.dispose();
    setMemoryLimit(memoryStatus().used + 2 ** 31);
    const batch = tf.ones([20_000, 64], 'int32');
    await refused('TransformerEncoder', () => model.forward(batch, batch), /a forward of ids \[20000, 64\]/);
    batch.dispose();
  });

  it('refuses oversized calls to each module directly', async () => {
    setMemoryLimit(memoryStatus().used + 2 ** 30);
    const x = tf.zeros([2000, 128, 64]);
    const mha = new MultiHeadAttention({ inputDim: 64, numHeads: 4 });
    await refused('MultiHeadAttention', () => mha.forward(x, x, x), /attention over batch 2000 \(4 heads, 128 queries x 128 keys\)/);
    const gqa = new GroupedQueryAttention({ dModel: 64, numHeads: 4, numKeyValueHeads: 2 });
    await refused('GroupedQueryAttention', () => gqa.forward(x), /attention over batch 2000/);
    const alibi = new ALiBiAttention({ hiddenSize: 64, numHeads: 4, maxSeqLength: 256 });
    await refused('ALiBiAttention', () => alibi.forward(x), /attention over batch 2000/);
    const layer = new TransformerEncoderLayer({ dModel: 64, numHeads: 4, dFf: 128 });
    await refused('MultiHeadAttention', () => layer.forward(x), /attention over batch 2000/);
    const linear = new LinearLayer({ inFeatures: 64, outFeatures: 20_000 });
    await refused('LinearLayer', () => linear.forward(x), /output \[2000, 128, 20000\]/);
    const embedding = new TokenEmbedding({ vocabSize: 10, dModel: 4096 });
    const ids = tf.zeros([500, 200], 'int32');
    await refused('TokenEmbedding', () => embedding.forward(ids), /embeddings \[500, 200, 4096\]/);
    tf.dispose([x, ids]);
    [mha, gqa, alibi, layer, linear, embedding].forEach((m) => m.dispose());
  });
});
