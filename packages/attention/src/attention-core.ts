/**
 * The one attention path behind `MultiHeadAttention`, `GroupedQueryAttention` and
 * `ALiBiAttention`: project queries, keys and values, split heads, apply the position treatment
 * (rotary on q/k, an additive bias such as ALiBi, or none), append to a key/value cache, score
 * with grouped key/value heads, mask, softmax, weight the values, merge heads and project out.
 *
 * Legend: b batch, h query heads, g key/value heads, r = h / g query heads per group, q query
 * length, k key length, d head size.
 */
import { MieConfigError, MieShapeError, buffer, checkOneOf, errorMessage, tf, type HookPointRunner } from '@mie/core';
import type { LinearLayer } from '@mie/layers';
import { RotaryPositionEncoding, type RotaryScalingOptions } from '@mie/positional';
import { KeyValueCache } from './kv-cache';
import { buildAttentionMask, type AttentionMaskOptions } from './masks';
import { checkAttentionMemory, checkCache, checkPositions } from './options';
import { headsFirst, mergeHeads, splitHeads } from './projections';
import { scaledDotProductAttention } from './scaled-dot-product-attention';

/** How an attention module encodes positions inside attention. */
export const ATTENTION_POSITIONS = ['none', 'rotary', 'alibi'] as const;
export type AttentionPositionKind = (typeof ATTENTION_POSITIONS)[number];

/**
 * The paper's head slopes: for n a power of two, `2^(-8/n)`, `2^(-16/n)`, ..., `2^(-8)`; otherwise
 * the slopes of the largest power of two p < n, followed by every other slope of 2p (the
 * reference implementation's recipe).
 */
export function alibiSlopes(numHeads: number): number[] {
  if (!Number.isSafeInteger(numHeads) || numHeads < 1) {
    throw new MieConfigError(errorMessage('alibiSlopes', 'numHeads', 'must be a positive integer', numHeads));
  }
  const powerOfTwo = (n: number) => {
    const start = 2 ** (-(2 ** -(Math.log2(n) - 3)));
    return Array.from({ length: n }, (_, i) => start * start ** i);
  };
  if (Number.isInteger(Math.log2(numHeads))) return powerOfTwo(numHeads);
  const closest = 2 ** Math.floor(Math.log2(numHeads));
  return [...powerOfTwo(closest), ...powerOfTwo(2 * closest).filter((_, i) => i % 2 === 0).slice(0, numHeads - closest)];
}

/**
 * The ALiBi bias `[1, h, q, k]`: `-slope_h x |i - j|` for queries at positions `offset ..` and keys
 * at `0 .. k-1`. `slopes` is `[1, h, 1, 1]`.
 */
export function alibiBias(slopes: tf.Tensor, queryLength: number, keyLength: number, offset: number): tf.Tensor {
  return tf.tidy(() => {
    const rows = tf.reshape(tf.range(offset, offset + queryLength), [queryLength, 1]);
    const cols = tf.reshape(tf.range(0, keyLength), [1, keyLength]);
    const distance = tf.reshape(tf.abs(tf.sub(rows, cols)), [1, 1, queryLength, keyLength]);
    return tf.neg(tf.mul(slopes, distance));
  });
}

/** The four projections of an attention module (its state: `qProj`, `kProj`, `vProj`, `outProj`). */
export interface AttentionProjections {
  readonly qProj: LinearLayer;
  readonly kProj: LinearLayer;
  readonly vProj: LinearLayer;
  readonly outProj: LinearLayer;
}

/** The fixed shape of an attention computation, and its position treatment. */
export interface AttentionLayout {
  /** The module computing, for error messages. */
  module: string;
  /** Width of queries and of the output. */
  width: number;
  /** The width option's name, for error messages (`inputDim`, `dModel`, `hiddenSize`). */
  widthName: string;
  numHeads: number;
  numKeyValueHeads: number;
  /** Rotates queries and keys, or `null`. */
  rotary: RotaryPositionEncoding | null;
  /** ALiBi slopes `[1, h, 1, 1]`, or `null`. */
  slopes: tf.Tensor | null;
  /** Longest position accepted (cache included) when positions matter (rotary, ALiBi). */
  maxSeqLength: number;
}

/** Projected keys and values `[batch, kvHeads, keyLength, headDim]`. */
export interface ProjectedKeyValue {
  keys: tf.Tensor;
  values: tf.Tensor;
}

