import { MieConfigError, MieShapeError, registerPlotter, setBackend, setSeed, stateLayout, tf, type HeatmapOptions } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import fc from 'fast-check';
import { fromFixture, loadFixture, maxAbsDifference, type AdvancedPositionsFixture } from './__tests__/fixtures';
import { TinyAttention, trainCopyPrevious } from './__tests__/tiny-attention';
import { RelativePositionBias, relativePositionBucket } from './relative-position-bias';

const fixture = loadFixture<AdvancedPositionsFixture>('positions-advanced.json');

describe("relativePositionBucket matches T5's _relative_position_bucket (HF modeling_t5.py)", () => {
  it.each(fixture.buckets.map((c) => [`${c.bidirectional ? 'bidirectional' : 'unidirectional'}, ${c.numBuckets} buckets, max distance ${c.maxDistance}`, c] as const))(
    '%s, at every distance of the fixture',
    (_label, c) => {
      const options = { bidirectional: c.bidirectional, numBuckets: c.numBuckets, maxDistance: c.maxDistance };
      const actual = fixture.relativePositions.map((r) => relativePositionBucket(r, options));
      expect(actual).toEqual(c.buckets);
    },
  );

  it('follows the float32 arithmetic of PyTorch where float64 would pick another bucket', () => {
    const sensitive = fixture.buckets.filter((c) => c.float64Differs.length > 0);
    expect(sensitive.map((c) => [c.bidirectional, c.numBuckets, c.maxDistance])).toEqual([
      [true, 18, 128],
      [true, 38, 16],
      [true, 72, 50],
      [false, 9, 128],
      [false, 19, 16],
      [false, 36, 50],
    ]);
    // Bidirectional, 18 buckets (9 per direction, 4 exact): distance 16 lies on a boundary.
    expect(relativePositionBucket(-16, { numBuckets: 18 })).toBe(6);
    expect(relativePositionBucket(16, { numBuckets: 18 })).toBe(15);
  });

  it("has T5's shape: exact small distances, logarithmic bins up to maxDistance, one bucket beyond (fast-check)", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 2, max: 40 }), fc.integer({ min: 1, max: 300 }), (bidirectional, half, extra) => {
        const numBuckets = bidirectional ? 2 * half : half;
        const perDirection = bidirectional ? half : numBuckets;
        const maxExact = Math.floor(perDirection / 2);
        const maxDistance = maxExact + extra;
        const options = { bidirectional, numBuckets, maxDistance };
        const earlier = (d: number) => relativePositionBucket(-d, options); // key d positions before the query
        let previous = -1;
        for (let d = 0; d < maxDistance + 50; d++) {
          const bucket = earlier(d);
          if (bucket < 0 || bucket >= perDirection || bucket < previous) return false; // in range, non-decreasing
          if (d < maxExact && bucket !== d) return false; // exact
          if (d >= maxDistance && bucket !== perDirection - 1) return false; // all far keys share the last bucket
          previous = bucket;
        }
        for (const d of [1, 2, maxExact, maxDistance, 10 * maxDistance]) {
          const later = relativePositionBucket(d, options);
          if (bidirectional ? later !== perDirection + earlier(d) : later !== 0) return false;
        }
        return relativePositionBucket(0, options) === 0;
      }),
      { numRuns: 60, seed: 3 },
    );
  });
});

