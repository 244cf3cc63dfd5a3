import { MieConfigError, MieShapeError, setBackend, tf } from '@mie/core';
import { runModuleTest, withInputScale } from '@mie/test-utils';
import { fromFixture, loadFixture, maxAbsDifference, type FixtureTensor } from './__tests__/fixtures';
import { PositionalEncoding } from './positional-encoding';
import { SinusoidalEncoding } from './sinusoidal-encoding';

// @mie/plot is an optional peer these tests run without (as positional-encoding.test.ts).
jest.mock(
  '@mie/plot',
  () => {
    throw Object.assign(new Error("Cannot find module '@mie/plot'"), { code: 'MODULE_NOT_FOUND' });
  },
  { virtual: true },
);

interface SinusoidalFixture {
  cases: Array<{ maxSeqLength: number; dModel: number; table: FixtureTensor }>;
}
interface ForwardFixture {
  maxSeqLength: number;
  x: FixtureTensor;
  xOdd: FixtureTensor;
  cases: Array<{ encodingType: 'sinusoidal' | 'learned'; dModel: number; input: 'x' | 'xOdd'; offset: number; output: FixtureTensor }>;
}

// Written by scripts/fixtures/positional.py (PyTorch, float64).
const sinusoidal = loadFixture<SinusoidalFixture>('sinusoidal.json');
const forwardFixture = loadFixture<ForwardFixture>('positional-encoding.json');
const sinusoidalForwardCases = forwardFixture.cases.filter((c) => c.encodingType === 'sinusoidal');

