/**
 * Kernels the wasm backend lacks but training needs. Without `UnsortedSegmentSum` the gradient
 * of `gather` (every embedding) fails on wasm; `Einsum` has no wasm kernel at all.
 * Both are registered for the wasm backend when `@mie/core` is imported, with faster `Identity`,
 * same-dtype `Cast`, leading-axes `Sum`, row `GatherV2` and in-place `Slice` kernels (`MIE_WASM_KERNELS=stock` keeps
 * the stock ones).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { environmentVariable } from './host';
import { tf } from './tfjs';
import { simdColumnSums } from './simd-gemm';
import { gemmColumnSums, wasmGemmName } from './wasm-matmul';

type TensorInfo = tf.TensorInfo;

/**
 * Scatter-add on the wasm heap: `out[segmentIds[i], ...] += x[i, ...]`. Ids outside
 * `[0, numSegments)` are dropped, as in TensorFlow. (The cpu backend's version is
 * O(numSegments x size); this one is O(size).)
 */
function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const numIds = tf.util.sizeFromShape(segmentIds.shape);
  const inner = numIds === 0 ? tf.util.sizeFromShape(x.shape.slice(segmentIds.shape.length)) : tf.util.sizeFromShape(x.shape) / numIds;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  // Allocate first: allocation may grow (and so replace) the heap, staling earlier views.
  const out = backend.makeOutput(outShape, x.dtype);
  const outValues = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  outValues.fill(0);
  const xValues = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = backend.typedArrayFromHeap(segmentIds) as Int32Array;
  for (let i = 0; i < numIds; i++) {
    const segment = ids[i];
    if (segment < 0 || segment >= numSegments) continue;
    const src = i * inner;
    const dst = segment * inner;
    for (let j = 0; j < inner; j++) outValues[dst + j] += xValues[src + j];
  }
  return out;
}