describe.each(['cpu', 'wasm'] as const)('RelativePositionBias on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  for (const group of fixture.bias) {
    const name = `${group.bidirectional ? 'bidirectional' : 'unidirectional'}, ${group.numBuckets} buckets, ${group.numHeads} heads`;

    it(`${name}: equals T5Attention.compute_bias for a given weight`, () => {
      const before = tf.memory().numTensors;
      const module = new RelativePositionBias({ numHeads: group.numHeads, numBuckets: group.numBuckets, maxDistance: group.maxDistance, bidirectional: group.bidirectional });
      const weight = fromFixture(group.weight);
      expect(module.loadStateDict({ weight })).toEqual({ missingKeys: [], unexpectedKeys: [] });
      for (const c of group.cases) {
        const bias = module.forward(c.queryLength, c.keyLength, { offset: c.offset });
        expect(bias.dtype).toBe('float32');
        expect(maxAbsDifference(bias, c.bias)).toBeLessThan(1e-6);
        bias.dispose();
      }
      weight.dispose();
      module.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it(`${name}: the gradient of weight adds each cell's upstream gradient to its bucket`, () => {
      const before = tf.memory().numTensors;
      const { numHeads, numBuckets } = group;
      const module = new RelativePositionBias({ numHeads, numBuckets, maxDistance: group.maxDistance, bidirectional: group.bidirectional });
      const [q, k, offset] = [6, 45, 39];
      const upstream = tf.randomNormal([1, numHeads, q, k], 0, 1, 'float32', 17);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(module.forward(q, k, { offset }), upstream)) as tf.Scalar, [module.weight]);
      const cells = module.buckets(q, k, offset);
      const g = upstream.dataSync();
      const expected = new Float64Array(numBuckets * numHeads);
      for (let h = 0; h < numHeads; h++) {
        for (let c = 0; c < q * k; c++) expected[cells[c] * numHeads + h] += g[h * q * k + c];
      }
      const actual = grads[module.weight.name];
      const reference = tf.tensor2d(Array.from(expected), [numBuckets, numHeads]);
      expect(maxAbsDifference(actual, reference)).toBeLessThan(1e-5);
      expect(actual.dataSync().some((v) => v !== 0)).toBe(true);
      tf.dispose([upstream, value, reference, ...Object.values(grads)]);
      module.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('trains: a causal attention whose only position signal is the bias learns to copy the previous token', () => {
    setSeed(5);
    const before = tf.memory().numTensors;
    const positions = new RelativePositionBias({ numHeads: 2, numBuckets: 16, maxDistance: 32, bidirectional: false });
    const model = new TinyAttention(16, 2, null, positions);
    const initial = positions.weight.arraySync() as number[][];
    const { first, last, growth } = trainCopyPrevious(model, { steps: 40, sequenceLength: 20 });
    expect(growth).toBe(0);
    expect(last).toBeLessThan(0.1 * first);
    expect(last).toBeLessThan(0.02); // position-free attention stays above 0.02 (rope-scaling.test.ts checks it)
    // Bucket 1 (the previous key) has grown against bucket 0 (the key at the query itself) in some head.
    const trained = positions.weight.arraySync() as number[][];
    const gain = Math.max(...[0, 1].map((h) => trained[1][h] - trained[0][h] - (initial[1][h] - initial[0][h])));
    expect(gain).toBeGreaterThan(1);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('RelativePositionBias', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it("has T5's defaults and one parameter weight [numBuckets, numHeads], declared by shape", () => {
    const module = new RelativePositionBias({ numHeads: 8 });
    expect(module.config).toEqual({ numHeads: 8, numBuckets: 32, maxDistance: 128, bidirectional: true });
    expect(module.namedParameters().map(([name, v]) => [name, v.shape])).toEqual([['weight', [32, 8]]]);
    expect(stateLayout(() => new RelativePositionBias({ numHeads: 8 })).entries.map((e) => [e.name, e.shape])).toEqual([['weight', [32, 8]]]);
    const values = Array.from(module.weight.dataSync());
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    expect(std).toBeGreaterThan(0.014);
    expect(std).toBeLessThan(0.026);
    module.dispose();
  });

  it('places query i at offset + i: a cached step equals the matching rows of one full pass', () => {
    const module = new RelativePositionBias({ numHeads: 3, numBuckets: 16, maxDistance: 40, bidirectional: false });
    const full = module.forward(50, 50);
    for (const offset of [0, 7, 49]) {
      const rows = 50 - offset;
      const step = module.forward(rows, 50, { offset });
      expect(maxAbsDifference(step, tf.slice(full, [0, 0, offset, 0], [1, 3, rows, 50]))).toBe(0);
      step.dispose();
    }
    // Query at 10 over keys 0..10: key j gets bucket(j - 10), the previous key bucket 1.
    const cells = module.buckets(1, 11, 10);
    expect(Array.from(cells)).toEqual(Array.from({ length: 11 }, (_, j) => relativePositionBucket(j - 10, { bidirectional: false, numBuckets: 16, maxDistance: 40 })));
    expect([cells[9], cells[10]]).toEqual([1, 0]);
    full.dispose();
    module.dispose();
  });

  it('does not leak tensors and fires forward hooks', async () => {
    const module = new RelativePositionBias({ numHeads: 2, numBuckets: 8, maxDistance: 20 });
    const calls: string[] = [];
    module.registerForwardHook((_module, inputs, _output, { method }) => void calls.push(`${method}(${inputs.slice(0, 2).join(', ')})`));
    const before = tf.memory().numTensors;
    tf.dispose(module.forward(4, 9, { offset: 5 }));
    const { value, grads } = tf.variableGrads(() => tf.sum(module.forward(3, 3)) as tf.Scalar, [module.weight]);
    tf.dispose([value, ...Object.values(grads)]);
    await module.biasHeatmap({ queryLength: 4 });
    expect(tf.memory().numTensors).toBe(before);
    expect(calls).toEqual(['forward(4, 9)', 'forward(3, 3)']);
    module.dispose();
  });

  describe('errors', () => {
    it.each([
      ['a missing numHeads', {}, /RelativePositionBias: option "numHeads" must be a positive integer\. Received: undefined\./],
      ['an odd bidirectional numBuckets', { numHeads: 2, numBuckets: 31 }, /RelativePositionBias: option "numBuckets" must be even when bidirectional \(half the buckets for each direction\)\. Received: 31\./],
      ['2 bidirectional buckets', { numHeads: 2, numBuckets: 2 }, /RelativePositionBias: option "numBuckets" must be an integer >= 4\. Received: 2\./],
      ['1 unidirectional bucket', { numHeads: 2, numBuckets: 1, bidirectional: false }, /option "numBuckets" must be an integer >= 2\. Received: 1\./],
      ['maxDistance inside the exact range', { numHeads: 2, numBuckets: 32, maxDistance: 8 }, /RelativePositionBias: option "maxDistance" must be an integer >= 9\. Received: 8\./],
      ['a fractional maxDistance', { numHeads: 2, maxDistance: 100.5 }, /option "maxDistance" must be an integer >= 9\. Received: 100\.5\./],
      ['a string bidirectional', { numHeads: 2, bidirectional: 'yes' }, /RelativePositionBias: option "bidirectional" must be a boolean\. Received: "yes"\./],
      ['a snake_case option', { numHeads: 2, num_buckets: 32 }, /RelativePositionBias: unknown option "num_buckets"; the options are numHeads, numBuckets, maxDistance, bidirectional\./],
    ])('rejects %s with MieConfigError', (_label, options, message) => {
      const make = () => new RelativePositionBias(options as never);
      expect(make).toThrow(MieConfigError);
      expect(make).toThrow(message);
    });

    it('rejects bad lengths with MieShapeError, and bad offsets, options and disposed modules with MieConfigError', async () => {
      const module = new RelativePositionBias({ numHeads: 2 });
      const shapeErrors: Array<[() => unknown, RegExp]> = [
        [() => module.forward(0, 4), /RelativePositionBias: queryLength must be a positive integer\. Received: 0\./],
        [() => module.forward(3, 2.5), /RelativePositionBias: keyLength must be a positive integer\. Received: 2\.5\./],
        [() => module.forward(tf.scalar(3) as never, 3), /RelativePositionBias: queryLength must be a positive integer\. Received: tensor float32\[\]/],
      ];
      for (const [call, message] of shapeErrors) {
        expect(call).toThrow(MieShapeError);
        expect(call).toThrow(message);
      }
      const configErrors: Array<[() => unknown, RegExp]> = [
        [() => module.forward(3, 3, { offset: -1 }), /RelativePositionBias: option "offset" must be a non-negative integer/],
        [() => module.forward(3, 3, { ofset: 1 } as never), /RelativePositionBias\.forward: unknown option "ofset"; the options are offset\./],
        [() => relativePositionBucket(1.5), /relativePositionBucket: relativePosition must be an integer \(key position - query position\)\. Received: 1\.5\./],
        [() => relativePositionBucket(3, { numBuckets: 7 }), /relativePositionBucket: option "numBuckets" must be even when bidirectional/],
      ];
      for (const [call, message] of configErrors) {
        expect(call).toThrow(MieConfigError);
        expect(call).toThrow(message);
      }
      await expect(module.biasHeatmap({ head: 2 })).rejects.toThrow(/RelativePositionBias\.visualizeBias: option "head" must be an integer in \[0, 2\)\. Received: 2\./);
      await expect(module.biasHeatmap({ show: 'weights' } as never)).rejects.toThrow(/option "show" must be one of "bias", "buckets"/);
      module.dispose();
      expect(() => module.forward(2, 2)).toThrow(MieConfigError);
      expect(() => module.forward(2, 2)).toThrow(/RelativePositionBias(\.forward)?: the module was disposed/);
    });
  });
});

describe('RelativePositionBias.visualizeBias', () => {
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

  it("draws one head's bias per (query, key) cell, and the buckets on request", async () => {
    const module = new RelativePositionBias({ numHeads: 3, numBuckets: 16, maxDistance: 20 });
    const weight = module.weight.arraySync() as number[][];
    const heatmap = await module.biasHeatmap({ head: 2, queryLength: 5, keyLength: 30, offset: 20 });
    expect(heatmap.values).toHaveLength(5);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 30; j++) expect(heatmap.values[i][j]).toBe(weight[relativePositionBucket(j - 20 - i, { numBuckets: 16, maxDistance: 20 })][2]);
    }
    expect(heatmap.title).toBe('T5 relative position bias, head 2 (bidirectional, 16 buckets, max distance 20)');
    expect([heatmap.xLabel, heatmap.yLabel, heatmap.colorMap]).toEqual(['key position j', 'query position 20 + i', 'diverging']);

    const buckets = await module.biasHeatmap({ show: 'buckets', queryLength: 3 });
    expect(buckets.values).toEqual([0, 1, 2].map((i) => [0, 1, 2].map((j) => relativePositionBucket(j - i, { numBuckets: 16, maxDistance: 20 }))));
    expect([buckets.colorMap, buckets.vmin, buckets.vmax]).toEqual(['sequential', 0, 15]);

    const bytes = await module.visualizeBias({ head: 1, queryLength: 8, file: 'ignored-by-the-stand-in.png' });
    expect(Array.from(bytes)).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(drawn.at(-1)).toEqual(await module.biasHeatmap({ head: 1, queryLength: 8, file: 'ignored-by-the-stand-in.png' }));
    expect(drawn.at(-1)?.values).toHaveLength(8);
    expect(drawn.at(-1)?.values[0]).toHaveLength(8); // keyLength defaults to queryLength
    expect(await module.visualizeBiasSvg()).toBe('<svg/>');
    expect(drawn.at(-1)?.values).toHaveLength(64);
    module.dispose();
  });
});

describe('RelativePositionBias through the shared battery', () => {
  it.each([
    ['bidirectional', { numHeads: 3, numBuckets: 8, maxDistance: 12 }, [6, 6]],
    ['unidirectional, a cached step', { numHeads: 2, numBuckets: 6, maxDistance: 10, bidirectional: false }, [2, 9, { offset: 7 }]],
  ] as const)('%s', async (_label, options, input) => {
    const count = (options.numBuckets ?? 32) * options.numHeads;
    await runModuleTest(() => new RelativePositionBias(options), () => [...input], { expectedParameterCount: count });
  });
});
