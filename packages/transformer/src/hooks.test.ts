/**
 * Forward hooks fire for every module of a model, whichever method its parent calls
 * (`forward`, `forwardWithAttention`, cached `decode` steps), once per call, and an
 * output-replacing hook changes the result exactly as computed by hand.
 */
import { setBackend, tf, type Module } from '@mie/core';
import { BOS, padded, smallModel } from './__tests__/generation-helpers';

beforeAll(async () => {
  await setBackend('cpu');
});

/** Registers a counting hook on every module; returns the counts by path and a remover. */
function countCalls(model: Module): { counts: Map<string, number>; remove: () => void } {
  const counts = new Map<string, number>();
  const removers = model.namedModules().map(([path, module]) => {
    counts.set(path, 0);
    return module.registerForwardHook(() => {
      counts.set(path, (counts.get(path) ?? 0) + 1);
    });
  });
  return { counts, remove: () => removers.forEach((remove) => remove()) };
}

describe('forward hooks in a seq2seq model', () => {
  it('fire on every module during forward, once per call', () => {
    const model = smallModel(3).eval();
    const { counts, remove } = countCalls(model);
    const src = padded([[3, 4, 5], [6, 7]]);
    const tgt = padded([[BOS, 3, 4], [BOS, 5]]);
    tf.dispose(model.forward(src, tgt));
    const silent = [...counts].filter(([, n]) => n === 0).map(([path]) => path);
    expect(silent).toEqual([]);
    expect(counts.get('')).toBe(1);
    expect(counts.get('encoder')).toBe(1);
    expect(counts.get('decoder')).toBe(1);
    expect(counts.get('decoder.layers.1')).toBe(1);
    expect(counts.get('decoder.layers.0.crossAttn')).toBe(1);
    expect(counts.get('encoder.layers.0.selfAttn.qProj')).toBe(1);
    // The tied-free model: one embedding per stack, each looked up once.
    expect(counts.get('decoder.embedding')).toBe(1);
    remove();
    tf.dispose([src, tgt]);
    model.dispose();
  });

  it('fire on every module of the decoder at each step of cached generation', async () => {
    const model = smallModel(4).eval();
    const { counts, remove } = countCalls(model);
    const src = padded([[3, 4, 5]]);
    const { sequences } = await model.generate(src, { bosTokenId: BOS, eosTokenId: null, maxNewTokens: 4 });
    expect(sequences[0]).toHaveLength(4);
    expect(counts.get('encoder')).toBe(1);
    expect(counts.get('decoder')).toBe(4);
    expect(counts.get('')).toBe(4); // the model's decode steps
    // Every module: the encoder's once, and the cross-attention key/value projections once (the
    // memory is projected once per source); the rest of the decoder (and the model's decode) at
    // each of the 4 steps.
    const once = (path: string) => path.startsWith('encoder') || /crossAttn\.[kv]Proj$/.test(path);
    const expected = (path: string) => (once(path) ? 1 : 4);
    const wrong = [...counts].filter(([path, n]) => n !== expected(path));
    expect(wrong).toEqual([]);
    remove();
    src.dispose();
    model.dispose();
  });

  it('an output-replacing hook on a decoder layer changes the logits exactly', async () => {
    const model = smallModel(5).eval();
    const projection = model.outputProjection!;
    const bias = projection.bias!.arraySync() as number[];
    // Post-norm stack: the last layer's output is the decoder's output, so zeroing it leaves
    // logits = outputProjection(0) = its bias, at every position.
    const remove = model.decoder.layers[1].registerForwardHook((_module, _inputs, output) => tf.zerosLike(output as tf.Tensor));
    const src = padded([[3, 4, 5]]);
    const tgt = padded([[BOS, 3, 4]]);
    const before = tf.memory().numTensors;
    const logits = model.forward(src, tgt);
    const rows = (logits.arraySync() as number[][][])[0];
    for (const row of rows) row.forEach((value, v) => expect(value).toBeCloseTo(bias[v], 6));
    logits.dispose();
    expect(tf.memory().numTensors).toBe(before); // the replaced output was freed
    // Generation sees the same replacement: every greedy step picks argmax(bias).
    const best = bias.indexOf(Math.max(...bias));
    const { sequences } = await model.generate(src, { bosTokenId: BOS, eosTokenId: null, maxNewTokens: 3 });
    expect(sequences[0]).toEqual([best, best, best]);
    remove();
    const restoredLogits = model.forward(src, tgt);
    const restored = (restoredLogits.arraySync() as number[][][])[0];
    restoredLogits.dispose();
    const largest = Math.max(...restored.flatMap((row) => row.map((value, v) => Math.abs(value - bias[v]))));
    expect(largest).toBeGreaterThan(1e-2); // without the hook the layer's output counts again
    tf.dispose([src, tgt]);
    model.dispose();
  });

  it('a hook on forwardWithAttention callers sees the output tensor and the method', () => {
    const model = smallModel(6).eval();
    const seen: Array<[string, number[]]> = [];
    const remove = model.encoder.layers[0].registerForwardHook((_module, _inputs, output, context) => {
      seen.push([context.method, (output as tf.Tensor).shape]);
    });
    const src = padded([[3, 4, 5, 6]]);
    tf.dispose(model.encode(src)); // the encoder calls forwardWithAttention on its layers
    const layer = model.encoder.layers[0];
    const x = tf.ones([1, 2, 16]);
    tf.dispose(layer.forward(x)); // forward calls forwardWithAttention: one call, reported as forward
    expect(seen).toEqual([
      ['forwardWithAttention', [1, 4, 16]],
      ['forward', [1, 2, 16]],
    ]);
    remove();
    expect(Object.prototype.hasOwnProperty.call(layer, 'forwardWithAttention')).toBe(false);
    tf.dispose([src, x]);
    model.dispose();
  });
});