describe.each(['cpu', 'wasm'] as const)('SinusoidalEncoding matches PyTorch on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each(sinusoidal.cases.map((c) => [`dModel ${c.dModel}, ${c.maxSeqLength} positions`, c] as const))('table, %s, within 1e-6', (_label, c) => {
    const before = tf.memory().numTensors;
    const encoding = new SinusoidalEncoding({ dModel: c.dModel, maxSeqLength: c.maxSeqLength });
    expect(maxAbsDifference(encoding.table as tf.Tensor, c.table)).toBeLessThan(1e-6);
    const all = encoding.getEncodings();
    expect(maxAbsDifference(all, c.table)).toBeLessThan(1e-6);
    all.dispose();
    encoding.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('has sinusoidal forward cases to check', () => {
    expect(sinusoidalForwardCases.length).toBeGreaterThan(0);
  });

  it.each(sinusoidalForwardCases.map((c) => [`dModel ${c.dModel} offset ${c.offset}`, c] as const))('forward in eval mode, %s, within 1e-6', (_label, c) => {
    const before = tf.memory().numTensors;
    const encoding = new SinusoidalEncoding({ dModel: c.dModel, maxSeqLength: forwardFixture.maxSeqLength }).eval();
    const x = fromFixture(forwardFixture[c.input]);
    const y = encoding.forward(x, { offset: c.offset });
    expect(maxAbsDifference(y, c.output)).toBeLessThan(1e-6);
    tf.dispose([x, y]);
    encoding.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('SinusoidalEncoding', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('gives exactly the values of PositionalEncoding({ encodingType: "sinusoidal" }), in eval and training mode', () => {
    const before = tf.memory().numTensors;
    const options = { dModel: 10, maxSeqLength: 40, dropout: 0.3 };
    const encoding = new SinusoidalEncoding(options).eval();
    const reference = new PositionalEncoding({ ...options, encodingType: 'sinusoidal' }).eval();
    expect(encoding).toBeInstanceOf(PositionalEncoding);
    expect(maxAbsDifference(encoding.table as tf.Tensor, reference.table as tf.Tensor)).toBe(0);
    const x = tf.randomNormal([3, 12, 10], 0, 1, 'float32', 4);
    const [a, b] = [encoding.forward(x, { offset: 17 }), reference.forward(x, { offset: 17 })];
    expect(maxAbsDifference(a, b)).toBe(0);
    // The encodings are there: the output is not the input.
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, x))).dataSync()[0])).toBeGreaterThan(0.5);
    // Training mode: dropout with the same rate (inverted: kept values scaled by 1 / (1 - p)).
    encoding.train();
    const zeros = tf.zeros([8, 40, 10]);
    const dropped = encoding.forward(zeros);
    const kept = tf.tidy(() => tf.mean(tf.cast(tf.notEqual(dropped, 0), 'float32')).dataSync()[0]);
    expect(kept).toBeGreaterThan(0.6);
    expect(kept).toBeLessThan(0.8);
    tf.dispose([x, a, b, zeros, dropped]);
    encoding.dispose();
    reference.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('has defaults maxSeqLength 5000 and dropout 0.1, no parameters and no state', () => {
    const encoding = new SinusoidalEncoding({ dModel: 6 });
    expect(encoding.config).toEqual({ dModel: 6, maxSeqLength: 5000, dropout: 0.1, encodingType: 'sinusoidal' });
    expect(encoding.table?.shape).toEqual([5000, 6]);
    expect(encoding.countParameters()).toBe(0);
    expect(encoding.stateDict()).toEqual({});
    encoding.dispose();
  });

  it('copies its options and rebuilds from its config, and from a sinusoidal PositionalEncoding config', () => {
    const frozen = Object.freeze({ dModel: 4, maxSeqLength: 9, dropout: 0 });
    const encoding = new SinusoidalEncoding(frozen);
    const twin = new SinusoidalEncoding(encoding.config);
    expect(twin.config).toEqual(encoding.config);
    expect(encoding.config).not.toBe(frozen);
    const positional = new PositionalEncoding({ dModel: 4, maxSeqLength: 9, dropout: 0 });
    const fromPositional = new SinusoidalEncoding({ ...positional.config, encodingType: 'sinusoidal' });
    expect(fromPositional.config).toEqual(positional.config);
    [encoding, twin, positional, fromPositional].forEach((m) => m.dispose());
  });

  it('draws the sinusoidal heatmap', async () => {
    const encoding = new SinusoidalEncoding({ dModel: 8, maxSeqLength: 16 });
    const heatmap = await encoding.encodingHeatmap({ maxPositions: 4 });
    expect(heatmap.title).toBe('Sinusoidal positional encoding (dModel = 8)');
    expect(heatmap.values[1][0]).toBeCloseTo(Math.sin(1), 6);
    expect(heatmap.values[1][1]).toBeCloseTo(Math.cos(1), 6);
    expect([heatmap.vmin, heatmap.vmax]).toEqual([-1, 1]);
    encoding.dispose();
  });

  describe('errors name SinusoidalEncoding', () => {
    it.each([
      ['a missing dModel', {}, /^SinusoidalEncoding: option "dModel" must be a positive integer\. Received: undefined\.$/],
      ['maxSeqLength 0', { dModel: 8, maxSeqLength: 0 }, /^SinusoidalEncoding: option "maxSeqLength" must be a positive integer\. Received: 0\.$/],
      ['dropout 1', { dModel: 8, dropout: 1 }, /^SinusoidalEncoding: option "dropout" must be a probability in \[0, 1\)\. Received: 1\.$/],
      ['a learned encodingType', { dModel: 8, encodingType: 'learned' }, /^SinusoidalEncoding: option "encodingType" must be "sinusoidal" .*Received: "learned"\.$/],
      ['a misspelt option', { dModel: 8, maxSeqLen: 10 }, /^SinusoidalEncoding: unknown option "maxSeqLen"; the options are dModel, maxSeqLength, dropout, encodingType\.$/],
    ])('rejects %s with MieConfigError', (_label, options, message) => {
      const build = () => new SinusoidalEncoding(options as never);
      expect(build).toThrow(MieConfigError);
      expect(build).toThrow(message);
    });

    it('in forward, getEncodings and after dispose', () => {
      const encoding = new SinusoidalEncoding({ dModel: 8, maxSeqLength: 10 });
      const cases: Array<[tf.Tensor, RegExp]> = [
        [tf.zeros([4, 8]), /^SinusoidalEncoding: input x must have shape \[batch, seq, dModel = 8\]\. Received: tensor float32\[4, 8\]\.$/],
        [tf.zeros([1, 4, 6]), /^SinusoidalEncoding: input x must have shape \[\.\.\., 8\] \(last dimension = dModel\)\./],
        [tf.zeros([1, 11, 8]), /^SinusoidalEncoding: input x needs sequence length 11, but maxSeqLength is 10/],
      ];
      for (const [x, message] of cases) {
        expect(() => encoding.forward(x)).toThrow(MieShapeError);
        expect(() => encoding.forward(x)).toThrow(message);
        x.dispose();
      }
      const x = tf.zeros([1, 2, 8]);
      expect(() => encoding.forward(x, { offest: 1 } as never)).toThrow(/^SinusoidalEncoding\.forward: unknown option "offest"/);
      expect(() => encoding.getEncodings({ offset: 9, length: 2 })).toThrow(/^SinusoidalEncoding: getEncodings needs positions 9\.\.10/);
      encoding.dispose();
      expect(() => encoding.forward(x)).toThrow(/^SinusoidalEncoding\b.*: the module was disposed/);
      x.dispose();
    });
  });
});

describe('SinusoidalEncoding through the shared battery', () => {
  const input = () => [tf.randomNormal([2, 5, 8], 0, 1, 'float32', 13), { offset: 4 }];

  it('passes directly (no parameters)', async () => {
    await runModuleTest(() => new SinusoidalEncoding({ dModel: 8, maxSeqLength: 16 }), input, { expectedParameterCount: 0 });
  });

  // Behind a trainable input scale the battery also checks that gradients flow through it, on cpu and wasm.
  it('passes behind a trainable input scale', async () => {
    const Scaled = withInputScale(SinusoidalEncoding);
    await runModuleTest(() => new Scaled({ dModel: 8, maxSeqLength: 16, dropout: 0.2 }), input, { expectedParameterCount: 1 });
  });
});
