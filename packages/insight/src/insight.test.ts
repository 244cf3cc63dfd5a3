/**
 * @mie/insight on small random models: every hook point is recorded with its documented shape
 * and meaning, edits change the computation exactly, and nothing leaks.
 */
import { BaseModel, MieConfigError, setBackend, setSeed, tf } from '@mie/core';
import { DecoderOnlyTransformer, EncoderDecoderTransformer } from '@mie/transformer';
import {
  attentionPatterns,
  attentionRollout,
  directLogitAttribution,
  headAblationScores,
  hookPointNames,
  logitLens,
  logitLensTable,
  runWithCache,
  runWithHooks,
  zeroHeads,
} from './index';

beforeAll(async () => {
  await setBackend('cpu');
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
};

function seq2seq(options: Partial<ConstructorParameters<typeof EncoderDecoderTransformer>[0]> = {}): EncoderDecoderTransformer {
  setSeed(21);
  return new EncoderDecoderTransformer({
    srcVocabSize: 13, tgtVocabSize: 11, dModel: 16, numHeads: 4, numKeyValueHeads: 2, numEncoderLayers: 2, numDecoderLayers: 2,
    dFf: 24, dropout: 0, padTokenId: 0, normFirst: true, ...options,
  }).eval();
}

const SRC = () => tf.tensor2d([[3, 4, 5, 6, 0], [7, 8, 9, 0, 0]], [2, 5], 'int32');
const TGT = () => tf.tensor2d([[1, 3, 4, 5], [1, 6, 7, 8]], [2, 4], 'int32');

describe('runWithCache', () => {
  it('records every hook point of a seq2seq model with its documented shape, and frees them all', async () => {
    const model = seq2seq();
    const [src, tgt] = [SRC(), TGT()];
    const before = tf.memory().numTensors;
    const { output, cache } = await runWithCache(model, () => model.forward(src, tgt));
    expect(cache.names()).toEqual(expect.arrayContaining(hookPointNames(model)));
    expect(cache.names()).toHaveLength(hookPointNames(model).length);
    const shape = (name: string) => cache.get(name).shape;
    expect(shape('encoder.layers.0.selfAttn.hookQ')).toEqual([2, 4, 5, 4]);
    expect(shape('encoder.layers.0.selfAttn.hookK')).toEqual([2, 2, 5, 4]); // 2 key/value heads
    expect(shape('decoder.layers.1.crossAttn.hookPattern')).toEqual([2, 4, 4, 5]);
    expect(shape('decoder.layers.1.selfAttn.hookScores')).toEqual([2, 4, 4, 4]);
    expect(shape('decoder.layers.0.crossAttn.hookZ')).toEqual([2, 4, 4, 4]);
    expect(shape('decoder.layers.0.hookResidMidCross')).toEqual([2, 4, 16]);
    expect(shape('encoder.layers.1.hookPre')).toEqual([2, 5, 24]);
    // Causal self-attention: blocked scores at -1e30, zero weight.
    const scores = cache.get('decoder.layers.0.selfAttn.hookScores').arraySync() as number[][][][];
    expect(scores[0][0][0][1]).toBeLessThan(-1e29);
    // Padded source keys get no cross-attention.
    const pattern = cache.get('decoder.layers.0.crossAttn.hookPattern').arraySync() as number[][][][];
    expect(pattern[1][2][3].slice(3)).toEqual([0, 0]);
    // The stream: a layer's output is the next one's input; relu(hookPre) is hookPost.
    expect(maxDiff(cache.get('encoder.layers.0.hookResidPost'), cache.get('encoder.layers.1.hookResidPre'))).toBe(0);
    const relu = tf.relu(cache.get('decoder.layers.1.hookPre'));
    expect(maxDiff(relu, cache.get('decoder.layers.1.hookPost'))).toBe(0);
    relu.dispose();
    // The pattern equals the attention maps forward returns.
    const maps = model.forward(src, tgt, { returnAttention: true });
    expect(maxDiff(maps.crossAttention[1], cache.get('decoder.layers.1.crossAttn.hookPattern'))).toBeLessThan(1e-7);
    // hookZ through outProj is the attention's output: the residual step it makes.
    const layer = model.decoder.layers[1];
    const step = tf.tidy(() => {
      const z = cache.get('decoder.layers.1.crossAttn.hookZ'); // [b, h, q, d]
      const merged = tf.reshape(tf.transpose(z, [0, 2, 1, 3]), [2, 4, 16]);
      return tf.sub(tf.add(cache.get('decoder.layers.1.hookResidMid'), layer.crossAttn!.outProj.forward(merged)), cache.get('decoder.layers.1.hookResidMidCross'));
    });
    expect(tf.tidy(() => tf.max(tf.abs(step)).dataSync()[0])).toBeLessThan(1e-5);
    tf.dispose([step, maps.logits, ...maps.encoderSelfAttention, ...maps.decoderSelfAttention, ...maps.crossAttention]);
    output.dispose();
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => cache.get('encoder.layers.0.hookResidPre')).toThrow(/disposed/);
    tf.dispose([src, tgt]);
    model.dispose();
  });

  it('records the steps of a cached generation, selected by a predicate, and refuses unknown names', async () => {
    const model = seq2seq();
    const src = tf.tensor2d([[3, 4, 5]], [1, 3], 'int32');
    const { output, cache } = await runWithCache(model, () => model.generate(src, { bosTokenId: 1, maxNewTokens: 4 }), {
      names: (name) => name.endsWith('crossAttn.hookPattern'),
    });
    expect(output.sequences[0]).toHaveLength(4);
    expect(cache.names()).toEqual(['decoder.layers.0.crossAttn.hookPattern', 'decoder.layers.1.crossAttn.hookPattern']);
    expect(cache.calls('decoder.layers.1.crossAttn.hookPattern')).toBe(4);
    expect(cache.get('decoder.layers.1.crossAttn.hookPattern').shape).toEqual([1, 4, 1, 3]); // one new query per cached step
    expect(cache.get('decoder.layers.1.crossAttn.hookPattern', { call: 0 }).shape).toEqual([1, 4, 1, 3]);
    cache.dispose();
    await expect(runWithCache(model, () => 1, { names: ['decoder.layers.9.hookQ'] })).rejects.toThrow(/runWithCache: unknown hook point "decoder.layers.9.hookQ"/);
    await expect(runWithHooks(model, () => 1, { 'encoder.hookZ': zeroHeads([0]) })).rejects.toThrow(MieConfigError);
    expect(() => model.decoder.layers[0].registerHookPoint('hookQ', () => undefined)).toThrow(/unknown hook point "hookQ"; the points are hookResidPre/);
    src.dispose();
    model.dispose();
  });

  it('fails cleanly when the run fails, freeing what it recorded', async () => {
    const model = seq2seq();
    const [src, tgt] = [SRC(), TGT()];
    const before = tf.memory().numTensors;
    await expect(runWithCache(model, () => { tf.dispose(model.forward(src, tgt)); throw new Error('stop'); })).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([src, tgt]);
    model.dispose();
  });
});

