/**
 * The default wasm GEMM without a system BLAS: native/gemm.c compiled to WebAssembly SIMD and
 * instantiated on the tfjs wasm backend's own memory, so that it reads and writes tensors in
 * place. Transposes are absorbed by its packing (nothing is materialised) and every product is
 * one call, batched or not. Products large enough to gain are split over a thread pool
 * (gemm-pool.ts). See native/gemm.c for the kernel and why it is hand-written.
 *
 * Four builds of the kernel are committed (simd-gemm-module.ts): plain SIMD128 or relaxed SIMD's
 * fused multiply-add, each importing a private or a shared memory. The relaxed builds are used
 * when `WebAssembly.validate` accepts them (Node 22+, current browsers; Node 20 only behind
 * `--experimental-wasm-relaxed-simd`) and `MIE_RELAXED_SIMD` is not `0`.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { MieBackendError } from './errors';
import { GemmPool, type GemmFunction, type SharedMemory } from './gemm-pool';
import { hardwareThreads, mayBlock, sharedMemoryAvailable, startWorker } from './gemm-workers';
import { environmentVariable } from './host';
import { GEMM_RELAXED_SHARED_WASM_BASE64, GEMM_RELAXED_WASM_BASE64, GEMM_SIMD_SHARED_WASM_BASE64, GEMM_SIMD_WASM_BASE64 } from './simd-gemm-module';
import type { tf } from './tfjs';
import type { Gemm } from './wasm-matmul';

interface GemmExports {
  gemm: GemmFunction;
  column_sums(x: number, rows: number, inner: number, out: number): void;
  gemv_t(m: number, n: number, k: number, a: number, lda: number, w: number, ldw: number, c: number, ldc: number): void;
  work_floats(): number;
  row_exp_stats(rows: number, cols: number, x: number, outMax: number, outSumExp: number, outSum: number): void;
  exp_affine_rows(rows: number, cols: number, x: number, shift: number, scale: number, offset: number, out: number): void;
  layer_norm_rows(rows: number, n: number, x: number, w: number, b: number, eps: number, y: number, mean: number, rstd: number): void;
  layer_norm_grad_rows(rows: number, n: number, dy: number, x: number, w: number, mean: number, rstd: number, dx: number, acc: number, dw: number, db: number): void;
  dropout_apply(n: number, x: number, a: number, b: number, c: number, d: number, threshold: number, scale: number, y: number, mask: number): void;
  adamw_update(n: number, p: number, g: number, m: number, v: number, outP: number, outM: number, outV: number, beta1: number, beta2: number, eps: number, decay: number, stepSize: number, bc2Sqrt: number): void;
}

interface SimdGemm {
  exports: GemmExports;
  /** Byte offset of the packing scratch (allocated once per backend memory, never freed). */
  work: number;
  memory: WasmMemory;
  pool: GemmPool | null;
}

interface WasmModuleInternals {
  /** The single-threaded build exports its memory; the threaded build imports a shared one (`wasmMemory`). */
  asm?: { memory?: unknown };
  wasmMemory?: unknown;
  _malloc(bytes: number): number;
  _free(offset: number): void;
}

/** The WebAssembly JS API (a Node global; @types/node 20 does not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: abstract new (...args: never[]) => WasmMemory;
  validate(bytes: Uint8Array): boolean;
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The kernel variant: relaxed SIMD's fused multiply-add, or SIMD128 multiply + add. */
export type GemmKernel = 'relaxed-simd' | 'simd';

const compiled = new Map<string, object>();
const instances = new WeakMap<WasmMemory, SimdGemm>();
let chosenKernel: GemmKernel | null = null;

function internals(backend: BackendWasm): WasmModuleInternals {
  return (backend as unknown as { wasm: WasmModuleInternals }).wasm;
}

