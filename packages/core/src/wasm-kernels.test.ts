import fc from 'fast-check';
import { setBackend } from './backend'; // importing backend.ts registers the wasm kernels
import { seededRandom } from './random';
import { tf } from './tfjs';
import { loadBlas } from './blas';
import { registerWasmKernels, stockWasmKernels } from './wasm-kernels';
import { simdGemm } from './simd-gemm';
import { setWasmGemm, xnnpackGemm, type Gemm } from './wasm-matmul';

type Backend = 'cpu' | 'wasm';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
const rng = seededRandom;

function randomFloats(n: number, random: () => number): number[] {
  return Array.from({ length: n }, () => random() * 2 - 1);
}

function randomInts(n: number, random: () => number, lo = -1000, hi = 1000): number[] {
  return Array.from({ length: n }, () => lo + Math.floor(random() * (hi - lo)));
}

/** Runs `fn` with `backend` active and returns the shape, dtype and values of the tensor it makes. */
async function on(backend: Backend, fn: () => tf.Tensor): Promise<{ shape: number[]; dtype: string; values: number[] }> {
  await setBackend(backend);
  const t = fn();
  try {
    return { shape: t.shape.slice(), dtype: t.dtype, values: Array.from(t.dataSync()) };
  } finally {
    t.dispose();
  }
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= tolerance) && (at < 0 || diff > worst)) {
      worst = diff;
      at = i;
    }
  }
  if (at >= 0) throw new Error(`values differ at ${at}: ${actual[at]} vs ${expected[at]} (|diff| ${worst} > ${tolerance})`);
}

/** Plain-JS reference with TensorFlow's semantics: ids outside [0, numSegments) are dropped. */
function referenceSegmentSum(x: number[], xShape: number[], ids: number[], numSegments: number, dtype: 'float32' | 'int32'): number[] {
  const inner = xShape.slice(1).reduce((a, b) => a * b, 1);
  const out = dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  ids.forEach((id, i) => {
    if (id < 0 || id >= numSegments) return;
    for (let j = 0; j < inner; j++) out[id * inner + j] += x[i * inner + j];
  });
  return Array.from(out);
}

afterAll(async () => {
  await setBackend('cpu');
});