/** Runs another wasm kernel by name from inside a kernel. */
function runWasmKernel(name: string, backend: BackendWasm, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new Error(`wasm kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

/**
 * Einsum composed from the wasm backend's Transpose, Reshape, Multiply and Sum kernels, with
 * the same contraction path as the cpu backend's Einsum kernel.
 */
function einsum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { equation } = args.attrs as { equation: string };
  const tensors = args.inputs as unknown as TensorInfo[];
  const { allDims, summedDims, idDims } = tf.backend_util.decodeEinsumEquation(equation, tensors.length);
  tf.backend_util.checkEinsumDimSizes(allDims.length, idDims, tensors as tf.Tensor[]);
  const { path, steps } = tf.backend_util.getEinsumComputePath(summedDims, idDims);
  let out: TensorInfo | null = null;
  let numDimsRemaining = allDims.length;
  const intermediates: TensorInfo[] = [];
  for (let i = 0; i < steps.length; i++) {
    for (const term of steps[i]) {
      const { permutationIndices: perm, expandDims } = tf.backend_util.getEinsumPermutation(numDimsRemaining, idDims[term]);
      let x = tensors[term];
      if (!tf.backend_util.isIdentityPermutation(perm)) {
        x = runWasmKernel('Transpose', backend, { x }, { perm });
        intermediates.push(x);
      }
      const targetShape = x.shape.slice();
      for (const axis of expandDims) targetShape.splice(axis, 0, 1);
      if (!tf.util.arraysEqual(x.shape, targetShape)) {
        x = runWasmKernel('Reshape', backend, { x }, { shape: targetShape });
        intermediates.push(x);
      }
      if (out === null) {
        out = x;
      } else {
        out = runWasmKernel('Multiply', backend, { a: x, b: out });
        intermediates.push(out);
      }
    }
    if (i < steps.length - 1) {
      if (path[i] >= 0) {
        out = runWasmKernel('Sum', backend, { x: out as TensorInfo }, { axis: path[i] - (allDims.length - numDimsRemaining), keepDims: false });
        intermediates.push(out);
      }
      numDimsRemaining--;
    }
  }
  for (const info of intermediates) if (info !== out) backend.disposeData(info.dataId);
  if (out === null) throw new Error('einsum: no operands');
  // An operand returned as is must not share its data with the output: copy it.
  if (tensors.includes(out)) out = runWasmKernel('Identity', backend, { x: out });
  return out;
}

/**
 * Identity without a copy: tfjs tensors are immutable (no wasm kernel writes into its inputs), so
 * the output can share the input's heap memory, as Reshape does. The engine calls Identity to
 * save every tensor a gradient needs, so on wasm the copies cost ~7% of a training step.
 */
function identity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string') return stockIdentity!.kernelFunc(args as never) as TensorInfo;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Cast to the tensor's own dtype without a copy (the stock kernel copies): every Multiply
 * gradient casts its other operand to float32, so a training step of the design's example model
 * copied 258 float32 tensors (a dropout mask among them, 36 ms a step). Other casts convert;
 * to bool as `x != 0`, which the stock kernel gets wrong.
 */
function cast(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const dtype = (args.attrs as { dtype?: string } | undefined)?.dtype;
  if (x.dtype === dtype) return identity(args);
  if (dtype === 'bool' && (x.dtype === 'int32' || x.dtype === 'float32')) {
    // The stock kernel copies the low byte (-2 became 254, 256 false); a cast to bool is x != 0.
    const backend = args.backend as BackendWasm;
    const zero = backend.makeOutput([], x.dtype);
    backend.typedArrayFromHeap(zero).fill(0);
    const out = runWasmKernel('NotEqual', backend, { a: x, b: zero });
    backend.disposeData(zero.dataId);
    return out;
  }
  return stockCast!.kernelFunc(args as never) as TensorInfo;
}

/**
 * Sum over leading axes (`[0, .., r-1]`: bias and layer-norm gradients): SIMD column sums on the
 * SIMD GEMM path, one GEMV with a vector of ones with BLAS, else one pass over the heap; the
 * stock kernel transposes the reduced axes to the end first. Other reductions go to the stock
 * kernel.
 */
function sum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((a, i) => a === i);
  if (!leading || x.dtype !== 'float32') return stockSum!.kernelFunc(args as never) as TensorInfo;
  const rows = tf.util.sizeFromShape(x.shape.slice(0, axes.length));
  const inner = tf.util.sizeFromShape(x.shape.slice(axes.length));
  const outShape = keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length);
  const out = backend.makeOutput(outShape, 'float32');
  const path = wasmGemmName();
  if (rows * inner > 0 && (path === 'simd' || path === 'blas')) {
    // SIMD column sums in the GEMM module, or a BLAS GEMV: [4096, 512] over axis 0 takes 1.7 or
    // 1.1 ms against 3.7 ms for the loop below.
    const offsets = (backend as unknown as { dataIdMap: { get(id: unknown): { memoryOffset: number } } }).dataIdMap;
    const columnSums = path === 'simd' ? simdColumnSums : gemmColumnSums;
    columnSums(backend, offsets.get(x.dataId).memoryOffset, rows, inner, offsets.get(out.dataId).memoryOffset);
    return out;
  }
  // Otherwise one pass over the heap (XNNPACK would repack the whole operand first: slower).
  const result = backend.typedArrayFromHeap(out) as Float32Array;
  const values = backend.typedArrayFromHeap(x) as Float32Array;
  const total = new Float64Array(inner);
  let r = 0;
  // Four rows per pass: a quarter of the accumulator traffic (about 2x faster).
  for (; r + 4 <= rows; r += 4) {
    const b0 = r * inner;
    const b1 = b0 + inner;
    const b2 = b1 + inner;
    const b3 = b2 + inner;
    for (let j = 0; j < inner; j++) total[j] += values[b0 + j] + values[b1 + j] + (values[b2 + j] + values[b3 + j]);
  }
  for (; r < rows; r++) {
    const base = r * inner;
    for (let j = 0; j < inner; j++) total[j] += values[base + j];
  }
  result.set(total);
  return out;
}

/**
 * Row gather (`gather(table, ids)` along axis 0: every embedding lookup) as one row copy per id;
 * the stock kernel walks element by element. Ids outside the table give zero rows (callers such
 * as TokenEmbedding reject them first). Other gathers go to the stock kernel.
 */
function gatherRows(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
  const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  if (parsedAxis !== 0 || (batchDims ?? 0) !== 0 || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32' || x.shape.length < 1) {
    return stockGather!.kernelFunc(args as never) as TensorInfo;
  }
  const rows = x.shape[0];
  const inner = tf.util.sizeFromShape(x.shape.slice(1));
  const count = tf.util.sizeFromShape(indices.shape);
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const result = backend.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const table = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const ids = backend.typedArrayFromHeap(indices) as Int32Array;
  for (let i = 0; i < count; i++) {
    const id = ids[i];
    if (id >= 0 && id < rows) result.set(table.subarray(id * inner, (id + 1) * inner), i * inner);
    else result.fill(0, i * inner, (i + 1) * inner);
  }
  return out;
}

/**
 * Slice read from the heap in place. The stock kernel first reads its input with `readSync`,
 * which copies the whole tensor out of the heap: slicing one row of a [5000, 512] position table
 * copied 10 MB (0.85 ms, a tenth of a decoding step). Copies runs of the innermost contiguous
 * block instead. Strings go to the stock kernel.
 */
function sliceInPlace(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string') return stockSlice!.kernelFunc(args as never) as TensorInfo;
  const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
  const [start, extent] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  tf.slice_util.assertParamsValid(x, start, extent);
  const out = backend.makeOutput(extent, x.dtype);
  const count = tf.util.sizeFromShape(extent);
  if (count === 0) return out;
  // Views after the allocation, which may grow (and so replace) the heap.
  const result = backend.typedArrayFromHeap(out);
  const values = backend.typedArrayFromHeap(x);
  const shape = x.shape;
  const rank = shape.length;
  // The run: the trailing axes taken whole, and the axis before them (partly).
  let axis = rank - 1;
  let run = rank === 0 ? 1 : extent[axis];
  while (axis > 0 && extent[axis] === shape[axis]) {
    axis--;
    run *= extent[axis];
  }
  if (rank === 0 || run === count) {
    const offset = tf.slice_util.computeFlatOffset(start, tf.util.computeStrides(shape));
    result.set(values.subarray(offset, offset + count));
    return out;
  }
  // Walk the outer axes 0 .. axis - 1 like an odometer; each position copies one run.
  const strides = tf.util.computeStrides(shape);
  const index = start.slice(0, axis);
  let base = tf.slice_util.computeFlatOffset(start, strides);
  for (let written = 0; written < count; written += run) {
    result.set(values.subarray(base, base + run), written);
    for (let a = axis - 1; a >= 0; a--) {
      index[a]++;
      base += strides[a];
      if (index[a] < start[a] + extent[a]) break;
      base -= strides[a] * extent[a];
      index[a] = start[a];
    }
  }
  return out;
}

/**
 * The stock wasm Transpose divides by a zero dimension (a `RuntimeError: divide by zero` from the
 * module) when the tensor is empty, which an empty batch in attention is: an empty input gives an
 * empty output of the permuted shape without calling the module.
 */
function emptySafeTranspose(stock: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (tf.util.sizeFromShape(x.shape) !== 0) return stock(args);
    const { perm } = args.attrs as { perm: number[] };
    return (args.backend as BackendWasm).makeOutput(perm.map((axis) => x.shape[axis]), x.dtype);
  };
}

let stockGather: tf.KernelConfig | undefined;
let stockIdentity: tf.KernelConfig | undefined;
let stockCast: tf.KernelConfig | undefined;
let stockSum: tf.KernelConfig | undefined;
let stockSlice: tf.KernelConfig | undefined;
let registered = false;

/** Registers the missing wasm kernels once (idempotent; an existing kernel is left alone). */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  const kernels: Array<[string, tf.KernelFunc]> = [
    ['UnsortedSegmentSum', unsortedSegmentSum as unknown as tf.KernelFunc],
    ['Einsum', einsum as unknown as tf.KernelFunc],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
  // A correctness fix, kept even with MIE_WASM_KERNELS=stock.
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (transpose) {
    tf.unregisterKernel('Transpose', 'wasm');
    tf.registerKernel({ ...transpose, kernelFunc: emptySafeTranspose(transpose.kernelFunc) });
  }
  if (environmentVariable('MIE_WASM_KERNELS') === 'stock') return;
  stockIdentity = tf.getKernel('Identity', 'wasm');
  stockSum = tf.getKernel('Sum', 'wasm');
  stockGather = tf.getKernel('GatherV2', 'wasm');
  stockSlice = tf.getKernel('Slice', 'wasm');
  stockCast = tf.getKernel('Cast', 'wasm');
  for (const [config, kernelFunc] of [[stockIdentity, identity], [stockSum, sum], [stockGather, gatherRows], [stockSlice, sliceInPlace], [stockCast, cast]] as const) {
    if (!config) continue;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
}

/** The stock Identity, Sum, GatherV2, Slice and Cast kernels, for reference comparisons in tests. */
export function stockWasmKernels(): { identity?: tf.KernelConfig; sum?: tf.KernelConfig; gather?: tf.KernelConfig; slice?: tf.KernelConfig; cast?: tf.KernelConfig } {
  return { identity: stockIdentity, sum: stockSum, gather: stockGather, slice: stockSlice, cast: stockCast };
}