/** Base64 to bytes with `atob`, which browsers and Node both have (Node's Buffer is Node's only). */
function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The variant this engine runs: relaxed SIMD when it validates and `MIE_RELAXED_SIMD` is not `0`. */
export function gemmKernel(): GemmKernel {
  if (chosenKernel === null) {
    const wanted = environmentVariable('MIE_RELAXED_SIMD') !== '0';
    chosenKernel = wanted && WebAssemblyApi.validate(decodeBase64(GEMM_RELAXED_WASM_BASE64)) ? 'relaxed-simd' : 'simd';
  }
  return chosenKernel;
}

function compiledModule(shared: boolean): object {
  const key = `${gemmKernel()}-${shared ? 'shared' : 'private'}`;
  let module = compiled.get(key);
  if (!module) {
    const relaxed = gemmKernel() === 'relaxed-simd';
    const base64 = shared ? (relaxed ? GEMM_RELAXED_SHARED_WASM_BASE64 : GEMM_SIMD_SHARED_WASM_BASE64) : relaxed ? GEMM_RELAXED_WASM_BASE64 : GEMM_SIMD_WASM_BASE64;
    module = new WebAssemblyApi.Module(decodeBase64(base64));
    compiled.set(key, module);
  }
  return module;
}

const isShared = (memory: WasmMemory) => typeof SharedArrayBuffer === 'function' && memory.buffer instanceof SharedArrayBuffer;

/**
 * The GEMM module bound to `backend`'s memory, instantiated on first use (the shared-memory build
 * on the threaded backend's heap); throws when it cannot be (a missing memory export).
 */
function instanceFor(backend: BackendWasm): SimdGemm {
  const module = internals(backend);
  const memory = module.asm?.memory ?? module.wasmMemory;
  if (!(memory instanceof WebAssemblyApi.Memory)) throw new Error('simd GEMM: the wasm backend does not expose its memory');
  let found = instances.get(memory);
  if (!found) {
    const kernel = new WebAssemblyApi.Instance(compiledModule(isShared(memory)), { env: { memory } }).exports as unknown as GemmExports;
    const work = module._malloc(kernel.work_floats() * 4);
    if (!work) throw new Error('simd GEMM: could not allocate its packing scratch');
    found = { exports: kernel, work, memory, pool: null };
    instances.set(memory, found);
  }
  return found;
}

/**
 * Multiply-adds (m n k per product, summed over the batch) from which a product is split over
 * the pool: below, handing blocks over and (with a private heap) copying the operands costs more
 * than the second thread saves. Measured on this 2-core machine with
 * `node packages/core/scripts/gemm-threshold.mjs`: see packages/core/README.md.
 */
export const PARALLEL_MIN_MACS = 1 << 20;

let parallelMinMacs = PARALLEL_MIN_MACS;

/** Sets the split threshold (the threshold script and tests: 0 splits every product); returns the previous one. */
export function setParallelMinMacs(macs: number): number {
  const previous = parallelMinMacs;
  parallelMinMacs = macs;
  return previous;
}

/** The GEMM on the wasm heap (see {@link Gemm}). */
export const simdGemm: Gemm = (backend, a, b, out, m, n, k, count) => {
  const found = instanceFor(backend);
  // Not `exports`: CommonJS output refers to this module's own exports by that name.
  const { exports: kernel, work } = found;
  const lda = a.transpose ? m : k;
  const ldb = b.transpose ? k : n;
  const pool = found.pool;
  if (pool !== null && m * n * k * count >= parallelMinMacs) {
    const call = { m, n, k, a: a.offset, lda, ta: a.transpose, b: b.offset, ldb, tb: b.transpose, c: out.offset, ldc: n, count, strideA: a.stride, strideB: b.stride, strideC: out.stride };
    if (pool.run(call, kernel.gemm, work, () => found.memory.buffer)) return;
  }
  for (let i = 0; i < count; i++) {
    kernel.gemm(m, n, k, a.offset + 4 * i * a.stride, lda, a.transpose ? 1 : 0, b.offset + 4 * i * b.stride, ldb, b.transpose ? 1 : 0, out.offset + 4 * i * out.stride, n, work);
  }
};