describe('UnsortedSegmentSum on wasm', () => {
  it('is registered for the wasm backend (and registerWasmKernels is idempotent)', () => {
    const kernel = tf.getKernel('UnsortedSegmentSum', 'wasm');
    expect(kernel).toBeDefined();
    expect(tf.getKernel('Einsum', 'wasm')).toBeDefined();
    registerWasmKernels();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBe(kernel);
  });

  const cases: Array<{ name: string; shape: number[]; ids: number[]; numSegments: number }> = [
    { name: '1-D data, repeated ids', shape: [10], ids: [0, 3, 3, 1, 0, 2, 3, 3, 1, 0], numSegments: 4 },
    { name: '1-D data, ids out of range are dropped', shape: [8], ids: [-1, 2, 4, 5, 100, 0, -7, 2], numSegments: 5 },
    { name: '2-D data, numSegments beyond the largest id', shape: [7, 3], ids: [1, 1, 0, 4, 4, 4, 2], numSegments: 9 },
    { name: '4-D data, repeats and out-of-range ids', shape: [6, 2, 3, 4], ids: [5, 0, 5, 9, -2, 0], numSegments: 6 },
    { name: 'every id out of range', shape: [3, 5], ids: [-1, 3, 7], numSegments: 3 },
    { name: 'a single row', shape: [1, 16], ids: [0], numSegments: 2 },
  ];

  for (const dtype of ['float32', 'int32'] as const) {
    for (const [index, c] of cases.entries()) {
      it(`matches cpu for ${dtype}: ${c.name}`, async () => {
        const random = rng(1000 * index + (dtype === 'int32' ? 7 : 3));
        const size = c.shape.reduce((a, b) => a * b, 1);
        const x = dtype === 'int32' ? randomInts(size, random) : randomFloats(size, random);
        const run = () => tf.unsortedSegmentSum(tf.tensor(x, c.shape, dtype), tf.tensor1d(c.ids, 'int32'), c.numSegments);
        const cpu = await on('cpu', () => tf.tidy(run));
        const wasm = await on('wasm', () => tf.tidy(run));
        const expectedShape = [c.numSegments, ...c.shape.slice(1)];
        expect(wasm.shape).toEqual(expectedShape);
        expect(cpu.shape).toEqual(expectedShape);
        expect(wasm.dtype).toBe(dtype);
        const reference = referenceSegmentSum(x, c.shape, c.ids, c.numSegments, dtype);
        if (dtype === 'int32') {
          expect(wasm.values).toEqual(cpu.values);
          expect(wasm.values).toEqual(reference);
        } else {
          expectClose(wasm.values, cpu.values, 1e-6);
          expectClose(wasm.values, reference, 1e-6);
        }
      });
    }
  }

  it('handles random shapes and ids (property check against cpu)', async () => {
    const random = rng(42);
    for (let trial = 0; trial < 8; trial++) {
      const rows = 1 + Math.floor(random() * 12);
      const rank = 1 + Math.floor(random() * 3);
      const shape = [rows, ...Array.from({ length: rank - 1 }, () => 1 + Math.floor(random() * 4))];
      const numSegments = 1 + Math.floor(random() * 8);
      const ids = randomInts(rows, random, -2, numSegments + 2);
      const size = shape.reduce((a, b) => a * b, 1);
      const x = randomFloats(size, random);
      const run = () => tf.unsortedSegmentSum(tf.tensor(x, shape), tf.tensor1d(ids, 'int32'), numSegments);
      const cpu = await on('cpu', () => tf.tidy(run));
      const wasm = await on('wasm', () => tf.tidy(run));
      expect(wasm.shape).toEqual(cpu.shape);
      expectClose(wasm.values, cpu.values, 1e-6);
    }
  });

  it('stays correct when allocating the output grows the wasm heap', async () => {
    // 64 MiB of output: more than the heap holds after the tests above, so makeOutput grows it.
    const numSegments = 1 << 20;
    const inner = 16;
    const ids = [numSegments - 1, 3, numSegments - 1, numSegments];
    const random = rng(5);
    const x = randomFloats(ids.length * inner, random);
    await setBackend('wasm');
    const heapBytes = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;
    const heapBefore = heapBytes();
    const out = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d(x, [ids.length, inner]), tf.tensor1d(ids, 'int32'), numSegments));
    expect(heapBytes()).toBeGreaterThan(heapBefore);
    const values = out.dataSync();
    out.dispose();
    expect(values.length).toBe(numSegments * inner);
    const last = Array.from(values.subarray((numSegments - 1) * inner));
    expectClose(
      last,
      x.slice(0, inner).map((v, j) => Math.fround(v + x[2 * inner + j])),
      1e-6,
    );
    expectClose(Array.from(values.subarray(3 * inner, 4 * inner)), x.slice(inner, 2 * inner), 1e-6);
    let nonZero = 0;
    for (const v of values) if (v !== 0) nonZero++;
    expect(nonZero).toBe(2 * inner);
  });

  it('does not leak tensors or wasm buffers', async () => {
    await setBackend('wasm');
    const x = tf.tensor2d(randomFloats(20, rng(9)), [10, 2]);
    const ids = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 9], 'int32');
    const before = tf.memory().numTensors;
    const buffers = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) tf.unsortedSegmentSum(x, ids, 3).dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    tf.dispose([x, ids]);
  });
});

