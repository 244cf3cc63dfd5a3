import { MieSerializationError, readSafetensors, setBackend, setSeed, tf, writeSafetensors, type BackendChoice } from '@mie/core';
import { MultiHeadAttention } from '@mie/attention';
import { loadCase, maxAbsDifference, parityCases, type ParityCase } from './__tests__/fixtures';
import { EncoderDecoderTransformer, type EncoderDecoderTransformerOptions } from './encoder-decoder-transformer';
import type { TransformerLayerOptions } from './layer-options';
import { exportTorchStateDict, loadTorchStateDict, torchStateDictLayout } from './torch-state-dict';
import { TransformerDecoderLayer } from './transformer-decoder-layer';
import { TransformerEncoder } from './transformer-encoder';
import { TransformerEncoderLayer } from './transformer-encoder-layer';

const TOLERANCE = 1e-5;
const cases = parityCases();
const layerCases = Object.keys(cases).filter((name) => name !== 'seq2seq');

type AnyModule = MultiHeadAttention | TransformerEncoderLayer | TransformerDecoderLayer | EncoderDecoderTransformer;

function build(spec: ParityCase): AnyModule {
  switch (spec.kind) {
    case 'MultiHeadAttention':
      return new MultiHeadAttention(spec.options as unknown as ConstructorParameters<typeof MultiHeadAttention>[0]);
    case 'TransformerEncoderLayer':
      return new TransformerEncoderLayer(spec.options as unknown as TransformerLayerOptions);
    case 'TransformerDecoderLayer':
      return new TransformerDecoderLayer(spec.options as unknown as TransformerLayerOptions);
    case 'EncoderDecoderTransformer':
      return new EncoderDecoderTransformer(spec.options as unknown as EncoderDecoderTransformerOptions);
  }
}

/** Runs the case's module on its inputs: `[output]`, or `[output, weights]` for attention. */
function run(module: AnyModule, spec: ParityCase, t: Record<string, tf.Tensor>): tf.Tensor[] {
  if (module instanceof MultiHeadAttention) return module.forward(t.x, t.x, t.x, { keyPaddingMask: t.keyPaddingMask });
  if (module instanceof TransformerEncoderLayer) return [module.forward(t.x, { keyPaddingMask: t.keyPaddingMask, causal: spec.causal })];
  if (module instanceof TransformerDecoderLayer) {
    return [module.forward(t.x, t.memory, { causal: true, keyPaddingMask: t.keyPaddingMask, memoryKeyPaddingMask: t.memoryKeyPaddingMask })];
  }
  return [module.forward(t.src, t.tgt)];
}

const expectedOutputs = (name: string, t: Record<string, tf.Tensor>): tf.Tensor[] =>
  name === 'seq2seq' ? [t.logits] : name === 'mha' ? [t.output, t.weights] : [t.output];

beforeAll(() => setSeed(11));

describe.each<BackendChoice>(['cpu', 'wasm'])('PyTorch parity on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each([...layerCases, 'seq2seq'])('%s matches PyTorch within 1e-5', (name) => {
    const spec = cases[name];
    const { state, tensors } = loadCase(name);
    const module = build(spec).eval();
    try {
      loadTorchStateDict(module, state);
      const outputs = run(module, spec, tensors);
      const expected = expectedOutputs(name, tensors);
      outputs.forEach((output, i) => expect(maxAbsDifference(output, expected[i])).toBeLessThan(TOLERANCE));
      tf.dispose(outputs);
    } finally {
      module.dispose();
      tf.dispose([...Object.values(state), ...Object.values(tensors)]);
    }
  });
});