/**
 * `out[m, n] = a[m, k] w[n, k]ᵀ` for a few rows (cached decoding), row-major at byte offsets
 * into `backend`'s heap, with `gemv_t` (native/gemm.c).
 */
export function simdGemvT(backend: BackendWasm, a: number, w: number, out: number, m: number, n: number, k: number, key: object): void {
  const found = instanceFor(backend);
  const pool = found.pool;
  if (pool !== null && n * k >= parallelMinGemvWeights) {
    const live = (backend as unknown as { dataIdMap: { has(id: object): boolean } }).dataIdMap;
    if (pool.runGemv({ m, n, k, a, w, c: out, key }, found.exports.gemv_t, () => found.memory.buffer, (id) => live.has(id))) return;
  }
  found.exports.gemv_t(m, n, k, a, k, w, k, out, n);
}

/**
 * Weight elements (n k) from which a product of a few rows is split over the pool: a [512, 512]
 * weight (1 MB) and up; smaller ones are read in less time than a hand-over costs.
 */
export const PARALLEL_MIN_GEMV_WEIGHTS = 1 << 18;
let parallelMinGemvWeights = PARALLEL_MIN_GEMV_WEIGHTS;

/** Sets the few-rows split threshold (tests: 0 splits every product); returns the previous one. */
export function setParallelMinGemvWeights(weights: number): number {
  const previous = parallelMinGemvWeights;
  parallelMinGemvWeights = weights;
  return previous;
}

/** The pool's bytes of kept weight copies (tests). */
export function gemvKeptBytes(backend: BackendWasm): number {
  return instanceFor(backend).pool?.keptWeightBytes ?? 0;
}

/** Column sums of a `[rows, inner]` float32 block at byte `offset` into `[inner]` at `outOffset`. */
export function simdColumnSums(backend: BackendWasm, offset: number, rows: number, inner: number, outOffset: number): void {
  instanceFor(backend).exports.column_sums(offset, rows, inner, outOffset);
}

/** The scalars of one AdamW update (see `adamw_update` in native/gemm.c). */
export interface AdamWScalars {
  beta1: number;
  beta2: number;
  eps: number;
  /** `1 - lr * weightDecay`, or 1 without decay. */
  decayFactor: number;
  /** `lr / (1 - beta1^t)`. */
  stepSize: number;
  /** `sqrt(1 - beta2^t)`. */
  biasCorrection2Sqrt: number;
}

let simdModuleLoaded = false;

/** Records whether the backend selection loaded the SIMD module (with or without a BLAS beside it). */
export function setSimdModuleLoaded(loaded: boolean): void {
  simdModuleLoaded = loaded;
}

type TensorInfo = tf.TensorInfo;

/**
 * One AdamW update of a float32 parameter on the wasm heap, in one SIMD pass (`adamw_update`):
 * `[param, expAvg, expAvgSq]` as new outputs, or null where the SIMD module is not loaded
 * (`MIE_SIMD_GEMM=0`, or it failed its self-check). The inputs are read, never written.
 */
export function wasmAdamWUpdate(backend: BackendWasm, inputs: { param: TensorInfo; grad: TensorInfo; m: TensorInfo; v: TensorInfo }, s: AdamWScalars): TensorInfo[] | null {
  if (!simdModuleLoaded) return null;
  const { param, grad, m, v } = inputs;
  for (const info of [param, grad, m, v]) if (info.dtype !== 'float32') return null;
  const found = instanceFor(backend);
  const outputs = [0, 1, 2].map(() => backend.makeOutput(param.shape, 'float32'));
  const at = (info: TensorInfo) => heapOffset(backend, info);
  const n = param.shape.reduce((a, b) => a * b, 1);
  if (n > 0) {
    found.exports.adamw_update(n, at(param), at(grad), at(m), at(v), at(outputs[0]), at(outputs[1]), at(outputs[2]),
      s.beta1, s.beta2, s.eps, s.decayFactor, s.stepSize, s.biasCorrection2Sqrt);
  }
  return outputs;
}