describe('Einsum on wasm', () => {
  const cases: Array<{ equation: string; shapes: number[][] }> = [
    { equation: 'ij,jk->ik', shapes: [[3, 4], [4, 5]] },
    { equation: 'bij,bjk->bik', shapes: [[2, 3, 4], [2, 4, 5]] },
    { equation: 'ij->ji', shapes: [[3, 4]] },
    { equation: 'i,i->', shapes: [[7], [7]] },
    { equation: 'ij,j->i', shapes: [[3, 4], [4]] },
    { equation: 'bhqd,bhkd->bhqk', shapes: [[2, 3, 4, 5], [2, 3, 6, 5]] },
    { equation: 'i,j->ij', shapes: [[3], [4]] },
    { equation: 'ij->i', shapes: [[3, 4]] },
    { equation: 'ij->ij', shapes: [[3, 4]] }, // the operand itself: must come back as its own tensor
    // 'ii->i' (a diagonal) is not supported by tfjs's einsum on any backend.
  ];

  for (const [index, c] of cases.entries()) {
    it(`matches cpu for '${c.equation}' without leaking`, async () => {
      const random = rng(77 + index);
      const operands = c.shapes.map((shape) => randomFloats(shape.reduce((a, b) => a * b, 1), random));
      const run = (inputs: tf.Tensor[]) => tf.einsum(c.equation, ...inputs);
      const results: Record<Backend, { shape: number[]; values: number[] }> = {} as never;
      for (const backend of ['cpu', 'wasm'] as const) {
        await setBackend(backend);
        const inputs = operands.map((values, i) => tf.tensor(values, c.shapes[i]));
        const tensorsBefore = tf.memory().numTensors;
        const buffersBefore = tf.engine().backend.numDataIds();
        const out = run(inputs);
        results[backend] = { shape: out.shape.slice(), values: Array.from(out.dataSync()) };
        // For 'ij->ij' the cpu kernel hands back the operand itself (the very tensor); the wasm
        // kernel returns a tensor of its own, which may share the operand's (immutable) memory.
        const same = inputs.some((t) => t === out);
        if (backend === 'wasm') expect(same).toBe(false);
        if (!same) out.dispose();
        expect(tf.memory().numTensors).toBe(tensorsBefore);
        expect(tf.engine().backend.numDataIds()).toBe(buffersBefore);
        // The inputs are intact (an output sharing their buffer would have been freed with it).
        for (const [i, t] of inputs.entries()) expectClose(t.dataSync(), Float32Array.from(operands[i]), 0);
        tf.dispose(inputs);
      }
      expect(results.wasm.shape).toEqual(results.cpu.shape);
      expectClose(results.wasm.values, results.cpu.values, 1e-5);
    });
  }

  it("computes 'ij,jk->ik' as matMul does", async () => {
    await setBackend('wasm');
    const random = rng(3);
    const [a, b] = [tf.tensor2d(randomFloats(12, random), [3, 4]), tf.tensor2d(randomFloats(20, random), [4, 5])];
    const [viaEinsum, viaMatMul] = [tf.einsum('ij,jk->ik', a, b), tf.matMul(a, b)];
    expectClose(viaEinsum.dataSync(), viaMatMul.dataSync(), 1e-5);
    tf.dispose([a, b, viaEinsum, viaMatMul]);
  });
});

