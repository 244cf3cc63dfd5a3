/**
 * Layer normalisation as one kernel forward (`MieLayerNorm`) and one backward
 * (`MieLayerNormGrad`) on the cpu and wasm backends, in place of the nine ops of the composition
 * (mean, sub, square, mean, add, rsqrt, mul, mul, add) and the two dozen of their gradients.
 * Written by hand because tfjs has no fused layer-norm kernel (see `registerFusedKernel` in
 * @mie/core); {@link LayerNorm} keeps the composition on every other backend and under
 * `MIE_FUSED_KERNELS=0`.
 *
 * As PyTorch's: per row of `n` features, the mean, then the biased variance of the centred values
 * (two passes over the row, accumulated in float64, so no cancellation), `rstd = 1 / sqrt(var +
 * eps)`; the forward saves `mean` and `rstd` for the backward.
 */
import { registerFusedKernel, runFusedKernel, simdPassesAvailable, tf, wasmLayerNorm, wasmLayerNormGrad, type FusedKernel } from '@mie/core';

/** The forward kernel: `y, mean, rstd` of `x [..., n]`, `weight [n]`, `bias [n]`. */
export const LAYER_NORM_KERNEL = 'MieLayerNorm';
/** The backward kernel: `dx, dweight, dbias` of `dy, x, weight, mean, rstd`. */
export const LAYER_NORM_GRAD_KERNEL = 'MieLayerNormGrad';

interface LayerNormAttrs {
  eps: number;
}

// Both kernels take four rows at a time: four independent sums keep the processor busy (one sum
// is a chain of dependent adds) and each weight is loaded once for the four. About 2x faster
// than row by row; the remaining rows go one by one.

const layerNorm: FusedKernel<LayerNormAttrs> = {
  kernelName: LAYER_NORM_KERNEL,
  // On wasm: the SIMD module's pass wherever it is loaded; else the loop below, which beats the
  // composition on small inputs only (see layer-norm.ts).
  defaultBackends: ['cpu'],
  defaultWhen: { wasm: simdPassesAvailable },
  defaultUpToElements: { wasm: 32768 },
  outputShapes: ({ x }) => {
    const rows = tf.util.sizeFromShape(x.slice(0, -1));
    return [x, [rows], [rows]];
  },
  wasmCompute: (backend, { x, weight, bias }, [y, mean, rstd], { eps }) => wasmLayerNorm(backend, { x, weight, bias }, { y, mean, rstd }, eps),
  compute({ x, weight, bias }, [y, mean, rstd], shapes, { eps }) {
    const n = shapes.x[shapes.x.length - 1];
    const rows = mean.length;
    let r = 0;
    for (; r + 4 <= rows; r += 4) {
      const b0 = r * n;
      const b1 = b0 + n;
      const b2 = b1 + n;
      const b3 = b2 + n;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let j = 0; j < n; j++) {
        s0 += x[b0 + j];
        s1 += x[b1 + j];
        s2 += x[b2 + j];
        s3 += x[b3 + j];
      }
      const m0 = s0 / n, m1 = s1 / n, m2 = s2 / n, m3 = s3 / n;
      let q0 = 0, q1 = 0, q2 = 0, q3 = 0;
      for (let j = 0; j < n; j++) {
        const d0 = x[b0 + j] - m0, d1 = x[b1 + j] - m1, d2 = x[b2 + j] - m2, d3 = x[b3 + j] - m3;
        q0 += d0 * d0;
        q1 += d1 * d1;
        q2 += d2 * d2;
        q3 += d3 * d3;
      }
      const r0 = 1 / Math.sqrt(q0 / n + eps), r1 = 1 / Math.sqrt(q1 / n + eps), r2 = 1 / Math.sqrt(q2 / n + eps), r3 = 1 / Math.sqrt(q3 / n + eps);
      for (let j = 0; j < n; j++) {
        const w = weight[j];
        const b = bias[j];
        y[b0 + j] = (x[b0 + j] - m0) * r0 * w + b;
        y[b1 + j] = (x[b1 + j] - m1) * r1 * w + b;
        y[b2 + j] = (x[b2 + j] - m2) * r2 * w + b;
        y[b3 + j] = (x[b3 + j] - m3) * r3 * w + b;
      }
      mean[r] = m0;
      mean[r + 1] = m1;
      mean[r + 2] = m2;
      mean[r + 3] = m3;
      rstd[r] = r0;
      rstd[r + 1] = r1;
      rstd[r + 2] = r2;
      rstd[r + 3] = r3;
    }
    for (; r < rows; r++) {
      const base = r * n;
      let sum = 0;
      for (let j = 0; j < n; j++) sum += x[base + j];
      const m = sum / n;
      let squares = 0;
      for (let j = 0; j < n; j++) {
        const d = x[base + j] - m;
        squares += d * d;
      }
      const s = 1 / Math.sqrt(squares / n + eps);
      for (let j = 0; j < n; j++) y[base + j] = (x[base + j] - m) * s * weight[j] + bias[j];
      mean[r] = m;
      rstd[r] = s;
    }
  },
};

