/**
 * T5's relative position bias in the stacks (Raffel et al. 2020): one `RelativePositionBias` per
 * stack (`relativePositionBias`), computed once per forward and added to the self-attention
 * scores of every layer; bidirectional in encoders, causal buckets in decoders.
 */
import type { tf } from '@mie/core';
import { RelativePositionBias } from '@mie/positional';
import type { PositionalEncodingKind } from './model-options';

/** The stack's bias module for `positionalEncoding: 't5'`, else null. */
export function stackRelativeBias(kind: PositionalEncodingKind, numHeads: number, bidirectional: boolean): RelativePositionBias | null {
  return kind === 't5' ? new RelativePositionBias({ numHeads, bidirectional }) : null;
}

/** The bias `[1, heads, t, offset + t]` for `t` new positions after `offset` cached ones, or undefined without one. */
export function relativeBias(module: RelativePositionBias | null, length: number, offset: number): tf.Tensor | undefined {
  return module ? module.forward(length, offset + length, { offset }) : undefined;
}
