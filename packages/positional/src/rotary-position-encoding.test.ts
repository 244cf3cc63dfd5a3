import { MieConfigError, MieShapeError, setBackend, tf } from '@mie/core';
import { runModuleTest, withInputScale } from '@mie/test-utils';
import fc from 'fast-check';
import { fromFixture, loadFixture, maxAbsDifference, type FixtureTensor } from './__tests__/fixtures';
import { RotaryPositionEncoding } from './rotary-position-encoding';

// @mie/plot is an optional peer these tests run without, even where the pnpm bin shim's NODE_PATH
// would make the workspace copy resolvable (its own tests draw through this package).
jest.mock(
  '@mie/plot',
  () => {
    throw Object.assign(new Error("Cannot find module '@mie/plot'"), { code: 'MODULE_NOT_FOUND' });
  },
  { virtual: true },
);

interface RotaryFixture {
  headDim: number;
  maxSeqLength: number;
  q: FixtureTensor;
  k: FixtureTensor;
  scoreWeight: FixtureTensor;
  qWeight: FixtureTensor;
  cases: Array<{
    interleaved: boolean;
    base: number;
    offset: number;
    qRotated: FixtureTensor;
    kRotated: FixtureTensor;
    loss: number;
    gradQ: FixtureTensor;
    gradK: FixtureTensor;
  }>;
}

const fixture = loadFixture<RotaryFixture>('rotary.json');
const TOLERANCE = 1e-5;

describe.each(['cpu', 'wasm'] as const)('RotaryPositionEncoding matches PyTorch (HF LLaMA / RoFormer) on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each(fixture.cases.map((c) => [`${c.interleaved ? 'interleaved' : 'rotate-half'}, base ${c.base}, offset ${c.offset}`, c] as const))(
    '%s: outputs and gradients',
    (_label, c) => {
      const before = tf.memory().numTensors;
      const rope = new RotaryPositionEncoding({ headDim: fixture.headDim, maxSeqLength: fixture.maxSeqLength, base: c.base, interleaved: c.interleaved });
      const [q, k, scoreWeight, qWeight] = [fixture.q, fixture.k, fixture.scoreWeight, fixture.qWeight].map(fromFixture);
      const [qRotated, kRotated] = rope.forward(q, k, { offset: c.offset });
      expect(maxAbsDifference(qRotated, c.qRotated)).toBeLessThan(TOLERANCE);
      expect(maxAbsDifference(kRotated, c.kRotated)).toBeLessThan(TOLERANCE);

      // The fixture's loss: sum(scores * W) + sum(qRotated * V), scores[b, h, s, t] = qRot . kRot
      // with the one key head shared by both query heads.
      const loss = (qIn: tf.Tensor, kIn: tf.Tensor): tf.Scalar => {
        const [qr, kr] = rope.forward(qIn, kIn, { offset: c.offset });
        const qHeads = tf.transpose(qr, [0, 2, 1, 3]); // [b, s, h, d] -> [b, h, s, d]
        const kHeads = tf.tile(tf.transpose(kr, [0, 2, 1, 3]), [1, 2, 1, 1]); // [b, t, 1, d] -> [b, 2, t, d]
        const scores = tf.matMul(qHeads, kHeads, false, true); // [b, h, s, t]
        return tf.add(tf.sum(tf.mul(scores, scoreWeight)), tf.sum(tf.mul(qr, qWeight)));
      };
      const { value, grads } = tf.valueAndGrads(loss)([q, k]);
      expect(Math.abs(value.dataSync()[0] - c.loss)).toBeLessThan(1e-4);
      expect(maxAbsDifference(grads[0], c.gradQ)).toBeLessThan(TOLERANCE);
      expect(maxAbsDifference(grads[1], c.gradK)).toBeLessThan(TOLERANCE);

      tf.dispose([q, k, scoreWeight, qWeight, qRotated, kRotated, value, ...grads]);
      rope.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});

