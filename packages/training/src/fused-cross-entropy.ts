/**
 * Cross entropy as one kernel forward (`MieCrossEntropy`) and one backward
 * (`MieCrossEntropyGrad`) on the cpu and wasm backends, in place of {@link crossEntropyLoss}'s
 * composition: log-softmax, a one-hot target distribution, a product, a sum and their gradients
 * are about a dozen passes over the `[rows, classes]` logits, and the exponentials alone (two
 * passes of tfjs-backend-wasm's scalar `Exp`) cost ~90 ms a training step of the design's
 * example model (512 rows of 10,000 classes). Here the forward is one pass for the row
 * statistics (maximum, sum of exponentials, sum of logits) and the backward one pass for the
 * softmax; on wasm both are SIMD passes of `@mie/core`'s GEMM module (`wasmRowExpStats`,
 * `wasmExpAffineRows`), elsewhere (cpu, or wasm without the module) JavaScript loops in float64.
 * Written by hand because tfjs has no fused softmax-cross-entropy with integer targets, ignored
 * targets or label smoothing. `MIE_FUSED_KERNELS=0` and every other backend keep the composition.
 *
 * Per row `r` with target `t` and `lse = max + log(sum e^(x - max))`:
 *   loss = lse - (1 - eps) x[t] - (eps / C) sum_c x[c]          (0 where t is ignored)
 *   dx[c] = dy (e^(x[c] - lse) - eps / C - (1 - eps) [c = t])   (0 where t is ignored)
 * the same as PyTorch's `F.cross_entropy` with `label_smoothing = eps`.
 */
import { runFusedKernel, tf, wasmExpAffineRows, wasmRowExpStats } from '@mie/core';

/** The forward kernel: `[loss, logSumExp]`, both of the targets' shape. */
export const CROSS_ENTROPY_KERNEL = 'MieCrossEntropy';
/** The backward kernel: `dx` of `dy, logits, targets, logSumExp`. */
export const CROSS_ENTROPY_GRAD_KERNEL = 'MieCrossEntropyGrad';

/** The kernels' attributes. */
export interface CrossEntropyAttrs {
  ignoreIndex: number;
  labelSmoothing: number;
}

type TensorInfo = tf.TensorInfo;
interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}
interface CpuBackend {
  data: { get(id: unknown): { values: Float32Array | Int32Array } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo;
}
interface WasmBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array;
}

interface RowStats {
  max: ArrayLike<number>;
  sumExp: ArrayLike<number>;
  sum: ArrayLike<number>;
}

/** Maximum, sum of `e^(x - max)` and sum of every row, in float64 (cpu, and wasm without the SIMD module). */
function rowStats(x: Float32Array, rows: number, cols: number): RowStats {
  const max = new Float64Array(rows);
  const sumExp = new Float64Array(rows);
  const sum = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let m = -Infinity;
    let nan = false;
    for (let j = 0; j < cols; j++) {
      const v = x[base + j];
      if (v > m) m = v;
      else if (v !== v) nan = true;
    }
    if (nan) m = Number.NaN;
    let e = 0;
    let s = 0;
    for (let j = 0; j < cols; j++) {
      e += Math.exp(x[base + j] - m);
      s += x[base + j];
    }
    max[r] = m;
    sumExp[r] = e;
    sum[r] = s;
  }
  return { max, sumExp, sum };
}

function rowsAndClasses(shape: number[]): [number, number] {
  const cols = shape[shape.length - 1];
  return [tf.util.sizeFromShape(shape) / cols, cols];
}

/** Writes each row's loss and log-sum-exp from its statistics. */
function forwardFromStats(
  x: Float32Array, targets: Int32Array, stats: RowStats, cols: number, a: CrossEntropyAttrs, loss: Float32Array, lse: Float32Array,
): void {
  const ignored = a.ignoreIndex;
  const smoothing = a.labelSmoothing;
  for (let r = 0; r < targets.length; r++) {
    const t = targets[r];
    if (t === ignored) {
      loss[r] = 0;
      lse[r] = 0;
      continue;
    }
    const logSumExp = stats.max[r] + Math.log(stats.sumExp[r]);
    lse[r] = logSumExp;
    let value = logSumExp - (1 - smoothing) * x[r * cols + t];
    if (smoothing > 0) value -= (smoothing / cols) * stats.sum[r];
    loss[r] = value;
  }
}

/** The per-row scale and offset of the softmax pass, and the target's own correction. */
function gradientRows(dy: Float32Array, targets: Int32Array, cols: number, a: CrossEntropyAttrs): { scale: Float32Array; offset: Float32Array } {
  const rows = targets.length;
  const scale = new Float32Array(rows);
  const offset = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    if (targets[r] === a.ignoreIndex) continue;
    scale[r] = dy[r];
    offset[r] = (-dy[r] * a.labelSmoothing) / cols;
  }
  return { scale, offset };
}

/** Subtracts `dy (1 - eps)` at each row's target and zeroes ignored rows (whatever their logits). */
function finishGradient(dx: Float32Array, dy: Float32Array, targets: Int32Array, cols: number, a: CrossEntropyAttrs): void {
  for (let r = 0; r < targets.length; r++) {
    const t = targets[r];
    if (t === a.ignoreIndex) dx.fill(0, r * cols, (r + 1) * cols);
    else dx[r * cols + t] -= dy[r] * (1 - a.labelSmoothing);
  }
}

