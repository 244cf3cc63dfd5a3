/**
 * Kernels the wasm backend lacks but training needs. Without `UnsortedSegmentSum` the gradient
 * of `gather` (every embedding) fails on wasm; `Einsum` has no wasm kernel at all.
 * Both are registered for the wasm backend when `@mie/core` is imported.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tfjs';

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
}