/** What one attention call may be given besides its inputs. */
export interface AttentionCallOptions extends AttentionMaskOptions {
  cache?: KeyValueCache;
  projectedKeyValue?: ProjectedKeyValue;
  /** An extra additive bias on the scaled scores, broadcastable to `[b, h, q, k]` (T5-style relative positions). */
  bias?: tf.Tensor;
}

/** The hook points of every attention module built on the core (TransformerLens's names, camelCase). */
export const ATTENTION_HOOK_POINTS = ['hookQ', 'hookK', 'hookV', 'hookScores', 'hookPattern', 'hookZ'] as const;

/** The keys of {@link AttentionCallOptions} beyond the masks. */
export const ATTENTION_CALL_EXTRAS = ['cache', 'projectedKeyValue', 'bias'] as const;

/** Builds the position treatment of a module: a rotary table or ALiBi slopes (buffers, not state). */
export function positionTreatment(
  kind: AttentionPositionKind,
  { numHeads, headDim, maxSeqLength, rotaryScaling = null }: { numHeads: number; headDim: number; maxSeqLength: number; rotaryScaling?: RotaryScalingOptions | null },
): { rotary: RotaryPositionEncoding | null; slopes: tf.Tensor | null } {
  return {
    rotary: kind === 'rotary' ? new RotaryPositionEncoding({ headDim, maxSeqLength, scaling: rotaryScaling }) : null,
    slopes: kind === 'alibi' ? buffer([1, numHeads, 1, 1], () => tf.tensor4d(alibiSlopes(numHeads), [1, numHeads, 1, 1])) : null,
  };
}

/** Checks a position-treatment option (`module` names the caller). */
export function checkAttentionPositions(module: string, name: string, kind: unknown, headDim: number, widthName = 'dModel'): AttentionPositionKind {
  checkOneOf(module, name, kind, ATTENTION_POSITIONS);
  if (kind === 'rotary' && headDim % 2 !== 0) {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, `needs an even head size; ${widthName} / numHeads is ${headDim}`, kind));
  }
  return kind as AttentionPositionKind;
}

/** Checks an additive bias against the score shape `[b, h, q, k]`. */
function checkBias(module: string, bias: unknown, dims: readonly number[]): tf.Tensor {
  const ok =
    bias instanceof tf.Tensor && !bias.isDisposed && bias.dtype === 'float32' && bias.rank === 4 &&
    bias.shape.every((size: number, i: number) => size === 1 || size === dims[i]);
  if (!ok) {
    throw new MieShapeError(errorMessage(module, 'option "bias"', `must be a float32 tensor broadcastable to the scores [${dims.join(', ')}]`, bias));
  }
  return bias as tf.Tensor;
}

/** `[b, h, q, x] -> [b, g, r*q, x]` (query heads of a group are contiguous: a reshape). */
function foldGroups(t: tf.Tensor, batch: number, layout: AttentionLayout, queryLength: number): tf.Tensor {
  const { numHeads, numKeyValueHeads: groups } = layout;
  const perGroup = numHeads / groups;
  if (perGroup === 1) return t;
  const full = tf.broadcastTo(t, [batch, numHeads, queryLength, t.shape[3] as number]);
  return tf.reshape(full, [batch, groups, perGroup * queryLength, t.shape[3] as number]);
}

/**
 * One attention call: `query [b, q, width]` attends over `key`/`value` `[b, k, kvWidth]` (or over
 * `projectedKeyValue`). Returns the output `[b, q, width]` and the weights `[b, h, q, k]`.
 * Positions (rotary, ALiBi, causal) continue from `cache.length`.
 */
