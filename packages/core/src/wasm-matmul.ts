/**
 * Fast matmuls on the wasm backend. Stock tfjs-backend-wasm sends a BatchMatMul to XNNPACK only
 * when neither operand is transposed and there is no batch dimension; every other matmul
 * (including both backward matmuls of every dense layer and all attention GEMMs) runs a scalar
 * loop at ~2 GFLOP/s. These kernels route every float32 matmul to a fast path:
 *
 * - `blas`: `cblas_sgemm` of a system OpenBLAS called through koffi on wasm-heap views
 *   (see blas.ts), transposes and batches handled by the BLAS call itself;
 * - `simd`: MIE's WebAssembly SIMD GEMM on the backend's heap (simd-gemm.ts), transposes and
 *   batches handled by its packing;
 * - `xnnpack`: transposes materialised with the wasm Transpose kernel, then the XNNPACK 2-D path,
 *   once with the batch folded into the rows when the right operand is shared, else once per
 *   batch element on views into the operands' heap memory.
 *
 * On the `blas` and `simd` paths, a dense layer's `x Wᵀ` of at most four rows (cached decoding
 * with batch 1) goes to the SIMD module's few-rows kernel on the GEMM pool, and other 2-D products
 * of at most four rows to XNNPACK, which keeps packed weights between calls.
 *
 * Views are tensor ids registered on the wasm side at an offset into existing heap memory and
 * unregistered (not freed) right after the call.
 *
 * Legend: M rows of the output, N its columns, K the contracted size.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { environmentVariable } from './host';
import { tf } from './tfjs';
import { simdGemvT } from './simd-gemm';

type TensorInfo = tf.TensorInfo;
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** A GEMM on heap offsets (bytes): C[M,N] = op(A) op(B), row-major, batch `count`, with strides in elements. */
export type Gemm = (
  backend: BackendWasm,
  a: { offset: number; transpose: boolean; stride: number },
  b: { offset: number; transpose: boolean; stride: number },
  out: { offset: number; stride: number },
  m: number,
  n: number,
  k: number,
  count: number,
) => void;

interface WasmInternals {
  dataIdNextNumber: number;
  wasm: { cwrap: (name: string, ret: null, args: string[]) => (...args: unknown[]) => void; tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void } };
}

let xnnMatMul: ((...args: unknown[]) => void) | null = null;

/** Registers a wasm-side tensor id aliasing `size` floats at byte `offset` (not owned). */
function alias(backend: BackendWasm, offset: number, size: number): number {
  const internals = backend as unknown as WasmInternals;
  const id = internals.dataIdNextNumber++;
  internals.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

function unalias(backend: BackendWasm, id: number): void {
  (backend as unknown as WasmInternals).wasm.tfjs.disposeData(id);
}

const shapeBytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);

/** The XNNPACK GEMM: plain [M,K] x [K,N] calls of the stock kernel on aliased heap views. */
export const xnnpackGemm: Gemm = (backend, a, b, out, m, n, k, count) => {
  if (!xnnMatMul) {
    xnnMatMul = (backend as unknown as WasmInternals).wasm.cwrap('BatchMatMul', null, [
      'number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number',
    ]);
  }
  if (a.transpose || b.transpose) throw new Error('xnnpackGemm: operands must be materialised untransposed');
  const aShape = shapeBytes([1, m, k]);
  const bShape = shapeBytes([1, k, n]);
  for (let i = 0; i < count; i++) {
    const aId = alias(backend, a.offset + 4 * i * a.stride, m * k);
    const bId = alias(backend, b.offset + 4 * i * b.stride, k * n);
    const outId = alias(backend, out.offset + 4 * i * out.stride, m * n);
    xnnMatMul(aId, aShape, 3, bId, bShape, 3, false, false, outId);
    unalias(backend, aId);
    unalias(backend, bId);
    unalias(backend, outId);
  }
};

let gemm: Gemm = xnnpackGemm;
let gemmName = 'xnnpack';

/** Selects the GEMM the wasm matmul kernels use (`xnnpack` until the backend picks `blas` or `simd`). */
export function setWasmGemm(name: string, implementation: Gemm): void {
  gemm = implementation;
  gemmName = name;
}

/** Whether the SIMD module's few-rows kernel also serves the BLAS path (the module loaded beside it). */
let fewRowsBesideBlas = false;

/** Says whether the SIMD module is loaded beside a BLAS, so that its few-rows kernel serves that path too. */
export function setFewRowsKernel(available: boolean): void {
  fewRowsBesideBlas = available;
}