describe('PyTorch names', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each([...layerCases, 'seq2seq'])('%s exports exactly the PyTorch state_dict keys, in order, with their shapes', (name) => {
    const spec = cases[name];
    const { state, tensors } = loadCase(name);
    const module = build(spec);
    const exported = exportTorchStateDict(module);
    expect(Object.keys(exported)).toEqual(spec.torchKeys);
    for (const key of spec.torchKeys) expect(exported[key].shape).toEqual(state[key].shape);
    // ... and they load back: the export of a loaded module is the PyTorch state itself.
    loadTorchStateDict(module, state);
    const reexported = exportTorchStateDict(module);
    for (const key of spec.torchKeys) expect(maxAbsDifference(reexported[key], state[key])).toBe(0);
    tf.dispose([...Object.values(exported), ...Object.values(reexported), ...Object.values(state), ...Object.values(tensors)]);
    module.dispose();
  });

  it('counts parameters as PyTorch; the fixture holds the design example size (49,258,496, as MIE counts it in battery.test.ts)', () => {
    const spec = cases['seq2seq'];
    expect(spec.exampleParameterCount).toBe(49_258_496);
    const small = build(spec);
    expect(small.countParameters()).toBe(spec.parameterCount);
    const layout = torchStateDictLayout(small);
    expect(layout.reduce((total, entry) => total + entry.shape.reduce((a, b) => a * b, 1), 0)).toBe(spec.parameterCount);
    small.dispose();
  });

  it('documents the mapping: fused in_proj_*, snake_case, multihead_attn, tied embedding aliases', () => {
    const model = new EncoderDecoderTransformer({
      srcVocabSize: 7, tgtVocabSize: 7, dModel: 4, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 8,
      shareEmbeddings: true, positionalEncoding: 'learned', maxSeqLength: 6, normFirst: true,
    });
    const layout = torchStateDictLayout(model, { prefix: 'model.' });
    const byName = Object.fromEntries(layout.map((entry) => [entry.torchName, entry]));
    expect(byName['model.encoder.embedding.weight']).toEqual({
      torchName: 'model.encoder.embedding.weight', mieNames: ['encoder.embedding.weight'], shape: [7, 4], aliases: ['model.decoder.embedding.weight'],
    });
    expect(byName['model.decoder.layers.0.multihead_attn.in_proj_weight'].mieNames).toEqual([
      'decoder.layers.0.crossAttn.qProj.weight', 'decoder.layers.0.crossAttn.kProj.weight', 'decoder.layers.0.crossAttn.vProj.weight',
    ]);
    expect(byName['model.decoder.layers.0.multihead_attn.in_proj_weight'].shape).toEqual([12, 4]);
    expect(Object.keys(byName)).toEqual(expect.arrayContaining([
      'model.encoder.positional_encoding.weight', 'model.decoder.positional_encoding.weight', 'model.encoder.norm.weight', 'model.decoder.norm.bias',
      'model.decoder.layers.0.self_attn.out_proj.weight', 'model.decoder.layers.0.norm3.bias',
    ]));
    expect(layout.flatMap((entry) => entry.mieNames).sort()).toEqual(Object.keys(model.stateDict()).sort());
    model.dispose();
  });
});

