import { MieConfigError, registerPlotter, setBackend, setSeed, tf, type HeatmapOptions } from '@mie/core';
import { runModuleTest, withInputScale } from '@mie/test-utils';
import { fromFixture, loadFixture, maxAbsDifference, type AdvancedPositionsFixture } from './__tests__/fixtures';
import { TinyAttention, trainCopyPrevious } from './__tests__/tiny-attention';
import { RotaryPositionEncoding, type RotaryPositionEncodingOptions } from './rotary-position-encoding';
import { inverseFrequencies, yarnCorrectionRange, type RotaryScalingOptions } from './rope-scaling';

const fixture = loadFixture<AdvancedPositionsFixture>('positions-advanced.json');
const TOLERANCE = 1e-6;
const { headDim, maxSeqLength } = fixture;

type Case = AdvancedPositionsFixture['rope'][number];
const label = (c: Case) => `${c.type} x${c.factor}, base ${c.base}, originalMaxSeqLength ${c.originalMaxSeqLength ?? 'default'}`;
const build = (c: Case, extra: Partial<RotaryPositionEncodingOptions> = {}) =>
  new RotaryPositionEncoding({
    headDim,
    maxSeqLength,
    base: c.base,
    scaling: { type: c.type, factor: c.factor, ...(c.originalMaxSeqLength === null ? {} : { originalMaxSeqLength: c.originalMaxSeqLength }) },
    ...extra,
  });

/** The fixture keeps the first headDim/2 columns of the rotate-half table (the rest repeat them). */
const halfColumns = (t: tf.Tensor) => tf.slice(t, [0, 0], [t.shape[0] as number, headDim / 2]);

