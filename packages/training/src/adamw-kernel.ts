/**
 * A fused AdamW update kernel for the cpu and wasm backends: one pass over a parameter computes
 * its new value and both moments, where the composed version runs ~15 tfjs ops (and pays the
 * engine's per-op overhead ~15 times) per parameter and step. Other backends use the composed ops.
 */
import { environmentVariable, tf, wasmAdamWUpdate } from '@mie/core';

export const ADAMW_KERNEL = 'MieAdamWUpdate';

/** Scalars of one update (PyTorch's `torch.optim.AdamW` with `amsgrad=False`). */
export interface AdamWUpdateAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  /** `1 - lr * weightDecay`, or 1 without decay. */
  decayFactor: number;
  /** `lr / (1 - beta1^step)`. */
  stepSize: number;
  /** `sqrt(1 - beta2^step)`. */
  biasCorrection2Sqrt: number;
}

type TensorInfo = tf.TensorInfo;

/** The element loop, in double precision (cpu, and wasm without the SIMD module). */
function update(
  param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array,
  outParam: Float32Array, outM: Float32Array, outV: Float32Array, a: AdamWUpdateAttrs,
): void {
  const { beta1, beta2, eps, decayFactor, stepSize, biasCorrection2Sqrt } = a;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    const mi = beta1 * m[i] + oneMinusBeta1 * g;
    const vi = beta2 * v[i] + oneMinusBeta2 * g * g;
    outM[i] = mi;
    outV[i] = vi;
    outParam[i] = param[i] * decayFactor - (stepSize * mi) / (Math.sqrt(vi) / biasCorrection2Sqrt + eps);
  }
}

interface CpuBackend {
  data: { get(id: unknown): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo;
}

interface WasmBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

function cpuKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo[] {
  const cpu = backend as CpuBackend;
  const { param, grad, m, v } = inputs as Record<string, TensorInfo>;
  const read = (t: TensorInfo) => cpu.data.get(t.dataId).values;
  const size = tf.util.sizeFromShape(param.shape);
  const [p2, m2, v2] = [new Float32Array(size), new Float32Array(size), new Float32Array(size)];
  update(read(param), read(grad), read(m), read(v), p2, m2, v2, attrs as unknown as AdamWUpdateAttrs);
  return [p2, m2, v2].map((values) => cpu.makeTensorInfo(param.shape, 'float32', values));
}

function wasmKernel({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo[] {
  const wasm = backend as WasmBackend;
  const { param, grad, m, v } = inputs as Record<string, TensorInfo>;
  // The SIMD module's pass (float32, as PyTorch) where the backend loaded it; the loop below else.
  const simd = wasmAdamWUpdate(backend as never, { param, grad, m, v }, attrs as unknown as AdamWUpdateAttrs);
  if (simd) return simd;
  // Allocate first: allocation may grow the heap and stale earlier views.
  const outputs = [0, 1, 2].map(() => wasm.makeOutput(param.shape, 'float32'));
  const [p2, m2, v2] = outputs.map((o) => wasm.typedArrayFromHeap(o));
  const read = (t: TensorInfo) => wasm.typedArrayFromHeap(t);
  update(read(param), read(grad), read(m), read(v), p2, m2, v2, attrs as unknown as AdamWUpdateAttrs);
  return outputs;
}

let registered = false;

/** Registers the fused kernel for cpu and wasm (idempotent; `MIE_FUSED_ADAMW=0` skips it). */
export function registerAdamWKernel(): void {
  if (registered || environmentVariable('MIE_FUSED_ADAMW') === '0') return;
  registered = true;
  for (const [backendName, kernelFunc] of [['cpu', cpuKernel], ['wasm', wasmKernel]] as const) {
    if (!tf.getKernel(ADAMW_KERNEL, backendName)) {
      tf.registerKernel({ kernelName: ADAMW_KERNEL, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
    }
  }
}

/** `[param, expAvg, expAvgSq]` after one update, or null when the active backend has no fused kernel. */
export function fusedAdamWUpdate(param: tf.Tensor, grad: tf.Tensor, m: tf.Tensor, v: tf.Tensor, attrs: AdamWUpdateAttrs): tf.Tensor[] | null {
  registerAdamWKernel();
  if (param.dtype !== 'float32' || grad.dtype !== 'float32' || !tf.getKernel(ADAMW_KERNEL, tf.getBackend())) return null;
  return tf.engine().runKernel(ADAMW_KERNEL, { param, grad, m, v }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
}
