import * as fs from 'node:fs';
import * as path from 'node:path';
import { MieConfigError, MieShapeError, clearSeed, setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { TokenEmbedding, type TokenEmbeddingOptions } from './index';

interface FixtureCase {
  name: string;
  paddingIdx: number | null;
  weight: number[][];
  output: number[][][];
  weightGradient: number[][];
}
// Produced by scripts/fixtures/embeddings.py with PyTorch.
const fixture: { vocabSize: number; dModel: number; ids: number[][]; lossWeights: number[][][]; cases: FixtureCase[] } = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../fixtures/token-embedding.json'), 'utf8'),
);

const BACKENDS = ['cpu', 'wasm'] as const;

/** Largest |actual - expected| over all elements. */
function maxAbsDiff(actual: tf.Tensor, expected: number[] | number[][] | number[][][]): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(actual, tf.tensor(expected)))).dataSync()[0]);
}

/** The values of row `row` of a 2-D tensor, read without leaking. */
function rowValues(table: tf.Tensor, row: number): number[] {
  const slice = tf.slice(table, [row, 0], [1, -1]);
  const values = Array.from(slice.dataSync());
  slice.dispose();
  return values;
}

function ids2d(values: number[][], dtype: 'int32' | 'float32' | 'bool' = 'int32'): tf.Tensor2D {
  return tf.tensor2d(values, [values.length, values[0].length], dtype);
}

afterEach(() => clearSeed());

