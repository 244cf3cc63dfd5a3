import { MieConfigError, MieShapeError, clearSeed, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest, withInputScale } from '@mie/test-utils';
import { fromFixture, loadFixture, maxAbsDifference, type FixtureTensor } from './__tests__/fixtures';
import { PositionalEncoding, sinusoidalEncodings } from './positional-encoding';

// @mie/plot is an optional peer these tests run without, even where the pnpm bin shim's NODE_PATH
// would make the workspace copy resolvable (its own tests draw through this package).
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
  learnedWeight: FixtureTensor;
  cases: Array<{ encodingType: 'sinusoidal' | 'learned'; dModel: number; input: 'x' | 'xOdd'; offset: number; output: FixtureTensor }>;
}

const sinusoidal = loadFixture<SinusoidalFixture>('sinusoidal.json');
const forwardFixture = loadFixture<ForwardFixture>('positional-encoding.json');
const TOLERANCE = 1e-5;

afterEach(() => clearSeed());

describe.each(['cpu', 'wasm'] as const)('PositionalEncoding matches PyTorch on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each(sinusoidal.cases.map((c) => [`dModel ${c.dModel}`, c] as const))('sinusoidal table, %s', (_label, c) => {
    const pe = new PositionalEncoding({ dModel: c.dModel, maxSeqLength: c.maxSeqLength });
    expect(maxAbsDifference(pe.table as tf.Tensor, c.table)).toBeLessThan(TOLERANCE);
    pe.dispose();
  });

  it.each(forwardFixture.cases.map((c) => [`${c.encodingType} dModel ${c.dModel} offset ${c.offset}`, c] as const))(
    'forward in eval mode, %s',
    (_label, c) => {
      const before = tf.memory().numTensors;
      const pe = new PositionalEncoding({ dModel: c.dModel, maxSeqLength: forwardFixture.maxSeqLength, encodingType: c.encodingType }).eval();
      if (c.encodingType === 'learned') {
        const weight = fromFixture(forwardFixture.learnedWeight);
        pe.loadStateDict({ weight });
        weight.dispose();
      }
      const x = fromFixture(forwardFixture[c.input]);
      const y = pe.forward(x, { offset: c.offset });
      expect(maxAbsDifference(y, c.output)).toBeLessThan(TOLERANCE);
      tf.dispose([x, y]);
      pe.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});