describe('loadTorchStateDict / exportTorchStateDict', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  const layerOptions = { dModel: 8, numHeads: 2, dFf: 16, dropout: 0 };

  it('round-trips: loading an export is the identity, and copies one module into another', () => {
    const a = new TransformerDecoderLayer(layerOptions);
    const b = new TransformerDecoderLayer(layerOptions);
    const before = Object.fromEntries(Object.entries(a.stateDict()).map(([k, v]) => [k, v.dataSync().slice()]));
    const state = exportTorchStateDict(a);
    loadTorchStateDict(a, state);
    for (const [k, v] of Object.entries(a.stateDict())) expect(v.dataSync()).toEqual(before[k]);
    loadTorchStateDict(b, state);
    for (const [k, v] of Object.entries(b.stateDict())) expect(v.dataSync()).toEqual(before[k]);
    tf.dispose(Object.values(state));
    a.dispose();
    b.dispose();
  });

  it('round-trips through a safetensors file, with the names PyTorch expects', () => {
    const spec = cases['seq2seq'];
    const model = (build(spec) as EncoderDecoderTransformer).eval();
    const state = exportTorchStateDict(model);
    const { tensors } = readSafetensors(writeSafetensors(state));
    expect(Object.keys(tensors).sort()).toEqual([...spec.torchKeys].sort());
    const copy = (build(spec) as EncoderDecoderTransformer).eval();
    loadTorchStateDict(copy, tensors);
    const src = tf.tensor2d([[3, 4, 5, 6, 2], [7, 8, 2, 0, 0]], [2, 5], 'int32');
    const tgt = tf.tensor2d([[1, 5, 6, 7], [1, 9, 11, 0]], [2, 4], 'int32');
    const [x, y] = [model.forward(src, tgt), copy.forward(src, tgt)];
    expect(maxAbsDifference(x, y)).toBe(0);
    tf.dispose([src, tgt, x, y, ...Object.values(state), ...Object.values(tensors)]);
    model.dispose();
    copy.dispose();
  });

  it('loads one part of a larger PyTorch state dict with a prefix (the seq2seq encoder)', () => {
    const spec = cases['seq2seq'];
    const { state, tensors } = loadCase('seq2seq');
    const model = build(spec).eval() as EncoderDecoderTransformer;
    loadTorchStateDict(model, state);
    const encoder = new TransformerEncoder({ ...model.encoder.config }).eval();
    const result = loadTorchStateDict(encoder, state, { prefix: 'encoder.' });
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [] });
    const ids = tf.cast(tensors.src, 'int32');
    const mask = model.paddingMask(ids) as tf.Tensor;
    const [x, y] = [model.encode(ids), encoder.forward(ids, { keyPaddingMask: mask })];
    expect(maxAbsDifference(x, y)).toBe(0);
    tf.dispose([ids, mask, x, y, ...Object.values(state), ...Object.values(tensors)]);
    model.dispose();
    encoder.dispose();
  });

  it('accepts a tied weight under both PyTorch names when they agree, and rejects it when they differ', () => {
    const spec = cases['seq2seq'];
    const { state, tensors } = loadCase('seq2seq');
    const model = build(spec);
    const tied = tf.clone(state['encoder.embedding.weight']);
    expect(() => loadTorchStateDict(model, { ...state, 'decoder.embedding.weight': tied })).not.toThrow();
    const untied = tf.add(tied, 1);
    expect(() => loadTorchStateDict(model, { ...state, 'decoder.embedding.weight': untied })).toThrow(
      '"decoder.embedding.weight" differs from "encoder.embedding.weight", but the module ties them (one shared weight)',
    );
    tf.dispose([tied, untied, ...Object.values(state), ...Object.values(tensors)]);
    model.dispose();
  });

  it('names every missing, unexpected and mis-shaped PyTorch key, and changes nothing', () => {
    const layer = new TransformerEncoderLayer(layerOptions);
    const state = exportTorchStateDict(new TransformerEncoderLayer(layerOptions));
    const before = Object.fromEntries(Object.entries(layer.stateDict()).map(([k, v]) => [k, v.dataSync().slice()]));
    const wrong = tf.zeros([24, 7]);
    const extra = tf.zeros([3]);
    const { 'norm2.bias': _missing, 'linear1.weight': _alsoMissing, ...rest } = state;
    const broken = { ...rest, 'self_attn.in_proj_weight': wrong, 'self_attn.bias_k': extra, 'norm3.weight': extra };
    let error: unknown;
    try {
      loadTorchStateDict(layer, broken);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MieSerializationError);
    expect((error as Error).message).toBe(
      'loadTorchStateDict(TransformerEncoderLayer): "self_attn.in_proj_weight" has shape [24, 7], expected [24, 8]; ' +
        'missing keys: "linear1.weight", "norm2.bias"; unexpected keys: "self_attn.bias_k", "norm3.weight".',
    );
    for (const [k, v] of Object.entries(layer.stateDict())) expect(v.dataSync()).toEqual(before[k]);

    // Not strict: missing and unexpected keys are reported, the rest is loaded; a wrong shape still fails.
    expect(() => loadTorchStateDict(layer, broken, { strict: false })).toThrow('"self_attn.in_proj_weight" has shape [24, 7], expected [24, 8].');
    const result = loadTorchStateDict(layer, { ...rest, 'self_attn.bias_k': extra }, { strict: false });
    expect(result).toEqual({ missingKeys: ['linear1.weight', 'norm2.bias'], unexpectedKeys: ['self_attn.bias_k'] });
    expect(layer.norm1.weight?.dataSync()).toEqual(state['norm1.weight'].dataSync());
    expect(layer.linear1.weight.dataSync()).toEqual(before['linear1.weight']);

    const disposed = tf.zeros([8]);
    disposed.dispose();
    expect(() => loadTorchStateDict(layer, { ...state, 'norm1.bias': disposed })).toThrow(
      'loadTorchStateDict(TransformerEncoderLayer): "norm1.bias" is not a live tensor (received tensor float32[8]).',
    );
    tf.dispose([wrong, extra, ...Object.values(state)]);
    layer.dispose();
  });

  it('casts integer tensors and loads torch.nn.MultiheadAttention names into MultiHeadAttention', () => {
    const attention = new MultiHeadAttention({ inputDim: 4, numHeads: 2 });
    const state = {
      in_proj_weight: tf.tensor2d(Array.from({ length: 48 }, (_, i) => i), [12, 4], 'int32'),
      in_proj_bias: tf.range(0, 12, 1, 'float32'),
      'out_proj.weight': tf.eye(4),
      'out_proj.bias': tf.zeros([4]),
    };
    loadTorchStateDict(attention, state);
    expect(attention.kProj.weight.dtype).toBe('float32');
    expect(Array.from(attention.kProj.weight.dataSync())).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i));
    expect(Array.from(attention.vProj.bias?.dataSync() ?? [])).toEqual([8, 9, 10, 11]);
    tf.dispose(Object.values(state));
    attention.dispose();
  });

  it('rejects what is not a module or a state dict', () => {
    const layer = new TransformerEncoderLayer(layerOptions);
    expect(() => loadTorchStateDict({} as never, {})).toThrow('loadTorchStateDict: argument "module" must be an MIE Module');
    expect(() => loadTorchStateDict(layer, tf.zeros([1]) as never)).toThrow('loadTorchStateDict: argument "state" must be an object of PyTorch name -> tf.Tensor');
    expect(() => exportTorchStateDict(layer, { prefix: 3 as never })).toThrow('exportTorchStateDict: option "prefix" must be a string');
    layer.dispose();
    const grouped = new TransformerEncoderLayer({ ...layerOptions, numKeyValueHeads: 1 });
    expect(() => exportTorchStateDict(grouped)).toThrow(/selfAttn has 1 key\/value heads for \d+ query heads; torch.nn.MultiheadAttention has no grouped key\/value heads/);
    expect(() => loadTorchStateDict(grouped, {})).toThrow(/no grouped key\/value heads/);
    grouped.dispose();
  });

  it('leaks no tensors when loading, exporting or failing', () => {
    const model = new EncoderDecoderTransformer({
      srcVocabSize: 9, tgtVocabSize: 9, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, shareEmbeddings: true,
    });
    const state = exportTorchStateDict(model);
    const start = tf.memory().numTensors;
    loadTorchStateDict(model, state);
    loadTorchStateDict(model, { ...state, 'decoder.embedding.weight': state['encoder.embedding.weight'] });
    expect(() => loadTorchStateDict(model, { ...state, extra: state['encoder.embedding.weight'] })).toThrow(MieSerializationError);
    const { 'encoder.embedding.weight': _dropped, ...partial } = state;
    loadTorchStateDict(model, partial, { strict: false });
    tf.dispose(Object.values(exportTorchStateDict(model)));
    torchStateDictLayout(model);
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose(Object.values(state));
    model.dispose();
  });
});
