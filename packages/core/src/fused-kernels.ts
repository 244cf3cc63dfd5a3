/**
 * Fused kernels: one tfjs kernel where the composition of stock ops would dispatch many (layer
 * normalisation, masked softmax and their gradients). Each is written once as plain loops over
 * Float32Arrays and registered for the `cpu` and `wasm` backends, which keep tensors in host
 * memory: on wasm the loops read and write the backend's heap in place, on cpu the backend's own
 * arrays. Every other backend (webgl, webgpu, tensorflow) has no such kernel, and callers keep
 * the tfjs composition there: {@link fusedKernelAvailable} decides at call time.
 *
 * Written by hand because tfjs has no fused layer-norm or softmax-with-mask kernel: every op of a
 * composition is a dispatch (tens of microseconds) and, on wasm, a pass over memory, and the
 * broadcasting binary ops a normalisation needs are the wasm backend's slowest.
 * `MIE_FUSED_KERNELS=0` switches every caller back to the composition.
 */
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { environmentVariable } from './host';
import { tf } from './tfjs';

/** The backends fused kernels are registered for: those that keep tensors in host memory. */
export const FUSED_KERNEL_BACKENDS = ['cpu', 'wasm'] as const;

/**
 * A kernel computed by {@link FusedKernel.compute} on host arrays. Every input and output is
 * float32; an optional input may be absent.
 */
export interface FusedKernel<Attrs extends object = Record<string, unknown>> {
  /** The name in tfjs's kernel registry (`MieLayerNorm`). */
  kernelName: string;
  /** The shapes of the outputs, from the inputs' shapes and the attributes. */
  outputShapes(shapes: Record<string, number[]>, attrs: Attrs): number[][];
  /**
   * Reads `inputs`, writes every element of `outputs` (fresh memory of the shapes above, not
   * zeroed). Must not keep the arrays: on wasm they are views of a heap that can be replaced.
   */
  compute(inputs: Record<string, Float32Array>, outputs: Float32Array[], shapes: Record<string, number[]>, attrs: Attrs): void;
  /**
   * The backends where callers use the kernel by default (default: both). It is registered, and
   * tested, on both; `MIE_FUSED_KERNELS=all` uses it everywhere it is registered. A JavaScript
   * loop beats tfjs's composition on cpu, whose kernels are JavaScript too, but can lose to the
   * wasm backend's SIMD kernels despite their dispatches.
   */
  defaultBackends?: ReadonlyArray<(typeof FUSED_KERNEL_BACKENDS)[number]>;
  /**
   * Per backend outside `defaultBackends`: callers still use the kernel by default for inputs of
   * at most this many elements (the caller passes the count to {@link fusedKernelAvailable}).
   * Where the composition's kernels are faster per element but each costs a dispatch, one loop
   * wins on small tensors (a decoding step's rows) and loses on large ones.
   */
  defaultUpToElements?: Partial<Record<(typeof FUSED_KERNEL_BACKENDS)[number], number>>;
  /**
   * Per backend outside `defaultBackends`: callers use the kernel by default whenever this
   * returns true (wasm with the SIMD module loaded, where {@link FusedKernel.wasmCompute} runs).
   */
  defaultWhen?: Partial<Record<(typeof FUSED_KERNEL_BACKENDS)[number], () => boolean>>;
  /**
   * On wasm, a faster computation over the heap (the SIMD module's passes), called with the
   * inputs' and the freshly allocated outputs' tensor infos; it returns false, writing nothing,
   * where it does not apply, and `compute` runs instead.
   */
  wasmCompute?(backend: BackendWasm, inputs: Record<string, tf.TensorInfo>, outputs: tf.TensorInfo[], attrs: Attrs): boolean;
}

/** Each registered kernel's {@link FusedKernel.defaultBackends}. */
const defaultBackends = new Map<string, ReadonlyArray<string>>();
/** Each registered kernel's {@link FusedKernel.defaultUpToElements}. */
const defaultUpToElements = new Map<string, Partial<Record<string, number>>>();
/** Each registered kernel's {@link FusedKernel.defaultWhen}. */
const defaultWhen = new Map<string, Partial<Record<string, () => boolean>>>();

/** What a tfjs kernel function receives. */
interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function checkFloat32(kernelName: string, inputs: tf.NamedTensorInfoMap): void {
  for (const [name, info] of Object.entries(inputs)) {
    if (info !== undefined && info !== null && info.dtype !== 'float32') {
      throw new Error(`${kernelName}: input ${name} must be float32; received ${info.dtype}`);
    }
  }
}

function shapesOf(inputs: tf.NamedTensorInfoMap): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const [name, info] of Object.entries(inputs)) if (info !== undefined && info !== null) shapes[name] = info.shape;
  return shapes;
}