/** Byte offset of a tensor's data on the wasm heap. */
function heapOffset(backend: BackendWasm, info: TensorInfo): number {
  return (backend as unknown as { dataIdMap: { get(id: unknown): { memoryOffset: number } } }).dataIdMap.get(info.dataId).memoryOffset;
}

/** A `[rows, cols]` float32 view of `x` for the row passes, or null where they do not apply. */
function rowBlock(x: TensorInfo): { rows: number; cols: number } | null {
  if (!simdModuleLoaded || x.dtype !== 'float32' || x.shape.length === 0) return null;
  const cols = x.shape[x.shape.length - 1];
  const rows = cols === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / cols;
  return cols === 0 || rows === 0 ? null : { rows, cols };
}

/**
 * Log-softmax statistics of every row of the last axis of a float32 tensor on the wasm heap, in
 * one SIMD pass (`row_exp_stats`): `{ max, sumExp, sum }` per row (`sumExp` the sum of
 * `e^(x - max)`, both sums accumulated in float64), or null where the SIMD module is not loaded
 * or `x` is empty. Reads `x` only.
 */
export function wasmRowExpStats(backend: BackendWasm, x: TensorInfo): { max: Float32Array; sumExp: Float32Array; sum: Float32Array } | null {
  const block = rowBlock(x);
  if (block === null) return null;
  const { rows, cols } = block;
  const found = instanceFor(backend);
  const scratch = backend.makeOutput([3 * rows], 'float32');
  try {
    const base = heapOffset(backend, scratch);
    found.exports.row_exp_stats(rows, cols, heapOffset(backend, x), base, base + 4 * rows, base + 8 * rows);
    const stats = (backend.typedArrayFromHeap(scratch) as Float32Array).slice();
    return { max: stats.subarray(0, rows), sumExp: stats.subarray(rows, 2 * rows), sum: stats.subarray(2 * rows) };
  } finally {
    backend.disposeData(scratch.dataId);
  }
}

/**
 * `scale[r] * e^(x[r, j] - shift[r]) + offset[r]` over the rows of the last axis of a float32
 * tensor on the wasm heap, in one SIMD pass (`exp_affine_rows`), as a new output of `x`'s
 * shape; null where the SIMD module is not loaded or `x` is empty. With `shift` a row's
 * log-sum-exp this is its softmax, scaled and offset (cross entropy's gradient).
 */
export function wasmExpAffineRows(backend: BackendWasm, x: TensorInfo, shift: ArrayLike<number>, scale: ArrayLike<number>, offset: ArrayLike<number>): TensorInfo | null {
  const block = rowBlock(x);
  if (block === null) return null;
  const { rows, cols } = block;
  for (const values of [shift, scale, offset]) {
    if (values.length !== rows) throw new MieBackendError(`wasmExpAffineRows: row parameters must have ${rows} entries; received ${values.length}`);
  }
  const found = instanceFor(backend);
  const out = backend.makeOutput(x.shape, 'float32');
  const scratch = backend.makeOutput([3 * rows], 'float32');
  try {
    const params = backend.typedArrayFromHeap(scratch) as Float32Array;
    params.set(shift, 0);
    params.set(scale, rows);
    params.set(offset, 2 * rows);
    const base = heapOffset(backend, scratch);
    found.exports.exp_affine_rows(rows, cols, heapOffset(backend, x), base, base + 4 * rows, base + 8 * rows, heapOffset(backend, out));
  } finally {
    backend.disposeData(scratch.dataId);
  }
  return out;
}