describe('RotaryPositionEncoding', () => {
  const headDim = 16;
  const ropes = {} as Record<'rotate-half' | 'interleaved', RotaryPositionEncoding>;
  beforeAll(async () => {
    await setBackend('cpu');
    ropes['rotate-half'] = new RotaryPositionEncoding({ headDim, maxSeqLength: 4096 });
    ropes.interleaved = new RotaryPositionEncoding({ headDim, maxSeqLength: 4096, interleaved: true });
  });
  afterAll(() => Object.values(ropes).forEach((rope) => rope.dispose()));

  it('has the documented defaults, no parameters and no state', () => {
    const rope = new RotaryPositionEncoding({ headDim: 64 });
    expect(rope.config).toEqual({ headDim: 64, maxSeqLength: 5000, base: 10000, interleaved: false, scaling: null });
    expect(rope.attentionFactor).toBe(1);
    expect(rope.countParameters({ trainableOnly: false })).toBe(0);
    expect(rope.stateDict()).toEqual({});
    expect(rope.cosTable.shape).toEqual([5000, 64]);
    expect(rope.sinTable.shape).toEqual([5000, 64]);
    const before = tf.memory().numTensors;
    rope.dispose();
    expect(tf.memory().numTensors).toBe(before - 2);
  });

  // Pairs: rotate-half pairs dim i with i + d/2; interleaved pairs 2i with 2i + 1.
  const pairIndices = (interleaved: boolean, i: number): [number, number] => (interleaved ? [2 * i, 2 * i + 1] : [i, i + headDim / 2]);

  describe.each(['rotate-half', 'interleaved'] as const)('%s', (name) => {
    const interleaved = name === 'interleaved';
    let rope: RotaryPositionEncoding;
    beforeAll(() => {
      rope = ropes[name];
    });

    it('keeps the norm of every pair (fast-check)', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 4090 }), fc.integer({ min: 1, max: 1_000_000 }), (offset, seed) => {
          const x = tf.randomNormal([2, 6, 3, headDim], 0, 1, 'float32', seed);
          const rotated = tf.tidy(() => rope.rotate(x, { offset }));
          const [before, after] = [x.arraySync() as number[][][][], rotated.arraySync() as number[][][][]];
          tf.dispose([x, rotated]);
          for (let b = 0; b < 2; b++) {
            for (let s = 0; s < 6; s++) {
              for (let h = 0; h < 3; h++) {
                for (let i = 0; i < headDim / 2; i++) {
                  const [u, v] = pairIndices(interleaved, i);
                  const n0 = Math.hypot(before[b][s][h][u], before[b][s][h][v]);
                  const n1 = Math.hypot(after[b][s][h][u], after[b][s][h][v]);
                  if (Math.abs(n1 - n0) > 1e-5 * Math.max(1, n0)) return false;
                }
              }
            }
          }
          return true;
        }),
        { numRuns: 25, seed: 42 },
      );
    });

    it('makes q . k depend only on the relative position (fast-check)', () => {
      // Rows of one q vector and one k vector placed at positions m and n, then at m + shift and n + shift.
      const dotAt = (q: tf.Tensor, k: tf.Tensor, m: number, n: number): number =>
        tf.tidy(() => tf.sum(tf.mul(rope.rotate(q, { offset: m }), rope.rotate(k, { offset: n }))).dataSync()[0]);
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2000 }),
          fc.integer({ min: 0, max: 2000 }),
          fc.integer({ min: 0, max: 2000 }),
          fc.integer({ min: 1, max: 1_000_000 }),
          (m, n, shift, seed) => {
            const q = tf.randomNormal([1, 1, 1, headDim], 0, 1, 'float32', seed);
            const k = tf.randomNormal([1, 1, 1, headDim], 0, 1, 'float32', seed + 1);
            const reference = dotAt(q, k, m, n);
            const shifted = dotAt(q, k, m + shift, n + shift);
            // Only the difference matters: put the query at 0 and the key at n - m (when n >= m).
            const relative = n >= m ? dotAt(q, k, 0, n - m) : dotAt(q, k, m - n, 0);
            tf.dispose([q, k]);
            return Math.abs(shifted - reference) < 1e-4 * headDim && Math.abs(relative - reference) < 1e-4 * headDim;
          },
        ),
        { numRuns: 25, seed: 7 },
      );
    });

    it('rotates position 0 by nothing and pair i by p * base^(-2i/d) at position p', () => {
      const p = 37;
      const x = tf.randomNormal([1, p + 1, 1, headDim], 0, 1, 'float32', 9);
      const y = rope.rotate(x);
      const [xs, ys] = [x.arraySync() as number[][][][], y.arraySync() as number[][][][]];
      for (let d = 0; d < headDim; d++) expect(ys[0][0][0][d]).toBeCloseTo(xs[0][0][0][d], 6);
      for (let i = 0; i < headDim / 2; i++) {
        const angle = p * 10000 ** (-(2 * i) / headDim);
        const [u, v] = pairIndices(interleaved, i);
        const [a, b] = [xs[0][p][0][u], xs[0][p][0][v]];
        expect(ys[0][p][0][u]).toBeCloseTo(a * Math.cos(angle) - b * Math.sin(angle), 5);
        expect(ys[0][p][0][v]).toBeCloseTo(b * Math.cos(angle) + a * Math.sin(angle), 5);
      }
      tf.dispose([x, y]);
    });

    it('with offset, equals the matching rows of a longer sequence (KV-cache decoding)', () => {
      const q = tf.randomNormal([2, 9, 2, headDim], 0, 1, 'float32', 1);
      const k = tf.randomNormal([2, 9, 1, headDim], 0, 1, 'float32', 2);
      const [qFull, kFull] = rope.forward(q, k);
      for (const offset of [0, 4, 8]) {
        const length = 9 - offset;
        const qTail = tf.slice(q, [0, offset, 0, 0], [2, length, 2, headDim]);
        const kTail = tf.slice(k, [0, offset, 0, 0], [2, length, 1, headDim]);
        const [qStep, kStep] = rope.forward(qTail, kTail, { offset });
        expect(maxAbsDifference(qStep, tf.slice(qFull, [0, offset, 0, 0], [2, length, 2, headDim]))).toBe(0);
        expect(maxAbsDifference(kStep, tf.slice(kFull, [0, offset, 0, 0], [2, length, 1, headDim]))).toBe(0);
        tf.dispose([qTail, kTail, qStep, kStep]);
      }
      tf.dispose([q, k, qFull, kFull]);
    });
  });

  it('interleaved and rotate-half differ by a fixed permutation of the head dimensions', () => {
    // P maps pair (2i, 2i + 1) to (i, i + d/2): rotateHalf(P x) = P interleaved(x).
    const half = headDim / 2;
    const permutation = tf.tensor1d(Array.from({ length: headDim }, (_, j) => (j < half ? 2 * j : 2 * (j - half) + 1)), 'int32');
    const x = tf.randomNormal([2, 7, 3, headDim], 0, 1, 'float32', 3);
    const a = ropes['rotate-half'].rotate(tf.gather(x, permutation, 3), { offset: 100 });
    const b = tf.gather(ropes.interleaved.rotate(x, { offset: 100 }), permutation, 3);
    expect(maxAbsDifference(a, b)).toBeLessThan(1e-6);
    tf.dispose([permutation, x, a, b]);
  });

  it('accepts q and k of different lengths, heads and batch; each uses its own positions', () => {
    const rope = ropes['rotate-half'];
    const q = tf.randomNormal([1, 3, 4, headDim], 0, 1, 'float32', 4);
    const k = tf.randomNormal([2, 5, 1, headDim], 0, 1, 'float32', 5);
    const [qr, kr] = rope.forward(q, k, { offset: 2 });
    expect(qr.shape).toEqual([1, 3, 4, headDim]);
    expect(kr.shape).toEqual([2, 5, 1, headDim]);
    const [qAlone, kAlone] = [rope.rotate(q, { offset: 2 }), rope.rotate(k, { offset: 2 })];
    expect(maxAbsDifference(qr, qAlone)).toBe(0);
    expect(maxAbsDifference(kr, kAlone)).toBe(0);
    tf.dispose([q, k, qr, kr, qAlone, kAlone]);
  });

  it('does not leak tensors', async () => {
    const rope = ropes.interleaved;
    const q = tf.ones([1, 4, 2, headDim]);
    const before = tf.memory().numTensors;
    tf.dispose(rope.forward(q, q, { offset: 5 }));
    tf.dispose(rope.rotate(q));
    tf.dispose(tf.grads((x: tf.Tensor) => tf.sum(rope.rotate(x, { offset: 3 })))([q]));
    rope.rotationHeatmap({ maxPositions: 8 });
    await expect(rope.visualizeRotation()).rejects.toThrow(/RotaryPositionEncoding\.visualizeRotation: drawing needs the optional package @mie\/plot/);
    expect(tf.memory().numTensors).toBe(before);
    q.dispose();
  });

  describe('errors', () => {
    it.each([
      ['an odd headDim', { headDim: 7 }, /RotaryPositionEncoding: option "headDim" must be even: rotary embeddings rotate pairs of dimensions\. Received: 7\./],
      ['a missing headDim', {}, /RotaryPositionEncoding: option "headDim" must be a positive integer\. Received: undefined\./],
      ['maxSeqLength -1', { headDim: 8, maxSeqLength: -1 }, /option "maxSeqLength" must be a positive integer\. Received: -1\./],
      ['base 1', { headDim: 8, base: 1 }, /option "base" must be a finite number greater than 1\. Received: 1\./],
      ['a string interleaved', { headDim: 8, interleaved: 'yes' }, /option "interleaved" must be a boolean\. Received: "yes"\./],
      ['a snake_case option', { head_dim: 8 }, /RotaryPositionEncoding: unknown option "head_dim"; the options are headDim, maxSeqLength, base, interleaved, scaling\./],
    ])('rejects %s with MieConfigError', (_label, options, message) => {
      const build = () => new RotaryPositionEncoding(options as never);
      expect(build).toThrow(MieConfigError);
      expect(build).toThrow(message);
    });

    it('rejects wrong shapes and positions beyond maxSeqLength with MieShapeError', () => {
      const rope = new RotaryPositionEncoding({ headDim: 8, maxSeqLength: 10 });
      const good = tf.zeros([1, 4, 2, 8]);
      const cases: Array<[() => unknown, RegExp]> = [
        [() => rope.forward(tf.zeros([1, 4, 8]), good), /RotaryPositionEncoding: query q must have shape rank 4 with last dimension headDim = 8\. Received: tensor float32\[1, 4, 8\]\./],
        [() => rope.forward(good, tf.zeros([1, 4, 2, 6])), /RotaryPositionEncoding: key k must have shape \[\.\.\., 8\] \(last dimension = headDim\)\. Received: tensor float32\[1, 4, 2, 6\]\./],
        [() => rope.forward(good, tf.zeros([1, 4, 2, 8], 'int32')), /key k must have dtype float32 .*Received: tensor int32\[1, 4, 2, 8\]\./],
        [() => rope.forward(tf.zeros([1, 11, 2, 8]), good), /query q needs sequence length 11, but maxSeqLength is 10/],
        [() => rope.forward(good, good, { offset: 7 }), /query q needs positions 7\.\.10 \(offset 7 \+ sequence length 4\), but maxSeqLength is 10/],
        [() => rope.rotate(good, { offset: 8 }), /input x needs positions 8\.\.11/],
      ];
      for (const [call, message] of cases) {
        expect(call).toThrow(MieShapeError);
        expect(call).toThrow(message);
      }
      expect(() => rope.forward(good, good, { offset: -2 })).toThrow(MieConfigError);
      expect(() => rope.forward(good, good, { offset: -2 })).toThrow(/option "offset" must be a non-negative integer/);
      good.dispose();
      rope.dispose();
    });
  });
});

describe('RotaryPositionEncoding through the shared battery', () => {
  const input = () => [tf.randomNormal([2, 5, 2, 8], 0, 1, 'float32', 1), tf.randomNormal([2, 3, 1, 8], 0, 1, 'float32', 2)];

  // Behind a trainable input scale the battery also checks gradients through the rotation, and
  // their agreement on cpu and wasm.
  it.each([false, true])('passes behind a trainable input scale (interleaved %s)', async (interleaved) => {
    const Scaled = withInputScale(RotaryPositionEncoding);
    await runModuleTest(() => new Scaled({ headDim: 8, maxSeqLength: 16, interleaved }), () => [...input(), { offset: 4 }], { expectedParameterCount: 1 });
  });

  it.each([false, true])('passes directly, without parameters (interleaved %s)', async (interleaved) => {
    await runModuleTest(() => new RotaryPositionEncoding({ headDim: 8, maxSeqLength: 16, interleaved }), () => [...input(), { offset: 11 }], {
      expectedParameterCount: 0,
    });
  });
});