export function attend(
  projections: AttentionProjections,
  layout: AttentionLayout,
  query: tf.Tensor,
  key: tf.Tensor,
  value: tf.Tensor,
  options: AttentionCallOptions,
  { dropout, training, hooks = null }: { dropout: number; training: boolean; hooks?: HookPointRunner | null },
): [tf.Tensor, tf.Tensor] {
  const { module, numHeads, numKeyValueHeads: groups, width, rotary, slopes } = layout;
  const { cache, projectedKeyValue } = options;
  checkCache(module, cache);
  if (projectedKeyValue && cache) {
    throw new MieConfigError(`${module}: pass either cache (self-attention) or projectedKeyValue (cross-attention), not both.`);
  }
  if (projectedKeyValue !== undefined && !(projectedKeyValue?.keys instanceof tf.Tensor && projectedKeyValue?.values instanceof tf.Tensor)) {
    throw new MieShapeError(errorMessage(module, 'option "projectedKeyValue"', 'must be { keys, values } from projectKeyValue()', projectedKeyValue));
  }
  const [batch, queryLength] = query.shape as [number, number, number];
  const offset = cache?.length ?? 0;
  const keyLength = projectedKeyValue ? (projectedKeyValue.keys.shape[2] as number) : offset + (key.shape[1] as number);
  if (rotary || slopes) checkPositions(module, offset, queryLength, layout.maxSeqLength);
  checkAttentionMemory(module, batch, numHeads, queryLength, keyLength, width);
  const scoreDims = [batch, numHeads, queryLength, keyLength];
  const extraBias = options.bias === undefined ? null : checkBias(module, options.bias, scoreDims);
  return tf.tidy(() => {
    let q = splitHeads(projections.qProj.forward(query), numHeads); // [b, q, e] -> [b, q, h, d]
    if (rotary) q = rotary.rotate(q, { offset });
    let queries = headsFirst(q); // [b, h, q, d]
    if (hooks) queries = hooks('hookQ', queries);
    let keys: tf.Tensor;
    let values: tf.Tensor;
    if (projectedKeyValue) {
      ({ keys, values } = projectedKeyValue);
    } else {
      let k = splitHeads(projections.kProj.forward(key), groups); // [b, k, g*d] -> [b, k, g, d]
      if (rotary) k = rotary.rotate(k, { offset });
      keys = headsFirst(k); // -> [b, g, k, d]
      values = headsFirst(splitHeads(projections.vProj.forward(value), groups));
      if (cache) ({ keys, values } = cache.append(keys, values, module));
    }
    if (keys.shape[1] !== groups || keys.shape[0] !== batch) {
      throw new MieShapeError(`${module}: projected keys [${keys.shape.join(', ')}] do not match batch ${batch} and ${groups} key/value heads.`);
    }
    if (hooks) {
      keys = hooks('hookK', keys); // [b, g, k, d]
      values = hooks('hookV', values);
    }
    let allowed = buildAttentionMask(module, options, { batch, heads: numHeads, queryLength, keyLength });
    let bias: tf.Tensor | null = slopes ? alibiBias(slopes, queryLength, keyLength, offset) : null;
    if (extraBias) bias = bias ? tf.add(bias, extraBias) : extraBias;
    // Grouped heads: the r query heads of a group are folded into the query length, so keys and
    // values are never repeated in memory and one batched matmul per group serves them all.
    const headDim = width / numHeads;
    const groupedQ = foldGroups(queries, batch, layout, queryLength); // [b, g, r*q, d]
    if (allowed) allowed = foldGroups(allowed, batch, layout, queryLength);
    if (bias) bias = foldGroups(bias, bias.shape[0] as number, layout, queryLength);
    const foldedScores = [batch, groups, (numHeads / groups) * queryLength, keyLength];
    const scoreHooks = hooks && {
      run: hooks,
      toHeads: (t: tf.Tensor) => tf.reshape(t, scoreDims), // [b, g, r*q, k] -> [b, h, q, k]
      fromHeads: (t: tf.Tensor) => tf.reshape(t, foldedScores),
    };
    const [context, weights] = scaledDotProductAttention(groupedQ, keys, values, { allowed, bias, dropout, training, module, hooks: scoreHooks });
    let perHead = tf.reshape(context, [batch, numHeads, queryLength, headDim]); // [b, g, r*q, d] -> [b, h, q, d]
    if (hooks) perHead = hooks('hookZ', perHead);
    const output = projections.outProj.forward(mergeHeads(perHead));
    return [output, tf.reshape(weights, scoreDims)];
  });
}

/**
 * Projects `key`/`value` `[b, k, width]` into key/value heads once (cross-attention over a fixed
 * memory). With rotary the keys are rotated at positions 0.. . The caller disposes the result.
 */
export function projectKeyValue(projections: AttentionProjections, layout: AttentionLayout, key: tf.Tensor, value: tf.Tensor): ProjectedKeyValue {
  const groups = layout.numKeyValueHeads;
  return tf.tidy(() => {
    let k = splitHeads(projections.kProj.forward(key), groups);
    if (layout.rotary) k = layout.rotary.rotate(k);
    return { keys: headsFirst(k), values: headsFirst(splitHeads(projections.vProj.forward(value), groups)) };
  });
}