/** The kernel function for the wasm backend: outputs allocated first, then views of the heap. */
function wasmKernelFunc<Attrs extends object>(kernel: FusedKernel<Attrs>): tf.KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const wasm = backend as BackendWasm;
    checkFloat32(kernel.kernelName, inputs);
    const shapes = shapesOf(inputs);
    const outputs = kernel.outputShapes(shapes, (attrs ?? {}) as Attrs).map((shape) => wasm.makeOutput(shape, 'float32'));
    if (kernel.wasmCompute) {
      const infos: Record<string, tf.TensorInfo> = {};
      for (const [name, info] of Object.entries(inputs)) if (info !== undefined && info !== null) infos[name] = info;
      if (kernel.wasmCompute(wasm, infos, outputs, (attrs ?? {}) as Attrs)) return outputs;
    }
    // Views only after every allocation: an allocation can grow the heap and so replace its buffer.
    const values: Record<string, Float32Array> = {};
    for (const [name, info] of Object.entries(inputs)) if (info !== undefined && info !== null) values[name] = wasm.typedArrayFromHeap(info) as Float32Array;
    kernel.compute(values, outputs.map((info) => wasm.typedArrayFromHeap(info) as Float32Array), shapes, (attrs ?? {}) as Attrs);
    return outputs;
  };
}

/** The kernel function for the cpu backend: its own arrays in, new arrays out. */
function cpuKernelFunc<Attrs extends object>(kernel: FusedKernel<Attrs>): tf.KernelFunc {
  return ({ inputs, backend, attrs }: KernelArgs) => {
    const cpu = backend as MathBackendCPU;
    checkFloat32(kernel.kernelName, inputs);
    const shapes = shapesOf(inputs);
    const values: Record<string, Float32Array> = {};
    for (const [name, info] of Object.entries(inputs)) if (info !== undefined && info !== null) values[name] = cpu.data.get(info.dataId)!.values as Float32Array;
    const outputShapes = kernel.outputShapes(shapes, (attrs ?? {}) as Attrs);
    const outputs = outputShapes.map((shape) => new Float32Array(tf.util.sizeFromShape(shape)));
    kernel.compute(values, outputs, shapes, (attrs ?? {}) as Attrs);
    return outputs.map((array, i) => cpu.makeTensorInfo(outputShapes[i], 'float32', array));
  };
}

/**
 * Registers `kernel` for the cpu and wasm backends (idempotent: a name already registered, by
 * another copy of this package, is left alone). Its gradient, if any, is registered separately
 * with `tf.registerGradient`.
 */
export function registerFusedKernel<Attrs extends object>(kernel: FusedKernel<Attrs>): void {
  const kernelFuncs: Record<(typeof FUSED_KERNEL_BACKENDS)[number], tf.KernelFunc> = { cpu: cpuKernelFunc(kernel), wasm: wasmKernelFunc(kernel) };
  if (!defaultBackends.has(kernel.kernelName)) {
    defaultBackends.set(kernel.kernelName, kernel.defaultBackends ?? FUSED_KERNEL_BACKENDS);
    defaultUpToElements.set(kernel.kernelName, { ...kernel.defaultUpToElements });
    defaultWhen.set(kernel.kernelName, { ...kernel.defaultWhen });
  }
  for (const backendName of FUSED_KERNEL_BACKENDS) {
    if (!tf.getKernel(kernel.kernelName, backendName)) tf.registerKernel({ kernelName: kernel.kernelName, backendName, kernelFunc: kernelFuncs[backendName] });
  }
}

/**
 * Whether the fused kernel `kernelName` runs on the current backend: it is registered there (cpu
 * and wasm), the backend is one of its `defaultBackends` (or its `defaultWhen` holds, or its input
 * of `elements` elements is within the backend's `defaultUpToElements`, or `MIE_FUSED_KERNELS=all`), and
 * `MIE_FUSED_KERNELS` is not `0`. Callers use the tfjs composition otherwise.
 */
export function fusedKernelAvailable(kernelName: string, elements?: number): boolean {
  const setting = environmentVariable('MIE_FUSED_KERNELS');
  if (setting === '0') return false;
  const backend = tf.getBackend();
  if (tf.getKernel(kernelName, backend) === undefined) return false;
  if (setting === 'all' || (defaultBackends.get(kernelName) ?? FUSED_KERNEL_BACKENDS).includes(backend)) return true;
  if (defaultWhen.get(kernelName)?.[backend]?.() === true) return true;
  const limit = defaultUpToElements.get(kernelName)?.[backend];
  return limit !== undefined && elements !== undefined && elements <= limit;
}

/**
 * Runs a registered kernel through the engine, so that the gradient tape records it (with the
 * gradient registered under its name) and tidy scopes track its outputs.
 */
export function runFusedKernel(kernelName: string, inputs: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap = {}): tf.Tensor[] {
  const out = tf.engine().runKernel(kernelName, inputs as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}