/** Whether the SIMD module's passes (AdamW, row statistics, layer norm) run on the wasm backend. */
export function simdPassesAvailable(): boolean {
  return simdModuleLoaded;
}

/**
 * Layer normalisation over the last axis on the wasm heap, in one SIMD pass per row
 * (`layer_norm_rows`, PyTorch's numerics: two-pass mean and biased variance in float64): writes
 * `y`, `mean` and `rstd` (allocated by the caller: `x`'s shape, and one value per row). False,
 * writing nothing, where the SIMD module is not loaded or a tensor is not float32.
 */
export function wasmLayerNorm(
  backend: BackendWasm, inputs: { x: TensorInfo; weight: TensorInfo; bias: TensorInfo }, outputs: { y: TensorInfo; mean: TensorInfo; rstd: TensorInfo }, eps: number,
): boolean {
  const { x, weight, bias } = inputs;
  const block = rowBlock(x);
  if (block === null || weight.dtype !== 'float32' || bias.dtype !== 'float32') return false;
  const at = (info: TensorInfo) => heapOffset(backend, info);
  instanceFor(backend).exports.layer_norm_rows(block.rows, block.cols, at(x), at(weight), at(bias), eps, at(outputs.y), at(outputs.mean), at(outputs.rstd));
  return true;
}

/**
 * The backward of {@link wasmLayerNorm} on the wasm heap (`layer_norm_grad_rows`): writes `dx`,
 * `dweight` and `dbias` (allocated by the caller), the weight and bias sums over rows in float64
 * in the module's scratch. False, writing nothing, where it does not apply.
 */
export function wasmLayerNormGrad(
  backend: BackendWasm,
  inputs: { dy: TensorInfo; x: TensorInfo; weight: TensorInfo; mean: TensorInfo; rstd: TensorInfo },
  outputs: { dx: TensorInfo; dweight: TensorInfo; dbias: TensorInfo },
): boolean {
  const { dy, x, weight, mean, rstd } = inputs;
  const block = rowBlock(x);
  if (block === null || [dy, weight, mean, rstd].some((info) => info.dtype !== 'float32')) return false;
  const found = instanceFor(backend);
  // 2n float64 column sums in the packing scratch (free between calls; 8-byte aligned by malloc).
  if (16 * block.cols > 4 * found.exports.work_floats() || found.work % 8 !== 0) return false;
  const at = (info: TensorInfo) => heapOffset(backend, info);
  found.exports.layer_norm_grad_rows(block.rows, block.cols, at(dy), at(x), at(weight), at(mean), at(rstd), at(outputs.dx), found.work, at(outputs.dweight), at(outputs.dbias));
  return true;
}

/**
 * Inverted dropout of a float32 tensor on the wasm heap in one pass (`dropout_apply`): writes
 * `y = x * mask` and `mask` (allocated by the caller, `x`'s shape) from the xorshift128 state
 * words and the keep threshold. False, writing nothing, where the SIMD module is not loaded.
 */
export function wasmDropout(
  backend: BackendWasm, x: TensorInfo, outputs: { y: TensorInfo; mask: TensorInfo }, state: readonly [number, number, number, number], threshold: number, scale: number,
): boolean {
  if (!simdModuleLoaded || x.dtype !== 'float32') return false;
  const n = x.shape.reduce((a, b) => a * b, 1);
  if (n === 0) return true;
  const at = (info: TensorInfo) => heapOffset(backend, info);
  // Unsigned words pass through the i32 parameters as their signed bit patterns.
  instanceFor(backend).exports.dropout_apply(n, at(x), state[0] | 0, state[1] | 0, state[2] | 0, state[3] | 0, threshold | 0, scale, at(outputs.y), at(outputs.mask));
  return true;
}

/** Most threads `MIE_THREADS` may ask for. */
export const MAX_THREADS = 64;
/** Threads used by default at most (the machine's, up to this). */
const DEFAULT_MAX_THREADS = 16;