/** Name of the GEMM in use by the wasm matmul kernels. */
export function wasmGemmName(): string {
  return gemmName;
}

/**
 * Column sums of a row-major `[rows, inner]` float32 block at byte `offset`, written to `out`
 * (`[inner]` at byte `outOffset`), as the GEMM `ones[1, rows] x X[rows, inner]`: SIMD/BLAS speed
 * for the leading-axes reductions of bias and layer-norm gradients.
 */
export function gemmColumnSums(backend: BackendWasm, offset: number, rows: number, inner: number, outOffset: number): void {
  const ones = backend.makeOutput([rows], 'float32');
  (backend.typedArrayFromHeap(ones) as Float32Array).fill(1);
  gemm(
    backend,
    { offset: heapOffset(backend, ones), transpose: false, stride: 0 },
    { offset, transpose: false, stride: 0 },
    { offset: outOffset, stride: 0 },
    1,
    inner,
    rows,
    1,
  );
  backend.disposeData(ones.dataId);
}

function runKernel(name: string, backend: BackendWasm, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): TensorInfo {
  return tf.getKernel(name, 'wasm')!.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

function heapOffset(backend: BackendWasm, info: TensorInfo): number {
  return (backend as unknown as { dataIdMap: { get(id: unknown): { memoryOffset: number } } }).dataIdMap.get(info.dataId).memoryOffset;
}

/**
 * `out[batch, M, N] = op(a) op(b)` with batch broadcasting of a single-batch operand, or null
 * when the shapes need general broadcasting (left to the stock kernel).
 */
function matMul(backend: BackendWasm, a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): TensorInfo | null {
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
  const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const kB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
  const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
  if (k !== kB) {
    throw new Error(`Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
  }
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = tf.util.sizeFromShape(outerA);
  const batchB = tf.util.sizeFromShape(outerB);
  const outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = tf.util.sizeFromShape(outer);
  // Only whole-operand broadcasting (one side has a single batch) maps onto strided calls.
  if (!((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1))) return null;

  const temporaries: TensorInfo[] = [];
  let aIn = a;
  let bIn = b;
  let aT = transposeA;
  let bT = transposeB;
  if (gemmName === 'xnnpack') {
    // XNNPACK takes untransposed operands: materialise transposes (cheap next to the GEMM).
    if (transposeA) {
      aIn = runKernel('Transpose', backend, { x: runReshape(backend, a, [batchA, k, m], temporaries) }, { perm: [0, 2, 1] });
      temporaries.push(aIn);
      aT = false;
    }
    if (transposeB) {
      bIn = runKernel('Transpose', backend, { x: runReshape(backend, b, [batchB, n, k], temporaries) }, { perm: [0, 2, 1] });
      temporaries.push(bIn);
      bT = false;
    }
  }
  const out = backend.makeOutput([...outer, m, n], 'float32');
  if (m * n > 0) {
    if (k === 0) {
      (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
    } else {
      // A shared right operand and untransposed left rows: one call with the batch folded into M.
      const fold = batch > 1 && batchB === 1 && batchA === batch && !aT;
      gemm(
        backend,
        { offset: heapOffset(backend, aIn), transpose: aT, stride: batchA === 1 ? 0 : m * k },
        { offset: heapOffset(backend, bIn), transpose: bT, stride: batchB === 1 ? 0 : k * n },
        { offset: heapOffset(backend, out), stride: m * n },
        fold ? m * batch : m,
        n,
        k,
        fold ? 1 : batch,
      );
    }
  }
  for (const t of temporaries) backend.disposeData(t.dataId);
  return out;
}

function runReshape(backend: BackendWasm, x: TensorInfo, shape: number[], temporaries: TensorInfo[]): TensorInfo {
  const reshaped = runKernel('Reshape', backend, { x }, { shape });
  temporaries.push(reshaped);
  return reshaped;
}

let stockBatchMatMul: tf.KernelConfig | undefined;
let stockFusedMatMul: tf.KernelConfig | undefined;

/**
 * Transposed copies of right operands, by the source's data id (tensor data is immutable, so a
 * data id always has the same transpose). A dense layer's `x Wᵀ` then transposes W once per
 * update instead of once per call, and XNNPACK keeps its packed weights (it caches them by tensor
 * id): what inference and generation need. Entries whose source was freed are dropped.
 */
const transposeCache = new Map<object, TensorInfo>();
const TRANSPOSE_CACHE_SIZE = 64;

function cachedTranspose(backend: BackendWasm, b: TensorInfo): TensorInfo {
  const hit = transposeCache.get(b.dataId);
  if (hit) {
    transposeCache.delete(b.dataId); // refresh its place (least recently used first)
    transposeCache.set(b.dataId, hit);
    return hit;
  }
  const live = (backend as unknown as { dataIdMap: { has(id: unknown): boolean } }).dataIdMap;
  for (const [source, transposed] of transposeCache) {
    if (!live.has(source) || transposeCache.size >= TRANSPOSE_CACHE_SIZE) {
      backend.disposeData(transposed.dataId);
      transposeCache.delete(source);
    }
  }
  const transposed = runKernel('Transpose', backend, { x: b }, { perm: [1, 0] });
  transposeCache.set(b.dataId, transposed);
  return transposed;
}

/**
 * Multiply-adds per batch element up to which the stock kernel's loop beats one GEMM call per
 * element: attention over short sequences, and above all cached decoding (one query row per
 * batch element and head), makes thousands of tiny products per call, where each XNNPACK
 * operator set-up (~10 µs) or BLAS call through the FFI (~4 µs) costs more than the arithmetic.
 * Measured with 2048 products of [1, 32] x [32, 12]: stock 1.0 ms, BLAS 2.8 ms, XNNPACK 13 ms;
 * with 600 of [10, 32] x [32, 10]: stock 2.4 ms, BLAS 1.1 ms, XNNPACK 5.4 ms. The SIMD GEMM
 * (one call per element, packing included): 2048 of [1, 32] x [32, 12]: 1.3 ms against stock
 * 0.9 ms; 64 of [1, 64] x [64, 32] (2048 multiply-adds each): 0.26 ms against stock 0.37 ms.
 */
const STOCK_MACS = { blas: 1024, simd: 1024, xnnpack: 4096 } as Record<string, number>;

function tinyBatchedProduct(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): boolean {
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  if (aRank < 3 && bRank < 3) return false;
  const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
  const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
  const batch = Math.max(tf.util.sizeFromShape(a.shape.slice(0, -2)), tf.util.sizeFromShape(b.shape.slice(0, -2)));
  return batch > 1 && m * n * k <= (STOCK_MACS[gemmName] ?? 0);
}

/**
 * Rows up to which a 2-D product goes to XNNPACK's cached-weights path on the SIMD and BLAS paths
 * too: the SIMD GEMM packs the right operand on every call, and BLAS runs a single row at a
 * fraction of its speed, which costs more than the arithmetic in cached decoding with batch 1.
 * Measured with [M,512] x [N,512]ᵀ, fixed weights, ms (SIMD / BLAS / XNNPACK): M=1, N=512:
 * 0.14 / 0.19 / 0.10; M=1, N=10000: 3.8 / 2.6 / 1.7; M=4, N=10000: 4.6 / 5.0 / 2.6;
 * M=8, N=2048: 0.79 / 0.66 / 1.01.
 */
const XNNPACK_MAX_ROWS = 4;

/**
 * Whether a product goes to the SIMD module's few-rows kernel (`gemv_t`, split over the pool with
 * the workers' weight rows kept in its memory), on the SIMD path and beside a BLAS: `x Wᵀ` of at
 * most four rows, as a dense layer in cached decoding computes (a BLAS runs one row at a fraction
 * of its speed). It streams each weight once at memory speed; XNNPACK's packed path
 * ran at 13-20 GB/s on one thread. Measured on the design's example model: see packages/core/README.md.
 */
function fewRowsProduct(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean): boolean {
  if (!(gemmName === 'simd' || (gemmName === 'blas' && fewRowsBesideBlas))) return false;
  if (transposeA || !transposeB || environmentVariable('MIE_GEMV') === '0') return false;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length !== 2 || b.shape.length !== 2) return false;
  return a.shape[0] <= XNNPACK_MAX_ROWS;
}

/** Whether a product goes to XNNPACK's 2-D path, which keeps the right operand packed. */
function cachedWeightsProduct(a: TensorInfo, b: TensorInfo, transposeA: boolean): boolean {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length !== 2 || b.shape.length !== 2) return false;
  return gemmName === 'xnnpack' || (transposeA ? a.shape[1] : a.shape[0]) <= XNNPACK_MAX_ROWS;
}

function batchMatMulKernel(args: KernelArgs): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  if (tinyBatchedProduct(a, b, transposeA, transposeB)) return stockBatchMatMul!.kernelFunc(args as never) as TensorInfo;
  if (fewRowsProduct(a, b, transposeA, transposeB)) {
    const [m, k] = a.shape;
    const n = b.shape[0];
    const out = backend.makeOutput([m, n], 'float32');
    if (m * n > 0) {
      if (k === 0) (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
      else simdGemvT(backend, heapOffset(backend, a), heapOffset(backend, b), heapOffset(backend, out), m, n, k, b.dataId);
    }
    return out;
  }
  if (cachedWeightsProduct(a, b, transposeA)) {
    // An untransposed 2-D product is the stock kernel's XNNPACK path: use it with real tensor ids
    // (the right operand's transpose cached), so that XNNPACK's packed weights persist.
    const left = transposeA ? runKernel('Transpose', backend, { x: a }, { perm: [1, 0] }) : a;
    const right = transposeB ? cachedTranspose(backend, b) : b;
    const out = stockBatchMatMul!.kernelFunc({ ...args, inputs: { a: left, b: right }, attrs: { ...args.attrs, transposeA: false, transposeB: false } } as never) as TensorInfo;
    if (left !== a) backend.disposeData(left.dataId);
    return out;
  }
  if (a.dtype === 'float32' && b.dtype === 'float32') {
    const out = matMul(backend, a, b, transposeA, transposeB);
    if (out) return out;
  }
  return stockBatchMatMul!.kernelFunc(args as never) as TensorInfo;
}

/** `activation(op(a) op(b) + bias)`: the matmul on the fast path, then the wasm kernels. */
function fusedMatMulKernel(args: KernelArgs): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
  const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as {
    transposeA: boolean;
    transposeB: boolean;
    activation: string;
    leakyreluAlpha?: number;
  };
  const product = a!.dtype === 'float32' && b!.dtype === 'float32' ? matMul(backend, a!, b!, transposeA, transposeB) : null;
  if (!product) return stockFusedMatMul!.kernelFunc(args as never) as TensorInfo;
  let result = product;
  const replace = (next: TensorInfo) => {
    backend.disposeData(result.dataId);
    result = next;
  };
  if (bias) replace(runKernel('Add', backend, { a: result, b: bias }));
  switch (activation) {
    case 'linear':
    case undefined:
      break;
    case 'relu':
      replace(runKernel('Relu', backend, { x: result }));
      break;
    case 'relu6':
      replace(runKernel('Relu6', backend, { x: result }));
      break;
    case 'elu':
      replace(runKernel('Elu', backend, { x: result }));
      break;
    case 'sigmoid':
      replace(runKernel('Sigmoid', backend, { x: result }));
      break;
    case 'leakyrelu':
      replace(runKernel('LeakyRelu', backend, { x: result }, { alpha: leakyreluAlpha ?? 0.2 }));
      break;
    case 'prelu':
      replace(runKernel('Prelu', backend, { x: result, alpha: preluActivationWeights! }));
      break;
    default:
      backend.disposeData(result.dataId);
      return stockFusedMatMul!.kernelFunc(args as never) as TensorInfo;
  }
  return result;
}

let installed = false;

/**
 * Replaces the wasm `BatchMatMul` and `_FusedMatMul` kernels with the fast ones (idempotent).
 * `MIE_WASM_MATMUL=stock` keeps the stock kernels.
 */
export function installWasmMatMul(): void {
  if (installed || environmentVariable('MIE_WASM_MATMUL') === 'stock') return;
  installed = true;
  stockBatchMatMul = tf.getKernel('BatchMatMul', 'wasm');
  stockFusedMatMul = tf.getKernel('_FusedMatMul', 'wasm');
  if (!stockBatchMatMul || !stockFusedMatMul) return;
  const replace = (config: tf.KernelConfig, kernelFunc: (args: KernelArgs) => TensorInfo) => {
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  };
  replace(stockBatchMatMul, batchMatMulKernel);
  replace(stockFusedMatMul, fusedMatMulKernel);
}

/** Restores the stock wasm matmul kernels (for tests and benchmarks). */
export function uninstallWasmMatMul(): void {
  if (!installed) return;
  installed = false;
  for (const config of [stockBatchMatMul, stockFusedMatMul]) {
    if (!config) continue;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
}

/** The stock kernels, for reference comparisons in tests. */
export function stockWasmMatMulKernels(): { batchMatMul?: tf.KernelConfig; fusedMatMul?: tf.KernelConfig } {
  return { batchMatMul: stockBatchMatMul, fusedMatMul: stockFusedMatMul };
}