describe('runWithHooks', () => {
  it('zero-ablating a head through hookZ equals zeroing its columns of outProj', async () => {
    const model = seq2seq();
    const copy = (await BaseModel.fromBuffers(model.toBuffers())) as EncoderDecoderTransformer;
    copy.eval();
    const [src, tgt] = [SRC(), TGT()];
    for (const head of [0, 3]) {
      const { output } = await runWithHooks(model, () => model.forward(src, tgt), { 'decoder.layers.0.selfAttn.hookZ': zeroHeads([head]) });
      const outProj = copy.decoder.layers[0].selfAttn.outProj;
      const original = tf.clone(outProj.weight);
      const headDim = 4;
      outProj.weight.assign(tf.tidy(() => tf.mul(original, tf.tensor2d([Array.from({ length: 16 }, (_, c) => (Math.floor(c / headDim) === head ? 0 : 1))]))));
      const reference = copy.forward(src, tgt);
      expect(maxDiff(output, reference)).toBeLessThan(1e-5);
      const plain = model.forward(src, tgt);
      expect(maxDiff(output, plain)).toBeGreaterThan(1e-4); // the head mattered
      outProj.weight.assign(original);
      tf.dispose([output, reference, plain, original]);
    }
    tf.dispose([src, tgt]);
    model.dispose();
    copy.dispose();
  });

  it('patches an activation from one input into another run', async () => {
    const model = seq2seq();
    const [src, tgt] = [SRC(), TGT()];
    const other = tf.tensor2d([[9, 9, 9, 9, 0], [3, 3, 3, 0, 0]], [2, 5], 'int32'); // the same padding as src
    const name = 'encoder.layers.1.hookResidPost';
    const { cache } = await runWithCache(model, () => tf.dispose(model.forward(other, tgt)), { names: [name] });
    const donor = cache.get(name);
    // Patching the whole last encoder layer's output makes the decoder read the other source.
    const { output: patched } = await runWithHooks(model, () => model.forward(src, tgt), { [name]: () => tf.clone(donor) });
    const reference = model.forward(other, tgt);
    const unpatched = model.forward(src, tgt);
    expect(maxDiff(patched, reference)).toBeLessThan(1e-5);
    expect(maxDiff(patched, unpatched)).toBeGreaterThan(1e-3);
    tf.dispose([patched, reference, unpatched, other, src, tgt]);
    cache.dispose();
    model.dispose();
  });

  it('refuses a hook that returns the wrong shape', async () => {
    const model = seq2seq();
    const [src, tgt] = [SRC(), TGT()];
    const before = tf.memory().numTensors;
    await expect(runWithHooks(model, () => model.forward(src, tgt), { 'decoder.layers.0.hookPost': () => tf.zeros([1]) })).rejects.toThrow(/a listener at hookPost must return nothing or a live tensor of shape \[2, 4, 24\]/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([src, tgt]);
    model.dispose();
  });
});

describe('analyses', () => {
  it('logit lens: the last row is the model prediction, rows per layer, a table for plots', async () => {
    const model = seq2seq();
    const [src, tgt] = [SRC(), TGT()];
    const { output, cache } = await runWithCache(model, () => model.forward(src, tgt));
    const lens = logitLens(model, cache, { topK: 3, batch: 1, tokens: (id) => `t${id}` });
    expect(lens.layers).toEqual(['embeddings', 'layer 0', 'layer 1']);
    const logits = (output.arraySync() as number[][][])[1];
    lens.top[2].forEach((best, position) => {
      expect(best[0].id).toBe(logits[position].indexOf(Math.max(...logits[position])));
      expect(best[0].probability).toBeGreaterThanOrEqual(best[1].probability);
      expect(best[0].token).toBe(`t${best[0].id}`);
    });
    const table = logitLensTable(lens, ['<s>', 'a', 'b', 'c']);
    expect(table.cells).toHaveLength(3);
    expect(table.cells[2][0].token).toBe(lens.top[2][0][0].token);
    output.dispose();
    cache.dispose();
    tf.dispose([src, tgt]);
    model.dispose();
  });

  it('direct logit attribution: heads and rest add up to the logit less the biases', async () => {
    const model = seq2seq({ numKeyValueHeads: 4 });
    const [src, tgt] = [SRC(), TGT()];
    const { output, cache } = await runWithCache(model, () => model.forward(src, tgt));
    const tokenId = 5;
    const position = 2;
    const dla = directLogitAttribution(model, cache, { tokenId, position });
    expect(dla.heads).toHaveLength(2 * 2 * 4); // 2 layers x (self + cross) x 4 heads
    const logit = (output.arraySync() as number[][][])[0][position][tokenId];
    const projection = model.outputProjection!;
    const norm = model.decoder.norm!;
    const biasTerm = tf.tidy(() => {
      const u = tf.slice(projection.weight, [tokenId, 0], [1, 16]); // U[token]
      return tf.add(tf.sum(tf.mul(norm.bias!, u)), tf.slice(projection.bias!, [tokenId], [1])).dataSync()[0];
    });
    expect(dla.total).toBeCloseTo(logit - biasTerm, 4);
    const heads = dla.heads.reduce((sum, h) => sum + h.value, 0);
    expect(heads + dla.rest).toBeCloseTo(dla.total, 4);
    output.dispose();
    cache.dispose();
    const postNorm = seq2seq({ normFirst: false });
    const run = await runWithCache(postNorm, () => postNorm.forward(src, tgt));
    expect(() => directLogitAttribution(postNorm, run.cache, { tokenId, position })).toThrow(/post-norm/);
    run.output.dispose();
    run.cache.dispose();
    tf.dispose([src, tgt]);
    model.dispose();
    postNorm.dispose();
  });

  it('attention rollout matches the product computed by hand', async () => {
    const model = new DecoderOnlyTransformer({ vocabSize: 10, dModel: 8, numHeads: 2, numLayers: 2, dFf: 16, dropout: 0, positionalEncoding: 'alibi' }).eval();
    const ids = tf.tensor2d([[3, 4, 5]], [1, 3], 'int32');
    const { output, cache } = await runWithCache(model, () => model.forward(ids));
    const patterns = attentionPatterns(model, cache, 'layers');
    expect(patterns).toHaveLength(2);
    const rollout = attentionRollout(patterns, { residual: 0.5 });
    const mats = patterns.map((p) => {
      const heads = (p.arraySync() as number[][][][])[0];
      return heads[0].map((row, i) => row.map((v, j) => 0.5 * (i === j ? 1 : 0) + 0.5 * ((v + heads[1][i][j]) / 2)));
    });
    const norm = (m: number[][]) => m.map((row) => row.map((v) => v / row.reduce((a, b) => a + b, 0)));
    const [a1, a2] = mats.map(norm);
    const expected = a2.map((row) => a1[0].map((_, j) => row.reduce((s, v, k) => s + v * a1[k][j], 0)));
    const actual = (rollout.arraySync() as number[][][])[0];
    actual.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(expected[i][j], 6)));
    expect(actual[0]).toEqual([1, 0, 0].map((v, j) => (j === 0 ? expect.closeTo(1, 6) : expect.closeTo(0, 6)))); // causal: the first token draws only on itself
    tf.dispose([rollout, output, ids]);
    cache.dispose();
    model.dispose();
  });

  it('head ablation scores every head against the intact loss', async () => {
    const model = seq2seq({ numDecoderLayers: 1, numEncoderLayers: 1 });
    const [src, tgt] = [SRC(), TGT()];
    const loss = () => tf.mean(tf.square(model.forward(src, tgt))) as tf.Scalar;
    const before = tf.memory().numTensors;
    const { baseline, heads } = await headAblationScores(model, { examples: [0, 1], loss, modules: (path) => path.includes('crossAttn') });
    expect(tf.memory().numTensors).toBe(before);
    expect(heads).toHaveLength(4);
    expect(heads.every((h) => h.module === 'decoder.layers.0.crossAttn')).toBe(true);
    const plain = loss();
    expect(baseline).toBeCloseTo(plain.dataSync()[0], 5);
    plain.dispose();
    expect(heads[0].delta).toBeGreaterThanOrEqual(heads[3].delta);
    expect(heads.some((h) => Math.abs(h.delta) > 1e-6)).toBe(true);
    tf.dispose([src, tgt]);
    model.dispose();
  });
});