/**
 * Threads the SIMD GEMM computes with: `MIE_THREADS` when set (1 = single-threaded), else the
 * threads the machine gives this process (up to 16); 1 where shared memory is unavailable (a
 * page that is not cross-origin isolated).
 */
export function gemmThreadsWanted(): number {
  const value = environmentVariable('MIE_THREADS');
  if (value !== undefined && value !== '') {
    const count = Number(value);
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_THREADS) {
      throw new MieBackendError(`setBackend: the MIE_THREADS environment variable must be an integer from 1 to ${MAX_THREADS}. Received: "${value}".`);
    }
    return sharedMemoryAvailable() ? count : 1;
  }
  return sharedMemoryAvailable() ? Math.max(1, Math.min(DEFAULT_MAX_THREADS, hardwareThreads())) : 1;
}

/**
 * Starts the thread pool of `backend`'s GEMM with `threads` threads (the calling thread
 * included) and waits until its workers run. Returns the threads the GEMM computes with: 1 when
 * `threads` is 1 or the pool could not start (the GEMM then stays single-threaded).
 */
export async function startGemmPool(backend: BackendWasm, threads: number): Promise<number> {
  const found = instanceFor(backend);
  if (found.pool) return found.pool.threads;
  if (threads < 2) return 1;
  const module = internals(backend);
  let pool: GemmPool;
  try {
    pool = new GemmPool({
      module: compiledModule(true),
      threads,
      workFloats: found.exports.work_floats(),
      inPlace: isShared(found.memory) ? { memory: found.memory as SharedMemory, allocate: (bytes) => module._malloc(bytes) } : undefined,
      startWorker,
      mayBlock,
    });
  } catch {
    return 1;
  }
  if (!(await pool.ready)) {
    pool.dispose();
    return 1;
  }
  found.pool = pool;
  return pool.threads;
}

/** Stops `backend`'s GEMM pool (tests and benchmarks); the GEMM is single-threaded afterwards. */
export function stopGemmPool(backend: BackendWasm): void {
  const found = instanceFor(backend);
  found.pool?.dispose();
  found.pool = null;
}

/** Threads `backend`'s GEMM computes with. */
export function gemmThreads(backend: BackendWasm): number {
  return instanceFor(backend).pool?.threads ?? 1;
}

/**
 * Instantiates the module on `backend` and checks one product with both transposes and ragged
 * tiles against a plain loop; false (and the caller falls back to XNNPACK) when anything fails.
 */
export function loadSimdGemm(backend: BackendWasm): boolean {
  try {
    const { memory } = instanceFor(backend); // first, so that its allocation cannot move the views below
    const module = internals(backend);
    const [m, n, k] = [3, 19, 5];
    const base = module._malloc(4 * (m * k + k * n + m * n));
    if (!base) return false;
    try {
      const heap = new Float32Array(memory.buffer, base, m * k + k * n + m * n);
      const a = (i: number, p: number) => (i + 1) * 0.5 - p; // op(A)[i][p], stored [k, m]
      const b = (p: number, j: number) => p * 0.25 + j - 3; // op(B)[p][j], stored [n, k]
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) heap[p * m + i] = a(i, p);
      for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) heap[m * k + j * k + p] = b(p, j);
      simdGemm(backend, { offset: base, transpose: true, stride: 0 }, { offset: base + 4 * m * k, transpose: true, stride: 0 }, { offset: base + 4 * (m * k + k * n), stride: 0 }, m, n, k, 1);
      const out = new Float32Array(memory.buffer, base + 4 * (m * k + k * n), m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let expected = 0;
          for (let p = 0; p < k; p++) expected += a(i, p) * b(p, j);
          if (out[i * n + j] !== expected) return false; // small integers and halves: exact (with FMA too)
        }
      }
      return true;
    } finally {
      module._free(base);
    }
  } catch {
    return false;
  }
}