describe('embedding training on wasm', () => {
  const VOCAB = 50;
  const DIM = 8;
  const ids = [
    [0, 3, 3, 7, 49, 0],
    [12, 12, 12, 5, 3, 1],
    [49, 48, 0, 22, 22, 9],
    [7, 7, 30, 31, 3, 0],
  ];
  const random = rng(2024);
  const initialTable = randomFloats(VOCAB * DIM, random);
  const weights = randomFloats(4 * 6 * DIM, random);

  /** A fresh table variable plus the loss sum(gather(table, ids) * weights) over it. */
  function setup(): { table: tf.Variable; idsT: tf.Tensor; weightsT: tf.Tensor; loss: () => tf.Scalar; dispose: () => void } {
    // Variables escape tidy; the initial value tensor does not.
    const table = tf.tidy(() => tf.variable(tf.tensor2d(initialTable, [VOCAB, DIM]), true));
    const idsT = tf.tensor2d(ids, [4, 6], 'int32');
    const weightsT = tf.tensor3d(weights, [4, 6, DIM]);
    const loss = () => tf.sum(tf.mul(tf.gather(table, idsT), weightsT)) as tf.Scalar;
    return { table, idsT, weightsT, loss, dispose: () => tf.dispose([table, idsT, weightsT]) };
  }

  async function gradients(backend: Backend): Promise<{ value: number; grad: number[] }> {
    await setBackend(backend);
    const s = setup();
    try {
      const { value, grads } = tf.variableGrads(s.loss, [s.table]);
      const result = { value: value.dataSync()[0], grad: Array.from(grads[s.table.name].dataSync()) };
      tf.dispose([value, grads[s.table.name]]);
      return result;
    } finally {
      s.dispose();
    }
  }

  it('gives the gather gradient wasm equal to cpu', async () => {
    const start = tf.memory().numTensors;
    const cpu = await gradients('cpu');
    const wasm = await gradients('wasm');
    expect(tf.memory().numTensors).toBe(start);
    expect(wasm.grad.length).toBe(VOCAB * DIM);
    expectClose(wasm.grad, cpu.grad, 1e-6);
    expect(Math.abs(wasm.value - cpu.value)).toBeLessThan(1e-5);
    // Repeated ids accumulate; unused rows get zero gradient.
    const row = (r: number) => wasm.grad.slice(r * DIM, (r + 1) * DIM);
    expect(row(40).every((v) => v === 0)).toBe(true);
    const expected12 = Array.from({ length: DIM }, (_, d) => weights[(6 + 0) * DIM + d] + weights[(6 + 1) * DIM + d] + weights[(6 + 2) * DIM + d]);
    expectClose(row(12), expected12, 1e-6);
  });

  async function train(backend: Backend, steps: number): Promise<{ table: number[]; losses: number[] }> {
    await setBackend(backend);
    const s = setup();
    const optimizer = tf.train.sgd(0.1);
    const losses: number[] = [];
    let tensorsAfterFirst = -1;
    try {
      for (let step = 0; step < steps; step++) {
        const cost = optimizer.minimize(s.loss, true, [s.table]);
        losses.push(cost!.dataSync()[0]);
        cost!.dispose();
        if (step === 0) tensorsAfterFirst = tf.memory().numTensors;
        else expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
      }
      return { table: Array.from(s.table.dataSync()), losses };
    } finally {
      optimizer.dispose();
      s.dispose();
    }
  }

  it('trains the same with 20 SGD steps on wasm and on cpu, without leaking', async () => {
    const start = tf.memory().numTensors;
    const cpu = await train('cpu', 20);
    const wasm = await train('wasm', 20);
    expect(tf.memory().numTensors).toBe(start);
    expectClose(wasm.table, cpu.table, 1e-5);
    expect(wasm.table).not.toEqual(initialTable.map(Math.fround)); // it did train
    for (const { losses } of [cpu, wasm]) {
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
    }
  });

  it('fails on wasm without the UnsortedSegmentSum kernel (so the tests above would catch its absence)', async () => {
    await setBackend('wasm');
    const config = tf.getKernel('UnsortedSegmentSum', 'wasm');
    expect(config).toBeDefined();
    tf.unregisterKernel('UnsortedSegmentSum', 'wasm');
    const s = setup();
    try {
      expect(() => tf.tidy(() => tf.variableGrads(s.loss, [s.table]).value)).toThrow(
        /Kernel 'UnsortedSegmentSum' not registered for backend 'wasm'/,
      );
    } finally {
      tf.registerKernel(config!);
      s.dispose();
    }
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBe(config);
    // And with it back, the gradient works again.
    const restored = await gradients('wasm');
    expect(restored.grad.some((v) => v !== 0)).toBe(true);
  });
});

