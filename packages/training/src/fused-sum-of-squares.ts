/**
 * The sum of the squares of many tensors as one kernel (`MieSumOfSquares`) on the cpu and wasm
 * backends: the global gradient norm of {@link clipGradNorm} otherwise takes a square, a sum and
 * an add per parameter (three ops each, 275 for a 92-parameter model, every step). Written by hand
 * because tfjs has no multi-input reduction (see `registerFusedKernel` in @mie/core); other
 * backends and `MIE_FUSED_KERNELS=0` keep the composition. Accumulated in float64. No gradient:
 * it runs on gradients, outside any tape.
 */
import { registerFusedKernel, runFusedKernel, tf, type FusedKernel } from '@mie/core';

/** The kernel: a scalar, the sum of the squares of every element of every input. */
export const SUM_OF_SQUARES_KERNEL = 'MieSumOfSquares';

const sumOfSquares: FusedKernel = {
  kernelName: SUM_OF_SQUARES_KERNEL,
  outputShapes: () => [[]],
  compute(inputs, [out]) {
    let total = 0;
    for (const values of Object.values(inputs)) {
      // Four partial sums: independent chains of adds run about twice as fast as one.
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let i = 0;
      for (; i + 4 <= values.length; i += 4) {
        s0 += values[i] * values[i];
        s1 += values[i + 1] * values[i + 1];
        s2 += values[i + 2] * values[i + 2];
        s3 += values[i + 3] * values[i + 3];
      }
      for (; i < values.length; i++) s0 += values[i] * values[i];
      total += s0 + s1 + (s2 + s3);
    }
    out[0] = total;
  },
};

registerFusedKernel(sumOfSquares);

/** `sum(t^2)` over every element of every float32 tensor in `tensors`, as a scalar tensor. */
export function fusedSumOfSquares(tensors: tf.Tensor[]): tf.Scalar {
  // Named in order (i0, i1, ...): the kernel reads its inputs in insertion order.
  const inputs = Object.fromEntries(tensors.map((t, i) => [`i${i}`, t]));
  return runFusedKernel(SUM_OF_SQUARES_KERNEL, inputs)[0] as tf.Scalar;
}
