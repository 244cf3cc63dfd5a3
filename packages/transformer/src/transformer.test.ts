import { BaseModel, MieConfigError, MieShapeError, setBackend, setSeed, stateLayout, tf, type BackendChoice } from '@mie/core';
import { SinusoidalEncoding } from '@mie/positional';
import { runModuleTest } from '@mie/test-utils';
import { maxAbsDifference } from './__tests__/fixtures';
import { loadModelCase, modelCases } from './__tests__/model-fixtures';
import { exportTorchStateDict, loadTorchStateDict } from './torch-state-dict';
import { Transformer, type TransformerOptions } from './transformer';

const linear = (i: number, o: number) => i * o + o;
const encoderLayer = (d: number, f: number) => 4 * linear(d, d) + linear(d, f) + linear(f, d) + 2 * 2 * d;

const cases = modelCases();
const transformerCases = Object.keys(cases).filter((name) => cases[name].kind === 'Transformer');

/** The reference is `encoder = nn.TransformerEncoder(...)` inside a module: MIE's stack is the model itself. */
const mieTorchName = (key: string) => key.replace(/^encoder\./, '');
function torchState(state: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(state).map(([key, value]) => [mieTorchName(key), value]));
}

beforeAll(() => setSeed(5));

describe.each<BackendChoice>(['cpu', 'wasm'])('Transformer matches PyTorch on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it('has both reference cases', () => {
    expect([...transformerCases].sort()).toEqual(['transformer.post.sinusoidal', 'transformer.pre.learned']);
  });

  it.each(transformerCases)('%s within 1e-5', (name) => {
    const before = tf.memory().numTensors;
    const { state, tensors } = loadModelCase(name);
    const model = new Transformer(cases[name].options as TransformerOptions).eval();
    try {
      loadTorchStateDict(model, torchState(state));
      const output = model.forward(tensors.x, { mask: tensors.mask, keyPaddingMask: tensors.keyPaddingMask });
      expect(maxAbsDifference(output, tensors.output)).toBeLessThan(1e-5);
      output.dispose();
    } finally {
      model.dispose();
      tf.dispose([...Object.values(state), ...Object.values(tensors)]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('Transformer', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each(transformerCases)('%s: the PyTorch parameter count and state-dict keys, in order', (name) => {
    const spec = cases[name];
    const model = new Transformer(spec.options as TransformerOptions);
    expect(model.countParameters()).toBe(spec.parameterCount);
    const exported = exportTorchStateDict(model);
    expect(Object.keys(exported)).toEqual(spec.stateKeys.map(mieTorchName));
    tf.dispose(Object.values(exported));
    model.dispose();
  });

  it("has the design's defaults (dModel 512, 8 heads, 6 post-norm layers, dFf 2048, sinusoidal positions)", () => {
    const model = new Transformer();
    expect(model.config).toEqual({
      dModel: 512, numHeads: 8, numKeyValueHeads: 8, numLayers: 6, dFf: 2048, dropout: 0.1, maxSeqLength: 5000, positionalEncoding: 'sinusoidal',
      inputDim: 512, outputDim: null, activation: 'relu', normFirst: false, layerNormEps: 1e-5, rotaryScaling: null,
    });
    expect(model.countParameters()).toBe(6 * encoderLayer(512, 2048));
    expect(model.inputProjection).toBeNull();
    expect(model.outputProjection).toBeNull();
    expect(model.norm).toBeNull();
    expect(model.positionalEncoding).toBeInstanceOf(SinusoidalEncoding);
    expect(model.layers).toHaveLength(6);
    model.dispose();
  });

  it('names its state as the design: inputProjection, positionalEncoding, layers.N, norm (pre-norm), outputProjection', () => {
    const layout = stateLayout(
      () => new Transformer({ dModel: 8, numHeads: 2, numLayers: 2, dFf: 16, inputDim: 5, outputDim: 3, positionalEncoding: 'learned', maxSeqLength: 7, normFirst: true }),
    );
    const names = layout.entries.map((e) => `${e.name} [${e.shape.join(', ')}]`);
    expect(names.slice(0, 3)).toEqual(['inputProjection.weight [8, 5]', 'inputProjection.bias [8]', 'positionalEncoding.weight [7, 8]']);
    expect(names).toContain('layers.1.selfAttn.qProj.weight [8, 8]');
    expect(names).toContain('layers.1.linear1.weight [16, 8]');
    expect(names.slice(-4)).toEqual(['norm.weight [8]', 'norm.bias [8]', 'outputProjection.weight [3, 8]', 'outputProjection.bias [3]']);
    expect(layout.parameterElements).toBe(linear(5, 8) + 7 * 8 + 2 * encoderLayer(8, 16) + 2 * 8 + linear(8, 3));
  });

  it('is permutation-equivariant without positions, and position-aware with rotary, ALiBi and sinusoidal ones', () => {
    const x = tf.randomNormal([1, 6, 8], 0, 1, 'float32', 3);
    const order = tf.tensor1d([5, 2, 0, 4, 1, 3], 'int32');
    const shuffled = tf.gather(x, order, 1);
    const gaps: Record<string, number> = {};
    for (const positionalEncoding of ['none', 'rotary', 'alibi', 'sinusoidal'] as const) {
      const model = new Transformer({ dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, positionalEncoding, maxSeqLength: 8 }).eval();
      const [y, yShuffled] = [model.forward(x), model.forward(shuffled)];
      gaps[positionalEncoding] = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.gather(y, order, 1), yShuffled))).dataSync()[0]);
      tf.dispose([y, yShuffled]);
      model.dispose();
    }
    expect(gaps.none).toBeLessThan(1e-5);
    expect(gaps.rotary).toBeGreaterThan(1e-2);
    expect(gaps.alibi).toBeGreaterThan(1e-2);
    expect(gaps.sinusoidal).toBeGreaterThan(1e-2);
    tf.dispose([x, order, shuffled]);
  });

  it('returns every layer\'s self-attention weights; padded keys get none', () => {
    const before = tf.memory().numTensors;
    const model = new Transformer({ dModel: 8, numHeads: 2, numLayers: 3, dFf: 16, inputDim: 4, outputDim: 2, maxSeqLength: 10 }).eval();
    const x = tf.randomNormal([2, 5, 4], 0, 1, 'float32', 9);
    const keyPaddingMask = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]);
    const { output, selfAttention } = model.forwardWithAttention(x, { keyPaddingMask });
    expect(output.shape).toEqual([2, 5, 2]);
    expect(selfAttention.map((w) => w.shape)).toEqual([[2, 2, 5, 5], [2, 2, 5, 5], [2, 2, 5, 5]]);
    const weights = selfAttention[2].arraySync() as number[][][][];
    for (const row of weights[1].flat()) {
      expect(row[3] + row[4]).toBe(0);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    const plain = model.forward(x, { keyPaddingMask });
    expect(maxAbsDifference(plain, output)).toBe(0);
    // A causal call is not the bidirectional one.
    const causal = model.forward(x, { causal: true });
    const full = model.forward(x);
    expect(maxAbsDifference(causal, full)).toBeGreaterThan(1e-3);
    tf.dispose([x, keyPaddingMask, output, ...selfAttention, plain, causal, full]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('applies dropout in training mode only', () => {
    const model = new Transformer({ dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, dropout: 0.5, maxSeqLength: 8 });
    const x = tf.randomNormal([2, 4, 8], 0, 1, 'float32', 2);
    const [a, b] = [model.forward(x), model.forward(x)];
    expect(maxAbsDifference(a, b)).toBeGreaterThan(1e-3);
    model.eval();
    const [c, d] = [model.forward(x), model.forward(x)];
    expect(maxAbsDifference(c, d)).toBe(0);
    tf.dispose([x, a, b, c, d]);
    model.dispose();
  });

  it('is a registered BaseModel: saved bytes load back as a Transformer with the same outputs', () => {
    const model = new Transformer({ dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, inputDim: 3, outputDim: 2, positionalEncoding: 'learned', maxSeqLength: 6 }).eval();
    expect(model).toBeInstanceOf(BaseModel);
    expect(model.className).toBe('Transformer');
    const copy = BaseModel.fromBuffers(model.toBuffers()).eval();
    expect(copy).toBeInstanceOf(Transformer);
    expect(copy.config).toEqual(model.config);
    const x = tf.randomNormal([1, 6, 3], 0, 1, 'float32', 4);
    const [y, z] = [model.forward(x), (copy as Transformer).forward(x)];
    expect(maxAbsDifference(y, z)).toBe(0);
    tf.dispose([x, y, z]);
    model.dispose();
    copy.dispose();
  });

  it('fires forward hooks once per call, from forward and forwardWithAttention, and its layers\' too', () => {
    const model = new Transformer({ dModel: 8, numHeads: 2, numLayers: 2, dFf: 16, inputDim: 3, maxSeqLength: 6 }).eval();
    const seen: string[] = [];
    const shapes: number[][] = [];
    model.registerForwardHook((_module, _inputs, output, { method }) => {
      seen.push(`model.${method}`);
      shapes.push((output as tf.Tensor).shape);
    });
    model.layers[1].registerForwardHook((_module, _inputs, _output, { method }) => {
      seen.push(`layers.1.${method}`);
    });
    const x = tf.randomNormal([1, 4, 3], 0, 1, 'float32', 8);
    const y = model.forward(x);
    const { output, selfAttention } = model.forwardWithAttention(x);
    expect(seen).toEqual(['layers.1.forwardWithAttention', 'model.forward', 'layers.1.forwardWithAttention', 'model.forwardWithAttention']);
    expect(shapes).toEqual([[1, 4, 8], [1, 4, 8]]);
    tf.dispose([x, y, output, ...selfAttention]);
    model.dispose();
  });

  it('copies its options', () => {
    const options = Object.freeze({ dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, outputDim: 4 });
    const model = new Transformer(options);
    expect(model.config).not.toBe(options);
    expect(new Transformer(model.config).config).toEqual(model.config);
    model.dispose();
  });

  describe('errors', () => {
    let model: Transformer;
    beforeAll(() => {
      model = new Transformer({ dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, inputDim: 6, maxSeqLength: 4 });
    });
    afterAll(() => model.dispose());

    it.each([
      ['dModel not divisible by numHeads', { dModel: 10, numHeads: 4 }, /^Transformer: option "dModel" must be divisible by numHeads \(4\)\. Received: 10\.$/],
      ['a fractional inputDim', { dModel: 8, numHeads: 2, inputDim: 2.5 }, /^Transformer: option "inputDim" must be a positive integer\. Received: 2\.5\.$/],
      ['outputDim 0', { dModel: 8, numHeads: 2, outputDim: 0 }, /^Transformer: option "outputDim" must be a positive integer\. Received: 0\.$/],
      ['numLayers 0', { dModel: 8, numHeads: 2, numLayers: 0 }, /^Transformer: option "numLayers" must be a positive integer/],
      ['dropout 1', { dModel: 8, numHeads: 2, dropout: 1 }, /^Transformer: option "dropout" must be a probability in \[0, 1\)/],
      ['an unknown positionalEncoding', { dModel: 8, numHeads: 2, positionalEncoding: 'relative' }, /^Transformer: option "positionalEncoding" must be one of "sinusoidal", "learned", "rotary", "alibi", "t5", "none"\. Received: "relative"\.$/],
      ['rotary with an odd head size', { dModel: 6, numHeads: 2, positionalEncoding: 'rotary' }, /^Transformer: option "positionalEncoding" needs an even head size; dModel \/ numHeads is 3\. Received: "rotary"\.$/],
      ['numKeyValueHeads not dividing numHeads', { dModel: 12, numHeads: 6, numKeyValueHeads: 4 }, /^Transformer: option "numKeyValueHeads" must divide numHeads \(6\)\. Received: 4\.$/],
      ['an unknown activation', { dModel: 8, numHeads: 2, activation: 'swish' }, /^Transformer: option "activation" must be one of /],
      ['a non-boolean normFirst', { dModel: 8, numHeads: 2, normFirst: 1 }, /^Transformer: option "normFirst" must be a boolean/],
      ['a token vocabulary', { dModel: 8, numHeads: 2, vocabSize: 10 }, /^Transformer: unknown option "vocabSize"; the options are dModel, numHeads, numKeyValueHeads, numLayers, dFf, dropout, maxSeqLength, activation, normFirst, layerNormEps, positionalEncoding, rotaryScaling, inputDim, outputDim\.$/],
    ])('rejects %s with MieConfigError', (_label, options, message) => {
      const build = () => new Transformer(options as never);
      expect(build).toThrow(MieConfigError);
      expect(build).toThrow(message);
    });

    it('rejects inputs of the wrong rank, width, dtype or length with MieShapeError naming input x', () => {
      const cases: Array<[tf.Tensor, RegExp]> = [
        [tf.zeros([4, 6]), /^Transformer: input x must have shape \[batch, seq, inputDim = 6\]\. Received: tensor float32\[4, 6\]\.$/],
        [tf.zeros([1, 4, 8]), /^Transformer: input x must have shape \[\.\.\., 6\] \(last dimension = inputDim\)\. Received: tensor float32\[1, 4, 8\]\.$/],
        [tf.zeros([1, 4, 6], 'int32'), /^Transformer: input x must have dtype float32/],
        [tf.zeros([1, 5, 6]), /^Transformer: input x has 5 positions, but maxSeqLength is 4/],
        [tf.zeros([1, 0, 6]), /^Transformer: input x must hold at least one position/],
      ];
      for (const [x, message] of cases) {
        expect(() => model.forward(x)).toThrow(MieShapeError);
        expect(() => model.forward(x)).toThrow(message);
        x.dispose();
      }
    });

    it('rejects bad call options and masks', () => {
      const x = tf.zeros([2, 3, 6]);
      const mask = tf.ones([2, 4]);
      expect(() => model.forward(x, { keyPaddingMsk: mask } as never)).toThrow(MieConfigError);
      expect(() => model.forward(x, { keyPaddingMsk: mask } as never)).toThrow(/^Transformer\.forward: unknown option "keyPaddingMsk"; the options are mask, keyPaddingMask, causal\.$/);
      expect(() => model.forward(x, { keyPaddingMask: mask })).toThrow(MieShapeError);
      tf.dispose([x, mask]);
    });

    it('leaks nothing when it refuses', () => {
      const x = tf.zeros([1, 5, 6]);
      const before = tf.memory().numTensors;
      expect(() => model.forward(x)).toThrow(MieShapeError);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });
  });
});

describe('Transformer through the shared battery', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });
  const x = (width: number) => tf.randomNormal([2, 5, width], 0, 1, 'float32', 7);

  it('post-norm, sinusoidal, both projections, key padding', async () => {
    await runModuleTest(
      () => new Transformer({ dModel: 16, numHeads: 4, numLayers: 2, dFf: 32, inputDim: 6, outputDim: 3, maxSeqLength: 8 }),
      () => [x(6), { keyPaddingMask: tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]) }],
      { expectedParameterCount: linear(6, 16) + 2 * encoderLayer(16, 32) + linear(16, 3) },
    );
  });

  it('pre-norm gelu, learned positions, a causal mask', async () => {
    await runModuleTest(
      () => new Transformer({ dModel: 16, numHeads: 2, numLayers: 2, dFf: 32, positionalEncoding: 'learned', maxSeqLength: 8, normFirst: true, activation: 'gelu' }),
      () => [x(16), { causal: true }],
      { expectedParameterCount: 8 * 16 + 2 * encoderLayer(16, 32) + 2 * 16 },
    );
  });

  it('grouped-query attention with ALiBi, causal', async () => {
    const keyValueWidth = 2 * (16 / 4); // 2 key/value heads of size 4: k and v projections [8, 16]
    await runModuleTest(
      () => new Transformer({ dModel: 16, numHeads: 4, numKeyValueHeads: 2, numLayers: 1, dFf: 32, positionalEncoding: 'alibi', maxSeqLength: 8 }),
      () => [x(16), { causal: true }],
      { expectedParameterCount: encoderLayer(16, 32) - 2 * linear(16, 16) + 2 * linear(16, keyValueWidth) },
    );
  });

  it('rotary, with an output projection', async () => {
    await runModuleTest(
      () => new Transformer({ dModel: 16, numHeads: 2, numLayers: 1, dFf: 32, positionalEncoding: 'rotary', maxSeqLength: 8, outputDim: 4 }),
      () => [x(16)],
      { expectedParameterCount: encoderLayer(16, 32) + linear(16, 4) },
    );
  });
});
