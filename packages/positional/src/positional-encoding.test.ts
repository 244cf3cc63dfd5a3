import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError, MieShapeError, clearSeed, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { PNG } from 'pngjs';
import { fromFixture, loadFixture, maxAbsDifference, withInputScale, type FixtureTensor } from './__tests__/fixtures';
import { heatmapColor, layoutHeatmap } from './heatmap';
import { PositionalEncoding, sinusoidalEncodings } from './positional-encoding';

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
      await pe.visualizeEncodings({ maxPositions: 8 });
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
      await expect(pe.visualizeEncodings({ maxPositions: 11 })).rejects.toThrow(/option "maxPositions" must be an integer in \[1, 10\]\. Received: 11\./);
      await expect(pe.visualizeEncodings({ maxDimensions: 0 })).rejects.toThrow(/option "maxDimensions" must be an integer in \[1, 8\]/);
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

describe('PositionalEncoding.visualizeEncodings', () => {
  let dir: string;
  beforeAll(async () => {
    await setBackend('cpu');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-positional-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function pixel(png: PNG, x: number, y: number): [number, number, number] {
    const i = (Math.floor(y) * png.width + Math.floor(x)) * 4;
    return [png.data[i], png.data[i + 1], png.data[i + 2]];
  }

  it('draws the table as a labelled heatmap PNG and writes the file', async () => {
    const pe = new PositionalEncoding({ dModel: 128, maxSeqLength: 200 });
    const file = path.join(dir, 'sinusoidal.png');
    const started = performance.now();
    const bytes = await pe.visualizeEncodings({ file });
    const elapsed = performance.now() - started;
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(fs.readFileSync(file)).equals(Buffer.from(bytes))).toBe(true);

    const heatmap = pe.encodingHeatmap();
    const layout = layoutHeatmap(heatmap);
    const png = PNG.sync.read(Buffer.from(bytes));
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    expect([layout.rows, layout.columns]).toEqual([100, 128]);

    // Every cell has the colour of its value.
    const { plot, cellWidth, cellHeight } = layout;
    for (let p = 0; p < 100; p += 7) {
      for (let d = 0; d < 128; d += 3) {
        const colour = pixel(png, plot.x + (d + 0.5) * cellWidth, plot.y + (p + 0.5) * cellHeight);
        expect(colour).toEqual(heatmapColor(heatmap.values[p][d], 'diverging', -1, 1));
      }
    }
    // Along the dimension axis at position 40: sin(40) = 0.75 is red, cos(40) = -0.67 is blue, and
    // dimension 127 (the cosine of a tiny angle, about 1) is nearly the darkest red.
    const at = (d: number) => pixel(png, plot.x + (d + 0.5) * cellWidth, plot.y + 40.5 * cellHeight);
    expect(heatmap.values[40][0]).toBeCloseTo(Math.sin(40), 6);
    expect(heatmap.values[40][1]).toBeCloseTo(Math.cos(40), 6);
    expect(Math.sin(40)).toBeGreaterThan(0.7);
    expect(Math.cos(40)).toBeLessThan(-0.6);
    const [red, blue, last] = [at(0), at(1), at(127)];
    expect(red[0]).toBeGreaterThan(red[2] + 80);
    expect(blue[2]).toBeGreaterThan(blue[0] + 80);
    expect(last[0]).toBeGreaterThan(last[2] + 50);
    expect(last[1]).toBeLessThan(30); // the dark end of the red side

    // Text: every label has dark pixels inside its box (title, axis labels, ticks, colour bar).
    const texts = layout.texts;
    expect(texts.map((t) => t.text)).toEqual(expect.arrayContaining(['Sinusoidal positional encoding (dModel = 128)', 'embedding dimension', 'position', 'encoding value']));
    for (const t of texts) {
      let dark = 0;
      for (let y = Math.floor(t.box.y); y < t.box.y + t.box.height; y++) {
        for (let x = Math.floor(t.box.x); x < t.box.x + t.box.width; x++) {
          const [r, g, b] = pixel(png, x, y);
          if (r < 110 && g < 110 && b < 110) dark++;
        }
      }
      expect([t.text, dark > 2]).toEqual([t.text, true]);
    }
    // Fast enough for interactive use (< 1 s on an idle machine; generous bound for busy CI).
    expect(elapsed).toBeLessThan(3000);
    pe.dispose();
  });

  it('draws learned weights with limits from their values, and an SVG variant', async () => {
    setSeed(5);
    const pe = new PositionalEncoding({ dModel: 16, maxSeqLength: 40, encodingType: 'learned' });
    const heatmap = pe.encodingHeatmap({ maxPositions: 20, maxDimensions: 10 });
    expect(heatmap.title).toBe('Learned positional encoding (dModel = 16)');
    expect(heatmap.xLabel).toBe('embedding dimension (first 10 of 16)');
    expect(heatmap.values).toHaveLength(20);
    expect(heatmap.values[0]).toHaveLength(10);
    const layout = layoutHeatmap(heatmap);
    expect(layout.vmax).toBeCloseTo(Math.max(...heatmap.values.flat().map(Math.abs)), 6);
    expect(layout.vmin).toBe(-layout.vmax);

    const file = path.join(dir, 'learned.svg');
    const svg = await pe.visualizeEncodingsSvg({ file, maxPositions: 20 });
    expect(fs.readFileSync(file, 'utf8')).toBe(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('>Learned positional encoding (dModel = 16)</text>');
    expect(svg).toContain('>embedding dimension</text>');
    expect(svg).toContain('>position</text>');
    pe.dispose();
  });
});
