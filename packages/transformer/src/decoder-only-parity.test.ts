import { setBackend, tf, type BackendChoice } from '@mie/core';
import { maxAbsDifference } from './__tests__/fixtures';
import { loadModelCase, modelCases } from './__tests__/model-fixtures';
import { DecoderOnlyTransformer, type DecoderOnlyTransformerOptions } from './decoder-only-transformer';

// References from scripts/fixtures/transformer_models.py: a hand-written float64 decoder-only
// model (itself checked against nn.TransformerEncoderLayer where PyTorch has the same blocks),
// with its state under MIE's names.
const cases = modelCases();
const decoderOnlyCases = Object.keys(cases).filter((name) => cases[name].kind === 'DecoderOnlyTransformer');

describe.each<BackendChoice>(['cpu', 'wasm'])('DecoderOnlyTransformer matches the PyTorch reference on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it('has the three reference cases', () => {
    expect([...decoderOnlyCases].sort()).toEqual(['decoderOnly.post.sinusoidal', 'decoderOnly.pre.alibi', 'decoderOnly.pre.rotary']);
  });

  it.each(decoderOnlyCases)('%s within 1e-5', (name) => {
    const before = tf.memory().numTensors;
    const { state, tensors } = loadModelCase(name);
    const model = new DecoderOnlyTransformer(cases[name].options as unknown as DecoderOnlyTransformerOptions).eval();
    try {
      model.loadStateDict(state);
      const logits = model.forward(tensors.ids, tensors.keyPaddingMask ? { keyPaddingMask: tensors.keyPaddingMask } : undefined);
      expect(maxAbsDifference(logits, tensors.logits)).toBeLessThan(1e-5);
      logits.dispose();
    } finally {
      model.dispose();
      tf.dispose([...Object.values(state), ...Object.values(tensors)]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('DecoderOnlyTransformer state names', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each(decoderOnlyCases)('%s: the reference names, in order, and its parameter count', (name) => {
    const spec = cases[name];
    const model = new DecoderOnlyTransformer(spec.options as unknown as DecoderOnlyTransformerOptions);
    expect(Object.keys(model.stateDict())).toEqual(spec.stateKeys);
    expect(model.countParameters()).toBe(spec.parameterCount);
    model.dispose();
  });
});