describe.each(BACKENDS)('TokenEmbedding on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  describe.each(fixture.cases.map((c) => [c.name, c] as const))('matches torch.nn.Embedding * sqrt(d_model): %s', (_name, c) => {
    it('forward output and weight gradient', () => {
      const before = tf.memory().numTensors;
      const embedding = new TokenEmbedding({ vocabSize: fixture.vocabSize, dModel: fixture.dModel, paddingIdx: c.paddingIdx });
      const weight = tf.tensor2d(c.weight);
      embedding.loadStateDict({ weight });
      weight.dispose();
      const ids = ids2d(fixture.ids);
      const lossWeights = tf.tensor3d(fixture.lossWeights);

      const output = embedding.forward(ids);
      expect(output.shape).toEqual([2, 5, fixture.dModel]);
      expect(maxAbsDiff(output, c.output)).toBeLessThan(1e-5);

      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(embedding.forward(ids), lossWeights)), [embedding.weight]);
      const gradient = grads[embedding.weight.name];
      expect(maxAbsDiff(gradient, c.weightGradient)).toBeLessThan(1e-5);
      if (c.paddingIdx !== null) {
        const row = embedding.config.paddingIdx as number;
        expect(rowValues(gradient, row)).toEqual(Array(fixture.dModel).fill(0));
      }

      tf.dispose([value, gradient, output, ids, lossWeights]);
      embedding.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  it('keeps the padding row at zero through Adam steps, and a loaded non-zero padding row unchanged', () => {
    const before = tf.memory().numTensors;
    setSeed(3);
    for (const [paddingIdx, row] of [[2, 2], [-1, 9]] as const) {
      const embedding = new TokenEmbedding({ vocabSize: 10, dModel: 4, paddingIdx });
      expect(embedding.config.paddingIdx).toBe(row);
      const readRow = () => rowValues(embedding.weight, row);
      expect(readRow()).toEqual([0, 0, 0, 0]);
      const ids = ids2d([[row, 1, row, 3], [4, row, 5, row]]);
      const target = tf.randomNormal([2, 4, 4], 0, 1, 'float32', 5);
      const train = (steps: number) => {
        const optimizer = tf.train.adam(0.1);
        for (let i = 0; i < steps; i++) {
          optimizer.minimize(() => tf.mean(tf.square(tf.sub(embedding.forward(ids), target))) as tf.Scalar, false, [embedding.weight]);
        }
        optimizer.dispose();
      };
      const otherBefore = rowValues(embedding.weight, 1);
      train(5);
      expect(readRow()).toEqual([0, 0, 0, 0]);
      // The other rows did train.
      expect(rowValues(embedding.weight, 1)).not.toEqual(otherBefore);

      // PyTorch semantics: the padding row is never updated, whatever it holds.
      const shifted = tf.add(embedding.weight, 0.5);
      embedding.loadStateDict({ weight: shifted });
      shifted.dispose();
      const loaded = readRow();
      train(3);
      expect(readRow()).toEqual(loaded);
      tf.dispose([ids, target]);
      embedding.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('passes the module battery with a padding row', async () => {
    await runModuleTest(
      () => new TokenEmbedding({ vocabSize: 9, dModel: 5, paddingIdx: -1 }),
      () => [ids2d([[0, 8, 3, 3], [8, 1, 2, 7]])],
      { expectedParameterCount: 9 * 5, backends: [backend, backend === 'cpu' ? 'wasm' : 'cpu'] },
    );
  });
});

describe('TokenEmbedding', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  it('passes the module battery (config and save/load round trip, gradients, cpu/wasm agreement, no leaks)', async () => {
    setSeed(1);
    await runModuleTest(
      () => new TokenEmbedding({ vocabSize: 13, dModel: 8 }),
      () => [ids2d([[0, 12, 5, 5, 7], [1, 2, 3, 12, 0]])],
      { expectedParameterCount: 13 * 8 },
    );
  });

  it('draws the table from Xavier uniform, bound sqrt(6 / (vocabSize + dModel))', () => {
    setSeed(17);
    const [vocabSize, dModel] = [4000, 64];
    const embedding = new TokenEmbedding({ vocabSize, dModel });
    const bound = Math.sqrt(6 / (vocabSize + dModel));
    const { mean, variance } = tf.moments(embedding.weight);
    const maxAbs = tf.max(tf.abs(embedding.weight));
    // 256k uniform draws: the max is within 0.1% of the bound (failure odds ~e^-256), and never beyond.
    expect(maxAbs.dataSync()[0]).toBeLessThanOrEqual(bound);
    expect(maxAbs.dataSync()[0]).toBeGreaterThan(bound * 0.999);
    expect(Math.abs(Math.sqrt(variance.dataSync()[0]) / (bound / Math.sqrt(3)) - 1)).toBeLessThan(0.01);
    expect(Math.abs(mean.dataSync()[0])).toBeLessThan(bound * 0.01);
    tf.dispose([mean, variance, maxAbs]);
    embedding.dispose();
  });

  it('is reproducible under setSeed, and different without it', () => {
    const draw = () => {
      const e = new TokenEmbedding({ vocabSize: 20, dModel: 4 });
      const values = Array.from(e.weight.dataSync());
      e.dispose();
      return values;
    };
    setSeed(5);
    const a = draw();
    setSeed(5);
    expect(draw()).toEqual(a);
    clearSeed();
    expect(draw()).not.toEqual(a);
  });

  it('scales the looked-up rows by sqrt(dModel), with outputs [batch, seq, dModel]', () => {
    const embedding = new TokenEmbedding({ vocabSize: 5, dModel: 9 });
    const ids = ids2d([[4, 0, 4]]);
    const out = embedding.forward(ids);
    expect(out.shape).toEqual([1, 3, 9]);
    const table = embedding.weight.arraySync() as number[][];
    const expected = [[table[4], table[0], table[4]].map((row) => row.map((v) => v * 3))];
    expect(maxAbsDiff(out, expected)).toBeLessThan(1e-6);
    tf.dispose([ids, out]);
    embedding.dispose();
  });

  it('accepts an empty sequence', () => {
    const embedding = new TokenEmbedding({ vocabSize: 5, dModel: 3 });
    const ids = tf.zeros([2, 0], 'int32');
    const out = embedding.forward(ids);
    expect(out.shape).toEqual([2, 0, 3]);
    tf.dispose([ids, out]);
    embedding.dispose();
  });

  describe('configuration', () => {
    it('resolves defaults and negative paddingIdx, and never changes the caller object', () => {
      const options: TokenEmbeddingOptions = { vocabSize: 10, dModel: 4, paddingIdx: -3 };
      const embedding = new TokenEmbedding(options);
      expect(options).toEqual({ vocabSize: 10, dModel: 4, paddingIdx: -3 });
      expect(embedding.config).toEqual({ vocabSize: 10, dModel: 4, paddingIdx: 7 });
      const twin = new TokenEmbedding(embedding.config);
      expect(twin.config).toEqual(embedding.config);
      const plain = new TokenEmbedding({ vocabSize: 10, dModel: 4 });
      expect(plain.config).toEqual({ vocabSize: 10, dModel: 4, paddingIdx: null });
      expect(plain.namedParameters().map(([name, v]) => [name, v.shape])).toEqual([['weight', [10, 4]]]);
      expect(plain.countParameters()).toBe(40);
      [embedding, twin, plain].forEach((e) => e.dispose());
    });

    it.each([
      [{ vocabSize: 0, dModel: 4 }, /TokenEmbedding: option "vocabSize" must be a positive integer\. Received: 0\./],
      [{ vocabSize: 2.5, dModel: 4 }, /option "vocabSize" .* Received: 2\.5\./],
      [{ vocabSize: '10', dModel: 4 }, /option "vocabSize" .* Received: "10"\./],
      [{ vocabSize: 10, dModel: -1 }, /option "dModel" must be a positive integer\. Received: -1\./],
      [{ vocabSize: 10, dModel: NaN }, /option "dModel" .* Received: NaN\./],
      [{ vocabSize: 10, dModel: 4, paddingIdx: 10 }, /option "paddingIdx" must be null or an integer in \[-10, 10\) \(vocabSize 10\)\. Received: 10\./],
      [{ vocabSize: 10, dModel: 4, paddingIdx: -11 }, /option "paddingIdx" .* Received: -11\./],
      [{ vocabSize: 10, dModel: 4, paddingIdx: 1.5 }, /option "paddingIdx" .* Received: 1\.5\./],
      [undefined, /TokenEmbedding: options must be an object/],
    ])('rejects %p', (options, message) => {
      const before = tf.memory().numTensors;
      expect(() => new TokenEmbedding(options as unknown as TokenEmbeddingOptions)).toThrow(MieConfigError);
      expect(() => new TokenEmbedding(options as unknown as TokenEmbeddingOptions)).toThrow(message);
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  describe('bad ids are a MieShapeError naming the module, the argument and the value', () => {
    let embedding: TokenEmbedding;
    beforeAll(() => {
      embedding = new TokenEmbedding({ vocabSize: 10, dModel: 4 });
    });
    afterAll(() => embedding.dispose());

    it.each([
      ['a negative id', () => ids2d([[1, 2], [3, -1]]), /TokenEmbedding: ids must be .* in \[0, 10\) \(vocabSize 10\)\. Received: -1 at position \[1, 1\]\./],
      ['an id equal to vocabSize', () => ids2d([[1, 10, 2]]), /Received: 10 at position \[0, 1\]\./],
      ['a huge id, with a count of bad ids', () => ids2d([[2147483647, 0, 11]]), /Received: 2147483647 at position \[0, 0\] \(2 ids out of range in all\)\./],
      ['float32 ids', () => ids2d([[1, 2]], 'float32'), /ids must be a live int32 tensor .* Received: tensor float32\[1, 2\] \(convert with tf\.cast\(ids, 'int32'\)/],
      ['bool ids', () => ids2d([[1, 0]], 'bool'), /Received: tensor bool\[1, 2\]/],
      ['rank 1 ids', () => tf.tensor1d([1, 2], 'int32'), /ids must be .* \[batch, seq\] .* Received: tensor int32\[2\] \(rank 1\)\./],
      ['rank 3 ids', () => tf.zeros([1, 2, 1], 'int32'), /Received: tensor int32\[1, 2, 1\] \(rank 3\)\./],
      ['a plain array', () => [[1, 2]], /ids must be a live int32 tensor .* Received: \[\[1, 2\]\]\./],
      ['a disposed tensor', () => {
        const t = ids2d([[1, 2]]);
        t.dispose();
        return t;
      }, /Received: tensor int32\[1, 2\]\./],
    ])('%s', (_label, makeIds, message) => {
      const ids = makeIds();
      const before = tf.memory().numTensors;
      expect(() => embedding.forward(ids as tf.Tensor)).toThrow(MieShapeError);
      expect(() => embedding.forward(ids as tf.Tensor)).toThrow(message);
      expect(tf.memory().numTensors).toBe(before);
      if (ids instanceof tf.Tensor) ids.dispose();
    });
  });

  describe('attend: the table as a tied output projection', () => {
    it('equals x @ weight^T, with gradients into the table from both uses', () => {
      const before = tf.memory().numTensors;
      setSeed(9);
      const embedding = new TokenEmbedding({ vocabSize: 7, dModel: 3 });
      const x = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 2);
      const logits = embedding.attend(x);
      expect(logits.shape).toEqual([2, 4, 7]);
      const w = embedding.weight.arraySync() as number[][];
      const manual = (x.arraySync() as number[][][]).map((rows) => rows.map((row) => w.map((wRow) => wRow.reduce((s, v, k) => s + v * row[k], 0))));
      expect(maxAbsDiff(logits, manual)).toBeLessThan(1e-5);

      // Tied use: embed, project back, and the table gets one summed gradient.
      const ids = ids2d([[1, 2, 3], [6, 0, 1]]);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(embedding.attend(embedding.forward(ids)))), [embedding.weight]);
      expect(grads[embedding.weight.name].shape).toEqual([7, 3]);
      expect(Array.from(grads[embedding.weight.name].dataSync()).every(Number.isFinite)).toBe(true);
      tf.dispose([x, logits, ids, value, grads[embedding.weight.name]]);
      embedding.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it.each([
      ['rank 2', () => tf.zeros([4, 3])],
      ['the wrong width', () => tf.zeros([1, 4, 5])],
      ['int32 values', () => tf.zeros([1, 4, 3], 'int32')],
    ])('rejects %s with a MieShapeError', (_label, makeX) => {
      const embedding = new TokenEmbedding({ vocabSize: 7, dModel: 3 });
      const x = makeX();
      expect(() => embedding.attend(x)).toThrow(MieShapeError);
      expect(() => embedding.attend(x)).toThrow(/TokenEmbedding: attend\(x\): x must be a live float32 tensor \[batch, seq, dModel = 3\]\. Received: tensor/);
      x.dispose();
      embedding.dispose();
    });
  });

  it('trains on wasm: fitting target vectors reduces the loss, with no tensor growth across steps', () => {
    setSeed(21);
    const before = tf.memory().numTensors;
    const embedding = new TokenEmbedding({ vocabSize: 50, dModel: 16, paddingIdx: 0 });
    const ids = tf.tidy(() => tf.cast(tf.randomUniform([8, 12], 1, 50, 'float32', 4), 'int32'));
    // Targets depend only on the id (the first 16 columns of a fixed random [50, 32] map), so the table can fit them.
    const targets = tf.tidy(() => tf.gather(tf.randomNormal([50, 16], 0, 1, 'float32', 6), ids));
    const optimizer = tf.train.adam(0.05);
    const step = () => {
      const loss = optimizer.minimize(() => tf.mean(tf.square(tf.sub(embedding.forward(ids), targets))) as tf.Scalar, true, [embedding.weight]);
      const value = (loss as tf.Scalar).dataSync()[0];
      (loss as tf.Scalar).dispose();
      return value;
    };
    const first = step(); // creates Adam's slot variables
    const afterFirst = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 60; i++) {
      last = step();
      expect(tf.memory().numTensors).toBe(afterFirst);
    }
    expect(last).toBeLessThan(first * 0.05);
    optimizer.dispose();
    tf.dispose([ids, targets]);
    embedding.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
