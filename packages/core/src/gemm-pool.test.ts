import { GemmPool, type GemmFunction, type GemmWorker, type GemvFunction } from './gemm-pool';
import * as builds from './simd-gemm-module';

interface WasmApi {
  Module: new (b: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBufferLike };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const bytesOf = (base64: string) => new Uint8Array(Buffer.from(base64, 'base64'));

/** A worker that says it is ready and then never takes a task: a thread the OS never schedules. */
function stalledWorker(): GemmWorker {
  let listener: ((message: unknown) => void) | undefined;
  return {
    post: () => queueMicrotask(() => listener?.('ready')),
    onMessage: (l) => (listener = l),
    onError: () => undefined,
    unref: () => undefined,
    terminate: () => undefined,
  };
}

/** A private heap (as tfjs's single-threaded backend has) with the private build of gemm.c on it. */
function privateHeap() {
  const memory = new wasm.Memory({ initial: 64, maximum: 64 });
  const kernel = new wasm.Instance(new wasm.Module(bytesOf(builds.GEMM_SIMD_WASM_BASE64)), { env: { memory } }).exports as unknown as {
    gemm: GemmFunction;
    gemv_t: GemvFunction;
    work_floats(): number;
  };
  let next = 1024;
  const allocate = (floats: number) => {
    const at = next;
    next = Math.ceil((next + 4 * floats) / 16) * 16;
    return at;
  };
  const work = allocate(kernel.work_floats());
  const put = (values: Float32Array) => {
    const at = allocate(values.length);
    new Float32Array(memory.buffer, at, values.length).set(values);
    return at;
  };
  const read = (at: number, floats: number) => Array.from(new Float32Array(memory.buffer, at, floats));
  return { memory, kernel, work, put, read, allocate };
}

const values = (count: number, seed: number) => Float32Array.from({ length: count }, (_, i) => ((i * 7 + seed) % 11) - 5);

/** The [m, n] product, row-major, summing `left(i, p) * right(p, j)` over p < k (exact on these integers). */
function reference(m: number, n: number, k: number, left: (i: number, p: number) => number, right: (p: number, j: number) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out.push(Array.from({ length: k }, (_, p) => left(i, p) * right(p, j)).reduce((x, y) => x + y, 0));
  return out;
}

describe('the GEMM pool when a worker never runs', () => {
  const pool = () =>
    new GemmPool({ module: new wasm.Module(bytesOf(builds.GEMM_SIMD_SHARED_WASM_BASE64)), threads: 2, workFloats: 1 << 16, startWorker: stalledWorker, mayBlock: true });

  it('takes the worker\'s block back and computes it in place: the product is whole, and later calls stay single', async () => {
    const p = pool();
    expect(await p.ready).toBe(true);
    const heap = privateHeap();
    const [m, n, k] = [8, 64, 16];
    const a = values(m * k, 1);
    const b = values(k * n, 2);
    const call = (c: number) => ({ m, n, k, a: heap.put(a), lda: k, ta: false, b: heap.put(b), ldb: n, tb: false, c, ldc: n, count: 1, strideA: 0, strideB: 0, strideC: 0 });
    const expected = reference(m, n, k, (i, p) => a[i * k + p], (p, j) => b[p * n + j]);
    const first = heap.allocate(m * n);
    expect(p.run(call(first), heap.kernel.gemm, heap.work, () => heap.memory.buffer)).toBe(true);
    expect(heap.read(first, m * n)).toEqual(expected); // the copy-back skipped the taken-back block
    // The worker never acknowledged its task: it gets none, so the call does not split.
    expect(p.run(call(heap.allocate(m * n)), heap.kernel.gemm, heap.work, () => heap.memory.buffer)).toBe(false);
    p.dispose();
  });

  it('takes a few-rows product\'s columns back too', async () => {
    const p = pool();
    expect(await p.ready).toBe(true);
    const heap = privateHeap();
    const [m, n, k] = [2, 40, 24];
    const x = values(m * k, 3);
    const w = values(n * k, 4);
    const out = heap.allocate(m * n);
    const key = {};
    const gemv = () => p.runGemv({ m, n, k, a: heap.put(x), w: heap.put(w), c: out, key }, heap.kernel.gemv_t, () => heap.memory.buffer, () => true);
    expect(gemv()).toBe(false); // first sighting of the weight: not kept, not split
    expect(gemv()).toBe(true); // kept, split, and the worker's columns taken back
    const expected = reference(m, n, k, (i, p) => x[i * k + p], (p, j) => w[j * k + p]);
    expect(heap.read(out, m * n)).toEqual(expected);
    expect(gemv()).toBe(false); // the worker is still behind
    p.dispose();
  });
});