describe('faster wasm Identity and Sum kernels', () => {
  it('Identity shares memory safely: each tensor can be freed on its own', async () => {
    await setBackend('wasm');
    const buffers = tf.engine().backend.numDataIds();
    const x = tf.tensor2d([[1, 2], [3, 4]]);
    const y = tf.clone(x);
    expect(tf.engine().backend.numDataIds()).toBe(buffers + 1); // no copy
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    y.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    const strings = tf.tensor1d(['a', 'b'], 'string');
    const copy = tf.clone(strings);
    expect(copy.dataSync()).toEqual(['a', 'b']);
    tf.dispose([strings, copy]);
  });

  it('Cast to the same dtype shares memory safely; other casts still convert', async () => {
    await setBackend('wasm');
    const buffers = tf.engine().backend.numDataIds();
    const x = tf.tensor2d([[1.5, -2.25], [3, 4]]);
    const y = tf.cast(x, 'float32');
    expect(tf.engine().backend.numDataIds()).toBe(buffers + 1); // no copy
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1.5, -2.25, 3, 4]);
    const truncated = tf.cast(y, 'int32');
    expect(truncated.dtype).toBe('int32');
    expect(Array.from(truncated.dataSync())).toEqual([1, -2, 3, 4]);
    const ints = tf.cast(truncated, 'int32');
    const asBool = tf.cast(truncated, 'bool');
    expect(Array.from(asBool.dataSync())).toEqual([1, 1, 1, 1]);
    const wide = tf.tensor1d([0, 256, -512, 7], 'int32');
    const wideBool = tf.cast(wide, 'bool'); // the stock kernel kept the low byte: [0, 0, 0, 7]
    const halves = tf.tensor1d([0.5, 0, -0.25, -0]);
    const halfBool = tf.cast(halves, 'bool');
    expect([Array.from(wideBool.dataSync()), Array.from(halfBool.dataSync())]).toEqual([[0, 1, 1, 1], [1, 0, 1, 0]]);
    tf.dispose([wide, wideBool, halves, halfBool]);
    const back = tf.cast(asBool, 'float32');
    expect(back.dtype).toBe('float32');
    tf.dispose([y, truncated, asBool, back]);
    expect(Array.from(ints.dataSync())).toEqual([1, -2, 3, 4]);
    ints.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    // The gradient of a product casts the other operand: values as before, no tensor left.
    const tensors = tf.memory().numTensors;
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.tensor1d([4, 5, 6]);
    const [da, db] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(p, q)))([a, b]);
    expect([Array.from(da.dataSync()), Array.from(db.dataSync())]).toEqual([[4, 5, 6], [1, 2, 3]]);
    tf.dispose([a, b, da, db]);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  const cases: Array<[number[], number | number[], boolean]> = [
    [[7, 5], 0, false],
    [[9, 3], 0, false], // rows in fours, then one left
    [[9, 37], 0, false], // SIMD: two strips of 16 columns, then 5 one by one
    [[3, 50, 40], [0, 1], false],
    [[2, 3], 0, true], // fewer rows than one pass of four
    [[4, 6, 5], [0, 1], false],
    [[4, 6, 5], [1, 0], true],
    [[4, 6, 5], -3, false],
    [[3, 4], 1, false], // last axis: the stock kernel
    [[3, 4, 5], [0, 2], false], // not leading: the stock kernel
    [[3, 4], [0, 1], false], // every axis: the stock kernel
    [[0, 4], 0, false],
  ];
  const blas = loadBlas();
  it.each(cases)('sum of %j over %j (keepDims %s) equals the cpu backend, through SIMD, BLAS and plain loops', async (shape, axis, keepDims) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: size }, (_, i) => Math.sin(i * 0.7) * 10);
    await setBackend('cpu');
    const x0 = tf.tensor(values, shape);
    const expected = tf.sum(x0, axis, keepDims);
    const reference = { shape: expected.shape, values: Array.from(expected.dataSync()) };
    tf.dispose([x0, expected]);
    await setBackend('wasm');
    const paths: Array<[string, Gemm]> = [['simd', simdGemm], ['xnnpack', xnnpackGemm], ...(blas ? [['blas', blas.gemm] as [string, Gemm]] : [])];
    for (const [name, gemm] of paths) {
      setWasmGemm(name, gemm);
      const x = tf.tensor(values, shape);
      const out = tf.sum(x, axis, keepDims);
      expect(out.shape).toEqual(reference.shape);
      expectClose(Array.from(out.dataSync()), reference.values, 1e-5);
      tf.dispose([x, out]);
    }
    await setBackend('wasm'); // back to the default path
  });

  it('the stock kernels are kept for reference', () => {
    const { identity, sum, cast } = stockWasmKernels();
    expect(identity?.kernelName).toBe('Identity');
    expect(cast?.kernelName).toBe('Cast');
    expect(tf.getKernel('Cast', 'wasm')!.kernelFunc).not.toBe(cast!.kernelFunc);
    expect(sum?.kernelName).toBe('Sum');
    expect(tf.getKernel('Sum', 'wasm')!.kernelFunc).not.toBe(sum!.kernelFunc);
  });
});

describe('row gather on wasm', () => {
  it.each([
    [[6, 4], [[0, 5, 2], [2, 2, 1]], 0],
    [[5], [4, 0, 0, 3], 0],
    [[3, 2, 2], [[1], [0]], 0],
    [[4, 3], [2, 0, 1], 1], // another axis: the stock kernel
  ])('gather(%j, ids %j, axis %s) equals the cpu backend', async (shape, ids, axis) => {
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    const values = Array.from({ length: size }, (_, i) => i * 1.5 - 3);
    const results: Record<string, { shape: number[]; values: number[] }> = {};
    for (const backend of ['cpu', 'wasm'] as const) {
      await setBackend(backend);
      for (const dtype of ['float32', 'int32'] as const) {
        const x = tf.tensor(dtype === 'int32' ? values.map(Math.round) : values, shape as number[], dtype);
        const index = tf.tensor(ids as number[], undefined, 'int32');
        const out = tf.gather(x, index, axis);
        results[`${backend}-${dtype}`] = { shape: out.shape, values: Array.from(out.dataSync()) };
        tf.dispose([x, index, out]);
      }
    }
    for (const dtype of ['float32', 'int32']) {
      expect(results[`wasm-${dtype}`]).toEqual(results[`cpu-${dtype}`]);
    }
  });
});