describe.each(['cpu', 'wasm'] as const)('rotary scaling matches the float64 reference of HF modeling_rope_utils on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each(fixture.rope.map((c) => [label(c), c] as const))('%s: inverse frequencies, attention factor and cos/sin tables', (_label, c) => {
    const before = tf.memory().numTensors;
    const rope = build(c);
    if (c.correctionRange) expect(yarnCorrectionRange(headDim, c.base, c.originalMaxSeqLength ?? maxSeqLength)).toEqual(c.correctionRange);
    for (const table of c.tables) {
      expect(rope.attentionFactor).toBeCloseTo(table.attentionFactor, 14);
      rope.inverseFrequencies({ totalLength: table.length }).forEach((f, i) => expect(Math.abs(f - table.invFreq[i])).toBeLessThanOrEqual(1e-12 * table.invFreq[i]));
      for (const [row, p] of table.positions.entries()) {
        tf.tidy(() => {
          const [cos, sin] = rope.getCosSin({ offset: p, length: 1, totalLength: table.length });
          const expectedCos = tf.slice(fromFixture(table.cos), [row, 0], [1, headDim / 2]);
          const expectedSin = tf.slice(fromFixture(table.sin), [row, 0], [1, headDim / 2]);
          expect(maxAbsDifference(halfColumns(cos), expectedCos)).toBeLessThan(TOLERANCE);
          expect(maxAbsDifference(halfColumns(sin), expectedSin)).toBeLessThan(TOLERANCE);
          // Rotate half: columns j and j + d/2 share a frequency.
          expect(maxAbsDifference(tf.slice(cos, [0, headDim / 2], [1, headDim / 2]), halfColumns(cos))).toBe(0);
          if (c.type !== 'dynamic') {
            // The precomputed buffers hold the same angles.
            expect(maxAbsDifference(halfColumns(tf.slice(rope.cosTable, [p, 0], [1, headDim])), expectedCos)).toBeLessThan(TOLERANCE);
            expect(maxAbsDifference(halfColumns(tf.slice(rope.sinTable, [p, 0], [1, headDim])), expectedSin)).toBeLessThan(TOLERANCE);
          }
        });
      }
    }
    rope.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(fixture.rope.map((c) => [label(c), c] as const))('%s: rotated q and k, both pairings', (_label, c) => {
    const before = tf.memory().numTensors;
    const [q, k] = [fromFixture(fixture.q), fromFixture(fixture.k)];
    for (const r of c.rotations) {
      const rope = build(c, { interleaved: r.interleaved });
      const [qRotated, kRotated] = rope.forward(q, k, { offset: r.offset });
      expect(maxAbsDifference(qRotated, r.qRotated)).toBeLessThan(TOLERANCE);
      expect(maxAbsDifference(kRotated, r.kRotated)).toBeLessThan(TOLERANCE);
      const kAlone = rope.rotate(k, { offset: r.offset }); // rotate: the same positions and length
      expect(maxAbsDifference(kAlone, kRotated)).toBe(0);
      tf.dispose([qRotated, kRotated, kAlone]);
      rope.dispose();
    }
    tf.dispose([q, k]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('rotary scaling', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  const plain = () => new RotaryPositionEncoding({ headDim, maxSeqLength });
  const scaled = (scaling: RotaryScalingOptions) => new RotaryPositionEncoding({ headDim, maxSeqLength, scaling });
  const x = () => tf.randomNormal([2, 12, 2, headDim], 0, 1, 'float32', 11);

  it('keeps the resolved scaling in config, so new RotaryPositionEncoding(config) rebuilds it', () => {
    const rope = scaled({ type: 'yarn', factor: 4 });
    expect(rope.config).toEqual({ headDim, maxSeqLength, base: 10000, interleaved: false, scaling: { type: 'yarn', factor: 4, originalMaxSeqLength: maxSeqLength } });
    const twin = new RotaryPositionEncoding(rope.config);
    expect(twin.config).toEqual(rope.config);
    expect(rope.countParameters({ trainableOnly: false })).toBe(0);
    expect(rope.stateDict()).toEqual({});
    const options = { type: 'dynamic', factor: 2, originalMaxSeqLength: 16 } as const;
    const dynamic = scaled(options);
    expect(dynamic.config.scaling).not.toBe(options); // a copy: the caller's object is not kept
    [rope, twin, dynamic].forEach((m) => m.dispose());
  });

  it('linear: position p * factor turns by the unscaled angle of p (position interpolation)', () => {
    const [rope, reference] = [scaled({ type: 'linear', factor: 4 }), plain()];
    expect(rope.inverseFrequencies()).toEqual(reference.inverseFrequencies().map((f) => f / 4));
    for (const p of [1, 7, 20, 31]) {
      const [cosScaled, sinScaled] = rope.getCosSin({ offset: 4 * p, length: 1 });
      const [cos, sin] = reference.getCosSin({ offset: p, length: 1 });
      expect(maxAbsDifference(cosScaled, cos)).toBeLessThan(1e-6);
      expect(maxAbsDifference(sinScaled, sin)).toBeLessThan(1e-6);
      tf.dispose([cosScaled, sinScaled, cos, sin]);
    }
    rope.dispose();
    reference.dispose();
  });

  it('factor 1 changes nothing for linear and YaRN', () => {
    const reference = plain();
    const input = x();
    const expected = reference.rotate(input, { offset: 100 });
    for (const type of ['linear', 'yarn'] as const) {
      const rope = scaled({ type, factor: 1, originalMaxSeqLength: 16 });
      expect(rope.attentionFactor).toBe(1);
      const actual = rope.rotate(input, { offset: 100 });
      expect(maxAbsDifference(actual, expected)).toBe(0);
      tf.dispose(actual);
      rope.dispose();
    }
    tf.dispose([input, expected]);
    reference.dispose();
  });

  it('YaRN keeps the fast pairs, divides the slow ones by factor, ramps between, and scales cos/sin by 0.1 ln(factor) + 1', () => {
    const rope = scaled({ type: 'yarn', factor: 8, originalMaxSeqLength: 64 });
    const [low, high] = yarnCorrectionRange(headDim, 10000, 64);
    expect([low, high]).toEqual([0, 3]);
    const reference = plain();
    const unscaled = reference.inverseFrequencies();
    reference.dispose();
    const frequencies = rope.inverseFrequencies();
    expect(frequencies[0]).toBe(unscaled[0]); // ramp 0: extrapolated
    for (let i = high; i < headDim / 2; i++) expect(frequencies[i]).toBeCloseTo(unscaled[i] / 8, 15);
    for (let i = low + 1; i < high; i++) {
      const ramp = (i - low) / (high - low);
      expect(frequencies[i]).toBeCloseTo((unscaled[i] / 8) * ramp + unscaled[i] * (1 - ramp), 15);
    }
    expect(rope.attentionFactor).toBeCloseTo(0.1 * Math.log(8) + 1, 15);
    // The norm of every pair grows by the attention factor (q . k by its square, as in HF).
    const input = x();
    const rotated = rope.rotate(input, { offset: 50 });
    const norm = (t: tf.Tensor) => tf.tidy(() => tf.sqrt(tf.sum(tf.square(t))).dataSync()[0]);
    expect(norm(rotated) / norm(input)).toBeCloseTo(rope.attentionFactor, 5);
    tf.dispose([input, rotated]);
    rope.dispose();
  });

  describe('dynamic (NTK-aware) scaling and sequence lengths', () => {
    const options = { type: 'dynamic', factor: 4, originalMaxSeqLength: 16 } as const;

    it('is the unscaled RoPE while the whole sequence fits in originalMaxSeqLength', () => {
      const [rope, reference] = [scaled(options), plain()];
      const input = tf.randomNormal([1, 16, 2, headDim], 0, 1, 'float32', 3);
      const [a, b] = [rope.rotate(input), reference.rotate(input)];
      expect(maxAbsDifference(a, b)).toBe(0);
      expect(rope.inverseFrequencies({ totalLength: 16 })).toEqual(reference.inverseFrequencies());
      expect(rope.inverseFrequencies({ totalLength: 17 })[1]).toBeLessThan(reference.inverseFrequencies()[1]);
      tf.dispose([input, a, b]);
      rope.dispose();
      reference.dispose();
    });

    it('takes the length from offset + seq, as HF does per forward: a decoding step equals the last row of a full pass of its length', () => {
      const rope = scaled(options);
      const input = tf.randomNormal([1, 40, 2, headDim], 0, 1, 'float32', 4);
      for (const p of [10, 15, 16, 25, 39]) {
        const full = rope.rotate(tf.slice(input, [0, 0, 0, 0], [1, p + 1, 2, headDim])); // a pass over 0 .. p
        const step = rope.rotate(tf.slice(input, [0, p, 0, 0], [1, 1, 2, headDim]), { offset: p });
        expect(maxAbsDifference(step, tf.slice(full, [0, p, 0, 0], [1, 1, 2, headDim]))).toBe(0);
        tf.dispose([full, step]);
      }
      // But rows rotated at earlier, shorter lengths (keys in a cache) differ from one pass over 40
      // positions once the length passes originalMaxSeqLength: the difference HF's dynamic RoPE has too.
      const full = rope.rotate(input);
      const early = rope.rotate(tf.slice(input, [0, 0, 0, 0], [1, 20, 2, headDim]));
      const head = (t: tf.Tensor, n: number) => tf.slice(t, [0, 0, 0, 0], [1, n, 2, headDim]);
      expect(maxAbsDifference(early, head(full, 20))).toBeGreaterThan(1e-3);
      const short = rope.rotate(head(input, 16));
      const shortAgain = rope.rotate(head(input, 16), { totalLength: 16 });
      expect(maxAbsDifference(short, shortAgain)).toBe(0);
      tf.dispose([input, full, early, short, shortAgain]);
      rope.dispose();
    });

    it('with totalLength fixed, step-by-step decoding equals one full pass exactly', () => {
      const rope = scaled(options);
      const q = tf.randomNormal([2, 30, 2, headDim], 0, 1, 'float32', 5);
      const k = tf.randomNormal([2, 30, 1, headDim], 0, 1, 'float32', 6);
      const [qFull, kFull] = rope.forward(q, k, { totalLength: 30 });
      const rows = (t: tf.Tensor, from: number, n: number) => tf.slice(t, [0, from, 0, 0], [2, n, t.shape[2] as number, headDim]);
      // A prompt of 12 rows, then one row at a time.
      for (const [from, n] of [[0, 12], ...Array.from({ length: 18 }, (_, i) => [12 + i, 1])]) {
        const [qStep, kStep] = rope.forward(rows(q, from, n), rows(k, from, n), { offset: from, totalLength: 30 });
        expect(maxAbsDifference(qStep, rows(qFull, from, n))).toBe(0);
        expect(maxAbsDifference(kStep, rows(kFull, from, n))).toBe(0);
        tf.dispose([qStep, kStep]);
      }
      tf.dispose([q, k, qFull, kFull]);
      rope.dispose();
    });

    it('rotates q and k of one call with one length, so q . k still depends only on n - m', () => {
      const rope = scaled(options);
      const q = tf.randomNormal([1, 1, 1, headDim], 0, 1, 'float32', 7);
      const k = tf.randomNormal([1, 1, 1, headDim], 0, 1, 'float32', 8);
      const dot = (m: number, n: number) =>
        tf.tidy(() => tf.sum(tf.mul(rope.rotate(q, { offset: m, totalLength: 60 }), rope.rotate(k, { offset: n, totalLength: 60 }))).dataSync()[0]);
      expect(dot(3, 10)).toBeCloseTo(dot(40, 47), 4);
      expect(dot(0, 25)).toBeCloseTo(dot(30, 55), 4);
      // forward gives a shorter q the length of the longer k.
      const qShort = tf.randomNormal([1, 2, 1, headDim], 0, 1, 'float32', 9);
      const kLong = tf.randomNormal([1, 30, 1, headDim], 0, 1, 'float32', 10);
      const [qr] = rope.forward(qShort, kLong);
      const qAlone = rope.rotate(qShort, { totalLength: 30 });
      expect(maxAbsDifference(qr, qAlone)).toBe(0);
      tf.dispose([q, k, qShort, kLong, qr, qAlone]);
      rope.dispose();
    });
  });

  it('matches inverseFrequencies() and the angle p * f for every type, at positions beyond originalMaxSeqLength', () => {
    for (const scaling of [{ type: 'linear', factor: 3 }, { type: 'dynamic', factor: 3, originalMaxSeqLength: 20 }, { type: 'yarn', factor: 3, originalMaxSeqLength: 20 }] as const) {
      const rope = scaled(scaling);
      const frequencies = inverseFrequencies(headDim, 10000, rope.config.scaling, 90);
      const [cos, sin] = rope.getCosSin({ offset: 80, length: 10, totalLength: 90 });
      const [cosValues, sinValues] = [cos.arraySync(), sin.arraySync()];
      for (let r = 0; r < 10; r++) {
        for (let j = 0; j < headDim; j++) {
          const angle = (80 + r) * frequencies[j % (headDim / 2)];
          expect(cosValues[r][j]).toBeCloseTo(rope.attentionFactor * Math.cos(angle), 6);
          expect(sinValues[r][j]).toBeCloseTo(rope.attentionFactor * Math.sin(angle), 6);
        }
      }
      tf.dispose([cos, sin]);
      rope.dispose();
    }
  });

  it('does not leak tensors (rotate, forward, gradients, getCosSin), dynamic beyond its original length included', () => {
    const rope = scaled({ type: 'dynamic', factor: 2, originalMaxSeqLength: 8 });
    const input = tf.ones([1, 20, 2, headDim]);
    const before = tf.memory().numTensors;
    tf.dispose(rope.forward(input, input, { offset: 5 }));
    tf.dispose(rope.rotate(input, { totalLength: 60 }));
    tf.dispose(rope.getCosSin({ offset: 3, length: 40 }));
    tf.dispose(tf.grads((y: tf.Tensor) => tf.sum(rope.rotate(y, { offset: 30 })))([input]));
    rope.scalingHeatmap({ maxPositions: 8 });
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
    rope.dispose();
  });

  describe('errors', () => {
    it.each([
      ['a scaling that is not an object', 'linear', /RotaryPositionEncoding: option "scaling" must be null or an object \{ type, factor, originalMaxSeqLength\? \}\. Received: "linear"\./],
      ['an unknown scaling type', { type: 'ntk', factor: 2 }, /RotaryPositionEncoding: option "scaling\.type" must be one of "linear", "dynamic", "yarn"\. Received: "ntk"\./],
      ['a missing factor', { type: 'linear' }, /RotaryPositionEncoding: option "scaling\.factor" must be a finite number >= 1 .*Received: undefined\./],
      ['factor 0.5', { type: 'yarn', factor: 0.5 }, /option "scaling\.factor" must be a finite number >= 1.*Received: 0\.5\./],
      ['factor NaN', { type: 'dynamic', factor: Number.NaN, originalMaxSeqLength: 8 }, /option "scaling\.factor" must be a finite number >= 1.*Received: NaN\./],
      ['a fractional originalMaxSeqLength', { type: 'yarn', factor: 2, originalMaxSeqLength: 10.5 }, /RotaryPositionEncoding: option "scaling\.originalMaxSeqLength" must be a positive integer\. Received: 10\.5\./],
      [
        'dynamic scaling that could never apply',
        { type: 'dynamic', factor: 2 },
        /RotaryPositionEncoding: option "scaling\.originalMaxSeqLength" must be below maxSeqLength \(128\) for dynamic scaling.*Received: 128\./,
      ],
      ['a snake_case scaling key', { type: 'yarn', factor: 2, original_max_position_embeddings: 64 }, /RotaryPositionEncoding: unknown key "original_max_position_embeddings" in option "scaling"; its keys are type, factor, originalMaxSeqLength\./],
    ])('rejects %s with MieConfigError', (_label, scaling, message) => {
      const make = () => new RotaryPositionEncoding({ headDim, maxSeqLength, scaling: scaling as never });
      expect(make).toThrow(MieConfigError);
      expect(make).toThrow(message);
    });

    it('rejects a bad totalLength, and a scaling heatmap of an unscaled module', () => {
      const rope = scaled({ type: 'dynamic', factor: 2, originalMaxSeqLength: 8 });
      const unscaled = plain();
      const input = tf.zeros([1, 4, 1, headDim]);
      const cases: Array<[() => unknown, RegExp]> = [
        [() => rope.rotate(input, { offset: 10, totalLength: 13 }), /RotaryPositionEncoding: option "totalLength" must be an integer in \[offset \+ seq = 14, maxSeqLength = 128\].*Received: 13\./],
        [() => rope.forward(input, input, { totalLength: 129 }), /option "totalLength" must be an integer in \[offset \+ seq = 4, maxSeqLength = 128\].*Received: 129\./],
        [() => rope.rotate(input, { totalLength: 7.5 }), /option "totalLength" must be an integer .*Received: 7\.5\./],
        [() => rope.rotate(input, { ofset: 1 } as never), /RotaryPositionEncoding\.rotate: unknown option "ofset"; the options are offset, totalLength\./],
        [() => rope.inverseFrequencies({ totalLength: 0 }), /option "totalLength" must be an integer in \[1, 128\]\. Received: 0\./],
        [() => unscaled.scalingHeatmap(), /RotaryPositionEncoding\.visualizeScaling: this module has no scaling to show/],
      ];
      for (const [call, message] of cases) {
        expect(call).toThrow(MieConfigError);
        expect(call).toThrow(message);
      }
      input.dispose();
      rope.dispose();
      unscaled.dispose();
    });
  });
});

describe('RotaryPositionEncoding.visualizeScaling', () => {
  const drawn: HeatmapOptions[] = [];
  beforeAll(async () => {
    await setBackend('cpu');
    // A stand-in plotter (the real one is @mie/plot, an optional peer of this package).
    registerPlotter({
      renderHeatmap: async (options) => {
        drawn.push(options);
        return Uint8Array.of(0x89, 0x50, 0x4e, 0x47);
      },
      renderHeatmapSvg: async (options) => {
        drawn.push(options);
        return '<svg/>';
      },
    });
  });

  const wrapped = (angle: number) => Math.atan2(Math.sin(angle), Math.cos(angle));

  it('linear: unscaled and scaled angles side by side, split by a grey column', async () => {
    const rope = new RotaryPositionEncoding({ headDim, maxSeqLength, scaling: { type: 'linear', factor: 4 } });
    const heatmap = rope.scalingHeatmap({ maxPositions: 5 });
    const half = headDim / 2;
    expect(heatmap.yTickLabels).toEqual(['0', '32', '64', '95', '127']); // no boundary row: linear ignores originalMaxSeqLength
    expect(heatmap.values.map((row) => row.length)).toEqual([17, 17, 17, 17, 17]);
    expect(heatmap.xTickLabels).toEqual([...Array.from({ length: half }, (_, i) => String(i)), '', ...Array.from({ length: half }, (_, i) => String(i))]);
    expect(heatmap.title).toBe('Rotary angles, unscaled | linear \u00d74');
    const unscaled = new RotaryPositionEncoding({ headDim, maxSeqLength });
    const frequencies = unscaled.inverseFrequencies();
    unscaled.dispose();
    for (const [r, p] of [0, 32, 64, 95, 127].entries()) {
      expect(heatmap.values[r][half]).toBeNaN();
      for (let i = 0; i < half; i++) {
        expect(heatmap.values[r][i]).toBeCloseTo(wrapped(p * frequencies[i]), 9);
        expect(heatmap.values[r][half + 1 + i]).toBeCloseTo(wrapped((p * frequencies[i]) / 4), 9);
      }
    }
    const bytes = await rope.visualizeScaling({ maxPositions: 5, file: 'ignored-by-the-stand-in.png' });
    expect(Array.from(bytes)).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(drawn.at(-1)).toEqual({ ...heatmap, file: 'ignored-by-the-stand-in.png' });
    expect(await rope.visualizeScalingSvg({ maxPositions: 5 })).toBe('<svg/>');
    expect(drawn.at(-1)).toEqual(heatmap);
    rope.dispose();
  });

  it('dynamic: a grey row at originalMaxSeqLength; equal blocks above it, slower scaled pairs below', () => {
    const rope = new RotaryPositionEncoding({ headDim, maxSeqLength, scaling: { type: 'dynamic', factor: 4, originalMaxSeqLength: 64 } });
    const heatmap = rope.scalingHeatmap({ maxPositions: 9 });
    const half = headDim / 2;
    expect(heatmap.yTickLabels).toEqual(['0', '16', '32', '48', '', '64', '79', '95', '111', '127']);
    expect(heatmap.yLabel).toBe('position p (grey row: originalMaxSeqLength 64)');
    expect(heatmap.values[4].every(Number.isNaN)).toBe(true);
    for (const r of [0, 1, 2, 3]) expect(heatmap.values[r].slice(half + 1)).toEqual(heatmap.values[r].slice(0, half));
    // Position 127 in a sequence of 128: the frequencies of that length.
    const frequencies = rope.inverseFrequencies({ totalLength: 128 });
    for (let i = 0; i < half; i++) expect(heatmap.values[9][half + 1 + i]).toBeCloseTo(wrapped(127 * frequencies[i]), 9);
    rope.dispose();
  });

  it('YaRN: names the attention factor; the fastest pair is unchanged', () => {
    const rope = new RotaryPositionEncoding({ headDim, maxSeqLength, scaling: { type: 'yarn', factor: 4, originalMaxSeqLength: 64 } });
    const heatmap = rope.scalingHeatmap();
    expect(heatmap.values).toHaveLength(65); // 64 positions and the grey row
    expect(heatmap.title).toBe('Rotary angles, unscaled | YaRN \u00d74 (trained on 64); cos, sin \u00d71.1386');
    for (const row of heatmap.values) expect(row[headDim / 2 + 1]).toEqual(row[0]);
    expect(() => rope.scalingHeatmap({ maxPositions: 129 })).toThrow(/option "maxPositions" must be an integer in \[1, 128\]\. Received: 129\./);
    rope.dispose();
  });
});

describe('scaled rotary embeddings through the shared battery', () => {
  const input = () => [tf.randomNormal([2, 5, 2, 8], 0, 1, 'float32', 1), tf.randomNormal([2, 3, 1, 8], 0, 1, 'float32', 2)];
  const scalings: Array<[string, RotaryScalingOptions]> = [
    ['linear', { type: 'linear', factor: 2 }],
    ['dynamic', { type: 'dynamic', factor: 3, originalMaxSeqLength: 6 }],
    ['yarn', { type: 'yarn', factor: 4, originalMaxSeqLength: 8 }],
  ];

  it.each(scalings)('%s passes behind a trainable input scale, at positions beyond originalMaxSeqLength', async (_name, scaling) => {
    const Scaled = withInputScale(RotaryPositionEncoding);
    await runModuleTest(() => new Scaled({ headDim: 8, maxSeqLength: 16, scaling }), () => [...input(), { offset: 9 }], { expectedParameterCount: 1 });
  });

  it.each(scalings)('%s passes directly, interleaved', async (_name, scaling) => {
    await runModuleTest(() => new RotaryPositionEncoding({ headDim: 8, maxSeqLength: 16, interleaved: true, scaling }), () => [...input(), { offset: 11 }], {
      expectedParameterCount: 0,
    });
  });
});

describe('a rotary-scaled attention trains', () => {
  // Copying the previous token needs positions: without any, the same attention stays above 0.02.
  const train = (scaling: RotaryScalingOptions | null) => {
    setSeed(5);
    const before = tf.memory().numTensors;
    const rotary = scaling ? new RotaryPositionEncoding({ headDim: 8, maxSeqLength: 32, scaling }) : null;
    const model = new TinyAttention(16, 2, rotary, null);
    const result = trainCopyPrevious(model, { steps: 40, sequenceLength: 20 });
    expect(result.growth).toBe(0);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    return result;
  };
  const scalings = [
    ['linear', { type: 'linear', factor: 2 }],
    ['dynamic', { type: 'dynamic', factor: 4, originalMaxSeqLength: 8 }],
    ['yarn', { type: 'yarn', factor: 4, originalMaxSeqLength: 8 }],
  ] as const;

  it('(without positions, the loss stays above 0.02 on wasm)', async () => {
    await setBackend('wasm');
    expect(train(null).last).toBeGreaterThan(0.02);
  });

  it.each(scalings)('%s on wasm: copying the previous token over 20 positions, most beyond originalMaxSeqLength', async (_name, scaling) => {
    await setBackend('wasm');
    const { first, last } = train(scaling);
    expect(last).toBeLessThan(0.1 * first);
    expect(last).toBeLessThan(0.02);
  });

  it('dynamic on cpu: the same', async () => {
    await setBackend('cpu');
    const { first, last } = train(scalings[1][1]);
    expect(last).toBeLessThan(0.1 * first);
    expect(last).toBeLessThan(0.02);
  });
});
