/**
 * Attention masks, one polarity everywhere (API.md section 1): `true`/`1` = may attend,
 * `false`/`0` = blocked. `mask` broadcasts to `[batch, heads, queryLength, keyLength]`,
 * `keyPaddingMask` is `[batch, keyLength]` with 1 for real tokens, and `causal: true` lets query
 * `i` see keys `j <= i + (keyLength - queryLength)`: the causal mask is aligned to the END of the
 * keys, so it stays right when cached keys precede the queries.
 *
 * Legend: b batch, h heads, q query length, k key length.
 */
import { MieShapeError, describeValue, fusedKernelAvailable, hostValues, readSync, tf } from '@mie/core';
import { MASKED_SOFTMAX_KERNEL, fusedMaskedSoftmax, fusedSoftmaxApplies } from './fused-masked-softmax';

const ADDITIVE_MASK_ERROR = 'fromAdditiveMask: mask values must be 0 (attend) or -inf / <= -1e4 (blocked); other values are a bias, not a mask.';

/** Call-time masking options shared by every attention module. */
/** The keys of {@link AttentionMaskOptions}. */
export const ATTENTION_MASK_OPTIONS = ['mask', 'keyPaddingMask', 'causal'] as const;

export interface AttentionMaskOptions {
  /** Allowed positions, broadcastable to `[batch, heads, queryLength, keyLength]` (bool or 0/1). */
  mask?: tf.Tensor;
  /** `[batch, keyLength]`, 1 (true) for real tokens, 0 (false) for padding. */
  keyPaddingMask?: tf.Tensor;
  /** Adds the causal mask (aligned to the end of the keys). Default false. */
  causal?: boolean;
}

/** Fill value for blocked scores: finite, so that softmax and its gradient never produce NaN. */
export const BLOCKED_SCORE = -1e30;

/**
 * Merges `mask`, `keyPaddingMask` and `causal` into one float32 tensor of 1 (may attend) and 0
 * (blocked) broadcastable to `[batch, heads, queryLength, keyLength]`, or `null` when nothing is
 * masked. (Float, not bool: products broadcast cheaply where bool ops would be tiled.) Wrong
 * shapes are a `MieShapeError` naming `module` and the argument.
 */
export function buildAttentionMask(
  module: string,
  { mask, keyPaddingMask, causal = false }: AttentionMaskOptions,
  dims: { batch: number; heads: number; queryLength: number; keyLength: number },
): tf.Tensor | null {
  const { batch, heads, queryLength, keyLength } = dims;
  return tf.tidy(() => {
    const parts: tf.Tensor[] = [];
    if (mask !== undefined && mask !== null) {
      if (!(mask instanceof tf.Tensor) || mask.isDisposed || mask.rank < 2 || mask.rank > 4) {
        throw new MieShapeError(
          `${module}: mask must be a tensor of rank 2 [q, k], 3 [b, q, k] or 4 [b, h, q, k] (bool, or 1 = attend). Received: ${describeValue(mask)}.`,
        );
      }
      // Right-align to [b, h, q, k]; a rank-3 mask is [b, q, k] (one per batch element, as PyTorch's).
      const shape4 = mask.rank === 2 ? [1, 1, ...mask.shape] : mask.rank === 3 ? [mask.shape[0], 1, mask.shape[1], mask.shape[2]] : mask.shape;
      const target = [batch, heads, queryLength, keyLength];
      if (!shape4.every((size, i) => size === target[i] || size === 1)) {
        throw new MieShapeError(
          `${module}: mask of shape [${mask.shape.join(', ')}] does not broadcast to [batch ${batch}, heads ${heads}, queries ${queryLength}, keys ${keyLength}].`,
        );
      }
      parts.push(toFloat(tf.reshape(mask, shape4 as number[])));
    }
    if (keyPaddingMask !== undefined && keyPaddingMask !== null) {
      if (!(keyPaddingMask instanceof tf.Tensor) || keyPaddingMask.isDisposed || keyPaddingMask.rank !== 2 || keyPaddingMask.shape[0] !== batch || keyPaddingMask.shape[1] !== keyLength) {
        throw new MieShapeError(
          `${module}: keyPaddingMask must be [batch ${batch}, keys ${keyLength}] (1 = real token). Received: ${describeValue(keyPaddingMask)}.`,
        );
      }
      parts.push(toFloat(tf.reshape(keyPaddingMask, [batch, 1, 1, keyLength]))); // [b, k] -> [b, 1, 1, k]
    }
    // One query (a cached decoding step) is the last position: it sees every key, so the causal
    // mask is all ones and is left out (with nothing else masked, no mask at all).
    if (causal && queryLength !== 1) parts.push(causalMask(queryLength, keyLength, 'float32'));
    if (parts.length === 0) return null as unknown as tf.Tensor;
    return parts.reduce((a, b) => tf.mul(a, b));
  }) as tf.Tensor | null;
}

/**
 * `[1, 1, q, k]` bool (or float32 1/0 with `dtype`): query `i` sees key `j` when `j <= i + (k - q)`.
 * Filled on the host and uploaded: one tensor instead of seven ops (ranges, a comparison,
 * reshapes, a cast) in every attention layer of every step.
 */
