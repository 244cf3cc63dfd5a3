/**
 * Masked softmax as one kernel forward (`MieMaskedSoftmax`) and one backward (`MieSoftmaxGrad`)
 * on the cpu and wasm backends, in place of {@link maskedSoftmax}'s composition (sub, mul, add,
 * softmax, max, mul: a broadcasting pass over the scores each) and its gradients. Written by hand
 * because tfjs has no softmax kernel that takes a mask (see `registerFusedKernel` in @mie/core);
 * `maskedSoftmax` keeps the composition on every other backend and under `MIE_FUSED_KERNELS=0`.
 *
 * Per row of the last axis: the maximum over the allowed entries, their exponentials (to 1e-8)
 * and sum in float64; blocked entries get weight 0 and a row with nothing allowed gets all zeros (the
 * composition's `-1e30` fill gives exactly these). The backward is softmax's,
 * `dx = y * (dy - sum(dy * y))`, which is 0 wherever `y` is.
 *
 * Legend: the last axis is the key axis k; the mask broadcasts to the scores, right-aligned.
 */
import { registerFusedKernel, runFusedKernel, tf, type FusedKernel } from '@mie/core';

/** The forward kernel: weights of `scores [..., k]` and an optional float32 1/0 mask `allowed`. */
export const MASKED_SOFTMAX_KERNEL = 'MieMaskedSoftmax';
/** The backward kernel: `dx` of `dy, y`. */
export const SOFTMAX_GRAD_KERNEL = 'MieSoftmaxGrad';

/** 2^-i for i = 0..149 (down to float32's smallest subnormal). */
const POWERS_OF_TWO = Float64Array.from({ length: 150 }, (_, i) => 2 ** -i);

/**
 * e^v for v <= 0 (a score minus its row's maximum), to 1e-8 relative: about twice as fast as
 * Math.exp, a call V8 does not inline. v log2(e) = k + f with k an integer and |f| <= 1/2, then
 * 2^f = e^(f ln 2) by its Taylor series to degree 7 (error below 5e-9), times 2^k from a table.
 * NaN stays NaN; below 2^-149 the result is 0.
 */
function negativeExp(v: number): number {
  const t = v * Math.LOG2E;
  const k = Math.floor(t + 0.5);
  if (k < -149) return 0;
  const r = (t - k) * Math.LN2;
  const p = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040)))))));
  return p * POWERS_OF_TWO[-k];
}

/**
 * Strides into the mask for each axis of the scores (0 along broadcast axes), with the mask's
 * shape right-aligned to the scores'.
 */
function broadcastStrides(scoreShape: number[], maskShape: number[]): number[] {
  const rank = scoreShape.length;
  const aligned = [...new Array<number>(rank - maskShape.length).fill(1), ...maskShape];
  const strides = new Array<number>(rank).fill(0);
  let stride = 1;
  for (let axis = rank - 1; axis >= 0; axis--) {
    strides[axis] = aligned[axis] === 1 ? 0 : stride;
    stride *= aligned[axis];
  }
  return strides;
}

const maskedSoftmaxKernel: FusedKernel = {
  kernelName: MASKED_SOFTMAX_KERNEL,
  defaultBackends: ['cpu'], // on wasm the composition is faster but on small scores: see masks.ts
  defaultUpToElements: { wasm: 2048 },
  outputShapes: ({ scores }) => [scores],
  compute({ scores, allowed }, [y], shapes) {
    const shape = shapes.scores;
    const rank = shape.length;
    const k = shape[rank - 1];
    const rows = k === 0 ? 0 : scores.length / k;
    const strides = allowed === undefined ? null : broadcastStrides(shape, shapes.allowed);
    const keyStride = strides === null ? 0 : strides[rank - 1];
    // An odometer over the leading axes gives each row's offset into the mask.
    const index = new Array<number>(rank - 1).fill(0);
    let maskRow = 0;
    for (let r = 0; r < rows; r++) {
      const base = r * k;
      let max = -Infinity;
      let any = false;
      for (let j = 0; j < k; j++) {
        if (allowed !== undefined && allowed[maskRow + j * keyStride] === 0) continue;
        any = true;
        if (scores[base + j] > max) max = scores[base + j];
      }
      if (!any) {
        y.fill(0, base, base + k);
      } else {
        let sum = 0;
        for (let j = 0; j < k; j++) {
          if (allowed !== undefined && allowed[maskRow + j * keyStride] === 0) {
            y[base + j] = 0;
          } else {
            const e = negativeExp(scores[base + j] - max);
            y[base + j] = e;
            sum += e;
          }
        }
        const inverse = 1 / sum;
        for (let j = 0; j < k; j++) y[base + j] *= inverse;
      }
      if (strides !== null) {
        for (let axis = rank - 2; axis >= 0; axis--) {
          maskRow += strides[axis];
          if (++index[axis] < shape[axis]) break;
          maskRow -= strides[axis] * shape[axis];
          index[axis] = 0;
        }
      }
    }
  },
};

const softmaxGradKernel: FusedKernel = {
  kernelName: SOFTMAX_GRAD_KERNEL,
  defaultBackends: ['cpu'], // on wasm the composition is faster: see masks.ts
  outputShapes: ({ y }) => [y],
  compute({ dy, y }, [dx], shapes) {
    const k = shapes.y[shapes.y.length - 1];
    const rows = k === 0 ? 0 : y.length / k;
    for (let r = 0; r < rows; r++) {
      const base = r * k;
      let dot = 0;
      for (let j = 0; j < k; j++) dot += dy[base + j] * y[base + j];
      for (let j = 0; j < k; j++) dx[base + j] = y[base + j] * (dy[base + j] - dot);
    }
  },
};

registerFusedKernel(maskedSoftmaxKernel);
registerFusedKernel(softmaxGradKernel);
tf.registerGradient({
  kernelName: MASKED_SOFTMAX_KERNEL,
  outputsToSave: [true],
  gradFunc: (dy, [y], attrs) => ({
    scores: () => runFusedKernel(SOFTMAX_GRAD_KERNEL, { dy: dy as tf.Tensor, y })[0],
    // A mask is a constant (1 = may attend, 0 = blocked): no gradient flows into it.
    allowed: () => tf.zeros((attrs as { maskShape: number[] }).maskShape),
  }),
});

/**
 * Whether the fused kernel can take `scores` and `allowed` (float32 scores of rank >= 1, a mask
 * of at most their rank broadcasting to them); callers also check `fusedKernelAvailable`.
 */
export function fusedSoftmaxApplies(scores: tf.Tensor, allowed: tf.Tensor | null): boolean {
  if (scores.dtype !== 'float32' || scores.rank === 0) return false;
  if (allowed === null) return true;
  const offset = scores.rank - allowed.rank;
  return offset >= 0 && allowed.shape.every((size, i) => size === 1 || size === scores.shape[offset + i]);
}

/**
 * Softmax over the last axis of `scores` restricted to `allowed` (float32 1/0, or null for
 * everything) as one kernel. Differentiable in `scores`.
 */
export function fusedMaskedSoftmax(scores: tf.Tensor, allowed: tf.Tensor | null): tf.Tensor {
  if (allowed === null) return runFusedKernel(MASKED_SOFTMAX_KERNEL, { scores }, { maskShape: [] })[0];
  return runFusedKernel(MASKED_SOFTMAX_KERNEL, { scores, allowed }, { maskShape: allowed.shape })[0];
}