describe('in-place slice on wasm', () => {
  /** A random shape (rank 1-5), begin and size inside it (sizes of 0 and whole axes included). */
  const sliceCase = fc.integer({ min: 1, max: 5 }).chain((rank) =>
    fc
      .array(fc.integer({ min: 1, max: 5 }), { minLength: rank, maxLength: rank })
      .chain((shape) =>
        fc.tuple(
          fc.constant(shape),
          fc.tuple(...shape.map((n) => fc.integer({ min: 0, max: n }).chain((b) => fc.tuple(fc.constant(b), fc.integer({ min: 0, max: n - b }))))),
          fc.constantFrom('float32' as const, 'int32' as const, 'bool' as const),
        ),
      ),
  );

  it('equals the cpu backend and the stock kernel on random slices (fast-check)', async () => {
    const cases = fc.sample(sliceCase, { numRuns: 300, seed: 11 });
    const make = (shape: number[], dtype: 'float32' | 'int32' | 'bool') => {
      const size = shape.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: size }, (_, i) => (dtype === 'bool' ? (i * 7) % 3 === 0 : dtype === 'int32' ? i * 3 - 40 : i * 0.5 - 7));
      return tf.tensor(values as number[], shape, dtype);
    };
    const expected: number[][] = [];
    await setBackend('cpu');
    for (const [shape, ranges, dtype] of cases) {
      const x = make(shape, dtype);
      const out = tf.slice(x, ranges.map((r) => r[0]), ranges.map((r) => r[1]));
      expected.push([...out.shape, -1, ...Array.from(out.dataSync())]);
      tf.dispose([x, out]);
    }
    await setBackend('wasm');
    const stock = stockWasmKernels().slice!;
    const before = tf.memory().numTensors;
    cases.forEach(([shape, ranges, dtype], i) => {
      const x = make(shape, dtype);
      const begin = ranges.map((r) => r[0]);
      const size = ranges.map((r) => r[1]);
      const out = tf.slice(x, begin, size);
      expect([...out.shape, -1, ...Array.from(out.dataSync())]).toEqual(expected[i]);
      expect(out.dtype).toBe(dtype);
      const backend = tf.backend() as unknown as Parameters<typeof stock.kernelFunc>[0]['backend'];
      const reference = stock.kernelFunc({ inputs: { x }, backend, attrs: { begin, size } }) as tf.TensorInfo;
      const referenceTensor = tf.engine().makeTensorFromTensorInfo(reference);
      expect(Array.from(referenceTensor.dataSync())).toEqual(Array.from(out.dataSync()));
      tf.dispose([x, out, referenceTensor]);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is the registered kernel, with -1 sizes, and keeps strings on the stock kernel', async () => {
    await setBackend('wasm');
    expect(tf.getKernel('Slice', 'wasm')!.kernelFunc).not.toBe(stockWasmKernels().slice!.kernelFunc);
    const x = tf.tensor3d(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const out = tf.slice(x, [1, 1, 1], [-1, -1, 2]);
    expect(out.shape).toEqual([1, 2, 2]);
    expect(Array.from(out.dataSync())).toEqual([17, 18, 21, 22]);
    const words = tf.tensor1d(['a', 'bc', 'd'], 'string');
    const picked = tf.slice(words, [1], [2]);
    expect(picked.arraySync()).toEqual(['bc', 'd']);
    tf.dispose([x, out, words, picked]);
  });

  it('stays correct when allocating the output grows the wasm heap', async () => {
    await setBackend('wasm');
    const table = tf.tensor2d(Array.from({ length: 4 * 1024 }, (_, i) => i), [4, 1024]);
    const heapBefore = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    // An output larger than what is left of the heap forces it to grow during the kernel.
    const big = tf.tile(table, [Math.ceil(heapBefore / (4 * 4 * 1024)) + 1, 1]);
    const rows = big.shape[0];
    const out = tf.slice(big, [rows - 4, 0], [4, 1024]);
    expect(Array.from(out.dataSync())).toEqual(Array.from(table.dataSync()));
    const columns = tf.slice(big, [0, 1000], [rows, 3]);
    const values = columns.dataSync();
    expect([values[0], values[1], values[2], values[values.length - 1]]).toEqual([1000, 1001, 1002, 3 * 1024 + 1002]);
    tf.dispose([table, big, out, columns]);
  });
});