export function causalMask(queryLength: number, keyLength: number, dtype: 'bool' | 'float32' = 'bool'): tf.Tensor {
  const values = dtype === 'bool' ? new Uint8Array(queryLength * keyLength) : new Float32Array(queryLength * keyLength);
  for (let i = 0; i < queryLength; i++) {
    const seen = Math.min(keyLength, Math.max(0, i + keyLength - queryLength + 1)); // keys 0 .. seen - 1
    values.fill(1, i * keyLength, i * keyLength + seen);
  }
  return tf.tensor4d(values, [1, 1, queryLength, keyLength], dtype);
}

/** 1 where `x` is true / non-zero, else 0, as float32. */
function toFloat(x: tf.Tensor): tf.Tensor {
  return x.dtype === 'bool' ? tf.cast(x, 'float32') : tf.cast(tf.notEqual(x, tf.scalar(0, x.dtype)), 'float32');
}

function toBool(x: tf.Tensor): tf.Tensor {
  return x.dtype === 'bool' ? x : tf.notEqual(x, tf.scalar(0, x.dtype));
}

/**
 * Softmax over the last axis of `scores` restricted to `allowed` (bool, or float32 1/0; null =
 * everything): blocked
 * entries get weight 0, and a row with nothing allowed gets all-zero weights (so a zero context)
 * with finite gradients, never NaN.
 */
export function maskedSoftmax(scores: tf.Tensor, allowed: tf.Tensor | null): tf.Tensor {
  return tf.tidy(() => {
    // One kernel forward and one backward (fused-masked-softmax.ts) on cpu. On wasm the
    // composition's SIMD softmax is faster on large scores (forward + backward of [100, 4, 12, 12]
    // with a padding mask: 1.08 ms against 1.37; [8, 8, 64, 64]: 2.2 against 3.5), the kernel on
    // a decoding step's (forward [1, 8, 1, 64]: 12 us against 32), so there it is used up to 2048
    // elements or with MIE_FUSED_KERNELS=all.
    if (fusedKernelAvailable(MASKED_SOFTMAX_KERNEL, scores.size) && fusedSoftmaxApplies(scores, allowed)) {
      return fusedMaskedSoftmax(scores, allowed === null || allowed.dtype === 'float32' ? allowed : tf.cast(allowed, 'float32'));
    }
    if (allowed === null) return tf.softmax(scores);
    // An additive bias at the mask's own (small) shape, broadcast by the add: no full-size
    // boolean tensors (tiling bools is slow on wasm). A blocked score becomes -1e30 exactly.
    const allowedFloat = allowed.dtype === 'float32' ? allowed : tf.cast(allowed, 'float32');
    const bias = tf.mul(tf.sub(1, allowedFloat), BLOCKED_SCORE);
    const weights = tf.softmax(tf.add(scores, bias));
    // A fully blocked row came out uniform: zero it.
    const anyAllowed = tf.max(allowedFloat, -1, true); // [.., q, 1]
    return tf.mul(weights, anyAllowed);
  });
}

/**
 * Converts a PyTorch boolean mask (`True` = blocked, as `attn_mask` / `key_padding_mask` of
 * `torch.nn.MultiheadAttention`) to MIE's polarity (`true` = may attend).
 */
export function fromTorchBoolMask(mask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.logicalNot(toBool(mask)));
}

/**
 * Converts a PyTorch additive float mask (0 = attend, `-inf` or a large negative value such as
 * `-1e9` or the float minimum = blocked) to MIE's polarity. Any other value is a bias, not a
 * mask, and is a `MieShapeError`. The check reads the mask's values: where they are on the host
 * (always on cpu and wasm; on a GPU backend, a mask built from JavaScript values) directly, else
 * back from the GPU (which webgpu outside a browser cannot do: a `MieBackendError` then).
 */
export function fromAdditiveMask(mask: tf.Tensor): tf.Tensor {
  const values = hostValues(mask);
  if (values !== null) {
    // On the host already: check there, without a kernel and a read back.
    for (let i = 0; i < values.length; i++) {
      if (values[i] !== 0 && values[i] > -1e4) throw new MieShapeError(ADDITIVE_MASK_ERROR);
    }
    return tf.tidy(() => tf.equal(mask, tf.scalar(0, mask.dtype)));
  }
  const allowed = tf.tidy(() => tf.equal(mask, tf.scalar(0, mask.dtype)));
  const invalid = tf.tidy(() => tf.any(tf.logicalAnd(tf.logicalNot(allowed), tf.greater(mask, tf.scalar(-1e4, mask.dtype)))));
  let bad: number;
  try {
    bad = readSync(invalid, 'fromAdditiveMask', 'a mask built on the host (from JavaScript values), or the conversion on a cpu or wasm backend')[0];
  } catch (error) {
    allowed.dispose();
    throw error;
  } finally {
    invalid.dispose();
  }
  if (bad) {
    allowed.dispose();
    throw new MieShapeError(ADDITIVE_MASK_ERROR);
  }
  return allowed;
}