// With xhat = (x - mean) * rstd and g = dy * weight, per row:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
// and over the rows dweight = sum(dy * xhat), dbias = sum(dy), accumulated in float64. The first
// pass sums g and g * x; sum(g * xhat) = rstd * (sum(g * x) - mean * sum(g)) is exact enough in
// float64 (float32 inputs, products exact to 48 bits).
const layerNormGrad: FusedKernel = {
  kernelName: LAYER_NORM_GRAD_KERNEL,
  defaultBackends: ['cpu'], // on wasm the SIMD pass, or the loop where the forward used its own
  defaultWhen: { wasm: simdPassesAvailable },
  outputShapes: ({ x, weight }) => [x, weight, weight],
  wasmCompute: (backend, { dy, x, weight, mean, rstd }, [dx, dweight, dbias]) => wasmLayerNormGrad(backend, { dy, x, weight, mean, rstd }, { dx, dweight, dbias }),
  compute({ dy, x, weight, mean, rstd }, [dx, dweight, dbias], shapes) {
    const n = shapes.x[shapes.x.length - 1];
    const rows = mean.length;
    const weightSum = new Float64Array(n);
    const biasSum = new Float64Array(n);
    let r = 0;
    for (; r + 4 <= rows; r += 4) {
      const b0 = r * n;
      const b1 = b0 + n;
      const b2 = b1 + n;
      const b3 = b2 + n;
      const m0 = mean[r], m1 = mean[r + 1], m2 = mean[r + 2], m3 = mean[r + 3];
      const s0 = rstd[r], s1 = rstd[r + 1], s2 = rstd[r + 2], s3 = rstd[r + 3];
      let g0 = 0, g1 = 0, g2 = 0, g3 = 0;
      let h0 = 0, h1 = 0, h2 = 0, h3 = 0;
      for (let j = 0; j < n; j++) {
        const w = weight[j];
        const e0 = dy[b0 + j] * w, e1 = dy[b1 + j] * w, e2 = dy[b2 + j] * w, e3 = dy[b3 + j] * w;
        g0 += e0;
        g1 += e1;
        g2 += e2;
        g3 += e3;
        h0 += e0 * x[b0 + j];
        h1 += e1 * x[b1 + j];
        h2 += e2 * x[b2 + j];
        h3 += e3 * x[b3 + j];
      }
      // mean(g), and mean(g * xhat) * rstd so that the last pass needs x - mean only.
      const a0 = g0 / n, a1 = g1 / n, a2 = g2 / n, a3 = g3 / n;
      const c0 = ((h0 - m0 * g0) / n) * s0 * s0;
      const c1 = ((h1 - m1 * g1) / n) * s1 * s1;
      const c2 = ((h2 - m2 * g2) / n) * s2 * s2;
      const c3 = ((h3 - m3 * g3) / n) * s3 * s3;
      for (let j = 0; j < n; j++) {
        const w = weight[j];
        const d0 = dy[b0 + j], d1 = dy[b1 + j], d2 = dy[b2 + j], d3 = dy[b3 + j];
        const x0 = x[b0 + j] - m0, x1 = x[b1 + j] - m1, x2 = x[b2 + j] - m2, x3 = x[b3 + j] - m3;
        dx[b0 + j] = s0 * (d0 * w - a0 - x0 * c0);
        dx[b1 + j] = s1 * (d1 * w - a1 - x1 * c1);
        dx[b2 + j] = s2 * (d2 * w - a2 - x2 * c2);
        dx[b3 + j] = s3 * (d3 * w - a3 - x3 * c3);
        weightSum[j] += d0 * x0 * s0 + d1 * x1 * s1 + (d2 * x2 * s2 + d3 * x3 * s3);
        biasSum[j] += d0 + d1 + (d2 + d3);
      }
    }
    for (; r < rows; r++) {
      const base = r * n;
      const m = mean[r];
      const s = rstd[r];
      let g = 0;
      let h = 0;
      for (let j = 0; j < n; j++) {
        const e = dy[base + j] * weight[j];
        g += e;
        h += e * x[base + j];
      }
      const a = g / n;
      const c = ((h - m * g) / n) * s * s;
      for (let j = 0; j < n; j++) {
        const d = dy[base + j];
        const centred = x[base + j] - m;
        dx[base + j] = s * (d * weight[j] - a - centred * c);
        weightSum[j] += d * centred * s;
        biasSum[j] += d;
      }
    }
    dweight.set(weightSum);
    dbias.set(biasSum);
  },
};

registerFusedKernel(layerNorm);
registerFusedKernel(layerNormGrad);
tf.registerGradient({
  kernelName: LAYER_NORM_KERNEL,
  inputsToSave: ['x', 'weight'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved) => {
    // One kernel gives all three gradients; mean and rstd are internal outputs (their dys unused).
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [x, weight, mean, rstd] = saved;
    const [dx, dweight, dbias] = runFusedKernel(LAYER_NORM_GRAD_KERNEL, { dy, x, weight, mean, rstd });
    return { x: () => dx, weight: () => dweight, bias: () => dbias };
  },
});

/**
 * `(x - mean) / sqrt(var + eps) * weight + bias` over the last axis of float32 `x`, as one
 * kernel (callers check `fusedKernelAvailable(LAYER_NORM_KERNEL)` first). Differentiable in `x`,
 * `weight` and `bias`.
 */
export function fusedLayerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const [y, mean, rstd] = runFusedKernel(LAYER_NORM_KERNEL, { x, weight, bias }, { eps });
  // Saved for the gradient (as copies) when a tape records; not needed otherwise.
  mean.dispose();
  rstd.dispose();
  return y;
}