function cpuForward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const cpu = backend as CpuBackend;
  const { logits, targets } = inputs as Record<string, TensorInfo>;
  const a = attrs as unknown as CrossEntropyAttrs;
  const [rows, cols] = rowsAndClasses(logits.shape);
  const x = cpu.data.get(logits.dataId).values as Float32Array;
  const ids = cpu.data.get(targets.dataId).values as Int32Array;
  const [loss, lse] = [new Float32Array(rows), new Float32Array(rows)];
  forwardFromStats(x, ids, rowStats(x, rows, cols), cols, a, loss, lse);
  return [loss, lse].map((values) => cpu.makeTensorInfo(targets.shape, 'float32', values));
}

function cpuBackward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const cpu = backend as CpuBackend;
  const { dy, logits, targets, lse } = inputs as Record<string, TensorInfo>;
  const a = attrs as unknown as CrossEntropyAttrs;
  const [rows, cols] = rowsAndClasses(logits.shape);
  const x = cpu.data.get(logits.dataId).values as Float32Array;
  const ids = cpu.data.get(targets.dataId).values as Int32Array;
  const g = cpu.data.get(dy.dataId).values as Float32Array;
  const shift = cpu.data.get(lse.dataId).values as Float32Array;
  const { scale, offset } = gradientRows(g, ids, cols, a);
  const dx = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) dx[base + j] = scale[r] * Math.exp(x[base + j] - shift[r]) + offset[r];
  }
  finishGradient(dx, g, ids, cols, a);
  return cpu.makeTensorInfo(logits.shape, 'float32', dx);
}

function wasmForward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const wasm = backend as WasmBackend;
  const { logits, targets } = inputs as Record<string, TensorInfo>;
  const a = attrs as unknown as CrossEntropyAttrs;
  const [rows, cols] = rowsAndClasses(logits.shape);
  const simd = wasmRowExpStats(backend as never, logits);
  // Allocate before taking views: an allocation can grow the heap and replace its buffer.
  const outputs = [0, 1].map(() => wasm.makeOutput(targets.shape, 'float32'));
  const x = wasm.typedArrayFromHeap(logits) as Float32Array;
  const [loss, lse] = outputs.map((o) => wasm.typedArrayFromHeap(o) as Float32Array);
  forwardFromStats(x, wasm.typedArrayFromHeap(targets) as Int32Array, simd ?? rowStats(x, rows, cols), cols, a, loss, lse);
  return outputs;
}

function wasmBackward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const wasm = backend as WasmBackend;
  const { dy, logits, targets, lse } = inputs as Record<string, TensorInfo>;
  const a = attrs as unknown as CrossEntropyAttrs;
  const [rows, cols] = rowsAndClasses(logits.shape);
  const ids = (wasm.typedArrayFromHeap(targets) as Int32Array).slice();
  const g = (wasm.typedArrayFromHeap(dy) as Float32Array).slice();
  const shift = (wasm.typedArrayFromHeap(lse) as Float32Array).slice();
  const { scale, offset } = gradientRows(g, ids, cols, a);
  let out = wasmExpAffineRows(backend as never, logits, shift, scale, offset);
  if (out === null) {
    out = wasm.makeOutput(logits.shape, 'float32');
    const x = wasm.typedArrayFromHeap(logits) as Float32Array;
    const dx = wasm.typedArrayFromHeap(out) as Float32Array;
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let j = 0; j < cols; j++) dx[base + j] = scale[r] * Math.exp(x[base + j] - shift[r]) + offset[r];
    }
  }
  finishGradient(wasm.typedArrayFromHeap(out) as Float32Array, g, ids, cols, a);
  return out;
}

let registered = false;

/** Registers both kernels and the gradient for cpu and wasm (idempotent; another copy's registration is kept). */
export function registerCrossEntropyKernels(): void {
  if (registered) return;
  registered = true;
  const kernels: Array<[string, string, (args: KernelArgs) => TensorInfo | TensorInfo[]]> = [
    [CROSS_ENTROPY_KERNEL, 'cpu', cpuForward],
    [CROSS_ENTROPY_KERNEL, 'wasm', wasmForward],
    [CROSS_ENTROPY_GRAD_KERNEL, 'cpu', cpuBackward],
    [CROSS_ENTROPY_GRAD_KERNEL, 'wasm', wasmBackward],
  ];
  for (const [kernelName, backendName, kernelFunc] of kernels) {
    if (!tf.getKernel(kernelName, backendName)) tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  if (!tf.getGradient(CROSS_ENTROPY_KERNEL)) {
    tf.registerGradient({
      kernelName: CROSS_ENTROPY_KERNEL,
      inputsToSave: ['logits', 'targets'],
      outputsToSave: [false, true],
      gradFunc: (dy, [logits, targets, lse], attrs) => ({
        // dy is [dLoss, dLogSumExp]; the log-sum-exp output is internal (nothing differentiates it).
        logits: () => runFusedKernel(CROSS_ENTROPY_GRAD_KERNEL, { dy: (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor, logits, targets, lse }, attrs as tf.NamedAttrMap)[0],
        // Class ids are integers: no gradient flows into them.
        targets: () => tf.zerosLike(targets),
      }),
    });
  }
}

/** Whether the fused kernels can take `logits`: float32 with at least one row and one class. */
export function fusedCrossEntropyApplies(logits: tf.Tensor): boolean {
  return logits.dtype === 'float32' && logits.size > 0;
}

/** The per-target losses (0 at ignored targets), of `targets`' shape, as one kernel. */
export function fusedCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, attrs: CrossEntropyAttrs): tf.Tensor {
  return runFusedKernel(CROSS_ENTROPY_KERNEL, { logits, targets }, attrs as unknown as tf.NamedAttrMap)[0];
}

registerCrossEntropyKernels();
