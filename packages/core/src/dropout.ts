import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { fusedKernelAvailable, registerFusedKernel, runFusedKernel, type FusedKernel } from './fused-kernels';
import { mulberry32, nextSeed } from './random';
import { wasmDropout } from './simd-gemm';
import { tf } from './tfjs';

/** The xorshift128 state words for `seed` (mixed through mulberry32; xorshift needs a non-zero state). */
function xorshiftState(seed: number): [number, number, number, number] {
  let state = seed >>> 0;
  const mix = () => {
    let output: number;
    [state, output] = mulberry32(state);
    return output;
  };
  // Signed 32-bit words (V8 keeps them in registers).
  return [mix() | 1, mix() | 0, mix() | 0, mix() | 0];
}

/** P(u32 >= threshold) = 1 - rate for u32 uniform on [0, 2^32). */
function keepThreshold(rate: number): number {
  return Math.min(0xffffffff, Math.round(rate * 4294967296));
}

/**
 * A scaled keep-mask of `size` elements: each is `1 / (1 - rate)` with probability `1 - rate`,
 * else 0. Drawn with a seeded xorshift128 generator (seeded through mulberry32's mixing), one
 * 32-bit integer per element compared against a threshold.
 *
 * `tf.dropout` draws its uniforms with a JS Alea generator, then adds, floors, divides and
 * multiplies, five ops and a slow draw per element: in a small transformer's training step
 * that was a quarter of the time. This is one pass; {@link dropout} on cpu and wasm also applies
 * it in the same pass (`MieDropout`, on wasm a pass of the SIMD module).
 */
export function dropoutMask(size: number, rate: number, seed: number): Float32Array {
  const mask = new Float32Array(size);
  writeDropout(null, mask, rate, seed);
  return mask;
}

/**
 * The loop of {@link dropoutMask}: writes the mask, and `x * mask` into `y` when `x` is given.
 * Written as bits, without a branch: a kept element is all of `scaleBits`, a dropped one 0 (a
 * data-dependent branch mispredicts on a tenth of the elements at rate 0.1).
 */
function writeDropout(x: { x: Float32Array; y: Float32Array } | null, mask: Float32Array, rate: number, seed: number): void {
  const size = mask.length;
  const bits = new Int32Array(mask.buffer, mask.byteOffset, size);
  const scaleBits = new Int32Array(new Float32Array([1 / (1 - rate)]).buffer)[0];
  let [a, b, c, d] = xorshiftState(seed);
  // Signed 32-bit arithmetic throughout; flipping the sign bit maps the unsigned comparison onto
  // a signed one.
  const bound = (keepThreshold(rate) ^ 0x80000000) | 0;
  for (let i = 0; i < size; i++) {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ t ^ (t >>> 8)) | 0;
    bits[i] = scaleBits & -((d ^ 0x80000000) >= bound);
  }
  if (x !== null) for (let i = 0; i < size; i++) x.y[i] = x.x[i] * mask[i];
}

/** The fused kernel: `[y, mask]` of float32 `x`, attributes `rate` and `seed`. */
export const DROPOUT_KERNEL = 'MieDropout';

interface DropoutAttrs {
  rate: number;
  seed: number;
}

const dropoutKernel: FusedKernel<DropoutAttrs> = {
  kernelName: DROPOUT_KERNEL,
  outputShapes: ({ x }) => [x, x],
  compute({ x }, [y, mask], _shapes, { rate, seed }) {
    writeDropout({ x, y }, mask, rate, seed);
  },
  // The SIMD module's pass writes both straight into the heap (the same draws, element for element).
  wasmCompute: (backend: BackendWasm, { x }, [y, mask], { rate, seed }) => wasmDropout(backend, x, { y, mask }, xorshiftState(seed), keepThreshold(rate), Math.fround(1 / (1 - rate))),
};

registerFusedKernel(dropoutKernel);
tf.registerGradient({
  kernelName: DROPOUT_KERNEL,
  outputsToSave: [false, true],
  // The mask is internal: only x receives a gradient, dy * mask.
  gradFunc: (dys, [mask]) => ({ x: () => tf.mul(Array.isArray(dys) ? dys[0] : dys, mask) }),
});

/**
 * Inverted dropout (Srivastava et al. 2014), as `torch.nn.functional.dropout`: in training mode
 * zeroes each element with probability `rate` and scales the rest by 1 / (1 - rate); otherwise
 * (or with rate 0) returns `x` itself. Masks are seeded from the global seed (`setSeed`); the
 * gradient is the upstream gradient times the same mask.
 */
export function dropout(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
  if (!training || rate === 0) return x;
  if (rate >= 1) return tf.zerosLike(x);
  if (x.dtype !== 'float32') return tf.dropout(x, rate, undefined, nextSeed());
  if (fusedKernelAvailable(DROPOUT_KERNEL)) {
    // One kernel on cpu and wasm: the mask and the product in one pass.
    const [y, mask] = runFusedKernel(DROPOUT_KERNEL, { x }, { rate, seed: nextSeed() });
    mask.dispose(); // saved for the gradient (as a copy) when a tape records
    return y;
  }
  const mask = tf.tensor(dropoutMask(x.size, rate, nextSeed()), x.shape, 'float32');
  // The mask is a constant of the tape: only x receives a gradient (dy * mask).
  const y = tf.mul(x, mask);
  mask.dispose();
  return y;
}