describe('PositionalEncoding', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('follows the formula at long positions, with one fewer cosine column for odd dModel', () => {
    for (const dModel of [6, 5]) {
      const table = sinusoidalEncodings(5000, dModel);
      const values = table.arraySync();
      for (const p of [0, 1, 999, 4999]) {
        for (let column = 0; column < dModel; column++) {
          const i = Math.floor(column / 2);
          const angle = p / 10000 ** ((2 * i) / dModel);
          const expected = column % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
          expect(Math.abs(values[p][column] - expected)).toBeLessThan(1e-6);
        }
      }
      table.dispose();
    }
  });

  it('keeps the sinusoidal table out of the state and frees it on dispose', () => {
    const before = tf.memory().numTensors;
    const pe = new PositionalEncoding({ dModel: 16, maxSeqLength: 32 });
    expect(pe.config).toEqual({ dModel: 16, maxSeqLength: 32, dropout: 0.1, encodingType: 'sinusoidal' });
    expect(pe.namedParameters()).toEqual([]);
    expect(pe.stateDict()).toEqual({});
    expect(pe.countParameters()).toBe(0);
    expect(pe.table?.shape).toEqual([32, 16]);
    expect(tf.memory().numTensors).toBe(before + 1);
    pe.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => pe.forward(tf.zeros([1, 2, 16]))).toThrow(/disposed/);
  });

  it('learns a weight [maxSeqLength, dModel] initialised from N(0, 0.02^2)', () => {
    setSeed(3);
    const pe = new PositionalEncoding({ dModel: 64, maxSeqLength: 500, encodingType: 'learned' });
    expect(pe.namedParameters().map(([name, v]) => [name, v.shape, v.trainable])).toEqual([['weight', [500, 64], true]]);
    expect(pe.table).toBeUndefined();
    expect(pe.countParameters()).toBe(500 * 64);
    const { mean, variance } = tf.moments(pe.weight as tf.Variable);
    expect(Math.abs(mean.dataSync()[0])).toBeLessThan(0.001);
    expect(Math.abs(Math.sqrt(variance.dataSync()[0]) / 0.02 - 1)).toBeLessThan(0.03);
    tf.dispose([mean, variance]);
    pe.dispose();
  });

  it('adds the encoding of position offset + t to row t', () => {
    const pe = new PositionalEncoding({ dModel: 8, maxSeqLength: 20 }).eval();
    const x = tf.randomNormal([2, 12, 8], 0, 1, 'float32', 5);
    const full = pe.forward(x);
    const tail = tf.slice(x, [0, 7, 0], [2, 5, 8]);
    const stepwise = pe.forward(tail, { offset: 7 });
    expect(maxAbsDifference(stepwise, tf.slice(full, [0, 7, 0], [2, 5, 8]))).toBe(0);
    // getEncodings returns the same rows.
    const rows = pe.getEncodings({ offset: 7, length: 5 });
    expect(maxAbsDifference(tf.sub(stepwise, tail), tf.broadcastTo(rows, [2, 5, 8]))).toBeLessThan(1e-6);
    tf.dispose([x, full, tail, stepwise, rows]);
    pe.dispose();
  });

  it('applies inverted dropout in training mode only', () => {
    setSeed(1);
    const pe = new PositionalEncoding({ dModel: 8, maxSeqLength: 64, dropout: 0.5 });
    expect(pe.training).toBe(true);
    const x = tf.zeros([4, 64, 8]);
    const clean = pe.getEncodings({ length: 64 });
    const trained = pe.forward(x);
    const kept = tf.notEqual(trained, 0);
    const fraction = tf.mean(tf.cast(kept, 'float32')).dataSync()[0];
    expect(fraction).toBeGreaterThan(0.4);
    expect(fraction).toBeLessThan(0.6);
    // Kept entries are scaled by 1 / (1 - p) = 2 (where the encoding itself is not zero).
    const scaled = tf.where(kept, tf.sub(trained, tf.mul(tf.broadcastTo(clean, [4, 64, 8]), 2)), tf.zerosLike(trained));
    expect(tf.max(tf.abs(scaled)).dataSync()[0]).toBeLessThan(1e-6);
    pe.eval();
    const evaluated = pe.forward(x);
    expect(maxAbsDifference(evaluated, tf.broadcastTo(clean, [4, 64, 8]))).toBe(0);
    tf.dispose([x, clean, trained, kept, scaled, evaluated]);
    pe.dispose();
  });

  it('does not leak tensors in forward, getEncodings or visualisation', async () => {
    for (const encodingType of ['sinusoidal', 'learned'] as const) {
      const pe = new PositionalEncoding({ dModel: 8, maxSeqLength: 16, encodingType });
      const x = tf.ones([1, 4, 8]);
      const before = tf.memory().numTensors;
      tf.dispose(pe.forward(x, { offset: 2 }));
      tf.dispose(pe.eval().forward(x));
      tf.dispose(pe.getEncodings());
      await pe.encodingHeatmap({ maxPositions: 8 });
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      pe.dispose();
    }
  });

  it('copies its options and rebuilds from config', () => {
    const options = { dModel: 4, maxSeqLength: 10, dropout: 0, encodingType: 'learned' as const };
    const frozen = Object.freeze({ ...options });
    const pe = new PositionalEncoding(frozen);
    const twin = new PositionalEncoding(pe.config);
    expect(twin.config).toEqual(options);
    expect(pe.config).not.toBe(frozen);
    pe.dispose();
    twin.dispose();
  });

  describe('errors', () => {
    let pe: PositionalEncoding;
    beforeAll(() => {
      pe = new PositionalEncoding({ dModel: 8, maxSeqLength: 10 });
    });
    afterAll(() => pe.dispose());

    it.each([
      ['a missing dModel', {}, /PositionalEncoding: option "dModel" must be a positive integer\. Received: undefined\./],
      ['a fractional dModel', { dModel: 7.5 }, /option "dModel" must be a positive integer\. Received: 7\.5\./],
      ['maxSeqLength 0', { dModel: 8, maxSeqLength: 0 }, /option "maxSeqLength" must be a positive integer\. Received: 0\./],
      ['dropout 1.5', { dModel: 8, dropout: 1.5 }, /option "dropout" must be a probability in \[0, 1\)\. Received: 1\.5\./],
      ['an unknown encodingType', { dModel: 8, encodingType: 'rotary' }, /option "encodingType" must be one of "sinusoidal", "learned"\. Received: "rotary"\./],
      ['a snake_case option', { dModel: 8, max_seq_length: 10 }, /PositionalEncoding: unknown option "max_seq_length"; the options are dModel, maxSeqLength, dropout, encodingType\./],
    ])('rejects %s with MieConfigError', (_label, options, message) => {
      const build = () => new PositionalEncoding(options as never);
      expect(build).toThrow(MieConfigError);
      expect(build).toThrow(message);
    });

    it('rejects inputs of the wrong rank, width or dtype with MieShapeError', () => {
      const cases: Array<[tf.Tensor, RegExp]> = [
        [tf.zeros([4, 8]), /PositionalEncoding: input x must have shape \[batch, seq, dModel = 8\]\. Received: tensor float32\[4, 8\]\./],
        [tf.zeros([1, 4, 6]), /PositionalEncoding: input x must have shape \[\.\.\., 8\] \(last dimension = dModel\)\. Received: tensor float32\[1, 4, 6\]\./],
        [tf.zeros([1, 4, 8], 'int32'), /PositionalEncoding: input x must have dtype float32 .*Received: tensor int32\[1, 4, 8\]\./],
      ];
      for (const [x, message] of cases) {
        expect(() => pe.forward(x)).toThrow(MieShapeError);
        expect(() => pe.forward(x)).toThrow(message);
        x.dispose();
      }
    });

    it('rejects sequences beyond maxSeqLength with MieShapeError', () => {
      const x = tf.zeros([1, 11, 8]);
      expect(() => pe.forward(x)).toThrow(MieShapeError);
      expect(() => pe.forward(x)).toThrow(
        /PositionalEncoding: input x needs sequence length 11, but maxSeqLength is 10, so positions must stay below 10\./,
      );
      const y = tf.zeros([1, 4, 8]);
      expect(() => pe.forward(y, { offset: 7 })).toThrow(MieShapeError);
      expect(() => pe.forward(y, { offset: 7 })).toThrow(/positions 7\.\.10 \(offset 7 \+ sequence length 4\), but maxSeqLength is 10/);
      tf.dispose([x, y]);
    });

    it('rejects a bad offset with MieConfigError', () => {
      const x = tf.zeros([1, 2, 8]);
      expect(() => pe.forward(x, { offset: -1 })).toThrow(MieConfigError);
      expect(() => pe.forward(x, { offset: 1.5 })).toThrow(/option "offset" must be a non-negative integer \(the position of the first row\)\. Received: 1\.5\./);
      expect(() => pe.forward(x, { offest: 1 } as never)).toThrow(/PositionalEncoding\.forward: unknown option "offest"; the options are offset\./);
      x.dispose();
    });

    it('rejects bad visualisation options', async () => {
      await expect(pe.encodingHeatmap({ maxPositions: 11 })).rejects.toThrow(/option "maxPositions" must be an integer in \[1, 10\]\. Received: 11\./);
      await expect(pe.encodingHeatmap({ maxDimensions: 0 })).rejects.toThrow(/option "maxDimensions" must be an integer in \[1, 8\]/);
    });

    it('draws only with @mie/plot, and says so when it is not installed', async () => {
      // @mie/plot is an optional peer, not installed for this package's tests.
      await expect(pe.visualizeEncodings()).rejects.toThrow(MieConfigError);
      await expect(pe.visualizeEncodingsSvg()).rejects.toThrow(/PositionalEncoding\.visualizeEncodingsSvg: drawing needs the optional package @mie\/plot: npm install @mie\/plot/);
    });
  });
});

describe('PositionalEncoding through the shared battery', () => {
  const input = () => [tf.randomNormal([2, 5, 8], 0, 1, 'float32', 11)];

  it('passes for the learned encoding, with and without offset', async () => {
    const factory = () => new PositionalEncoding({ dModel: 8, maxSeqLength: 16, encodingType: 'learned' });
    await runModuleTest(factory, input, { expectedParameterCount: 16 * 8 });
    await runModuleTest(factory, () => [...input(), { offset: 9 }], { expectedParameterCount: 16 * 8 });
  });

  // Without parameters the battery has no gradients to compare across backends; behind a trainable
  // input scale it also checks that gradients flow through the module, on cpu and wasm alike.
  it('passes for the sinusoidal encoding behind a trainable input scale', async () => {
    const Scaled = withInputScale(PositionalEncoding);
    await runModuleTest(() => new Scaled({ dModel: 8, maxSeqLength: 16 }), () => [...input(), { offset: 3 }], { expectedParameterCount: 1 });
  });

  it('passes for the parameter-free sinusoidal encoding directly', async () => {
    await runModuleTest(() => new PositionalEncoding({ dModel: 8, maxSeqLength: 16 }), () => [...input(), { offset: 2 }], { expectedParameterCount: 0 });
  });
});

