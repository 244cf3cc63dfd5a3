/**
 * @mie/attention: scaled dot-product, multi-head, simple, grouped-query and ALiBi attention,
 * one mask polarity (true = may attend), and key/value caches for incremental decoding.
 */
export { ScaledDotProductAttention, scaledDotProductAttention, type ScaledDotProductAttentionOptions, type AttentionCoreOptions } from './scaled-dot-product-attention';
export {
  MultiHeadAttention,
  torchMultiheadAttentionToMie,
  type MultiHeadAttentionOptions,
  type MultiHeadAttentionConfig,
  type MultiHeadAttentionCallOptions,
  type TorchMultiheadAttentionState,
  type ProjectedKeyValue,
} from './multi-head-attention';
export { SimpleAttention, type SimpleAttentionOptions } from './simple-attention';
export { GroupedQueryAttention, type GroupedQueryAttentionOptions, type GroupedQueryAttentionCallOptions } from './grouped-query-attention';
export { ALiBiAttention, type ALiBiAttentionOptions, type ALiBiAttentionCallOptions } from './alibi-attention';
export {
  alibiSlopes,
  alibiBias,
  attend,
  projectKeyValue,
  positionTreatment,
  checkAttentionPositions,
  ATTENTION_POSITIONS,
  ATTENTION_CALL_EXTRAS,
  ATTENTION_HOOK_POINTS,
  type AttentionPositionKind,
  type AttentionProjections,
  type AttentionLayout,
  type AttentionCallOptions,
} from './attention-core';
export { KeyValueCache } from './kv-cache';
export {
  buildAttentionMask,
  causalMask,
  maskedSoftmax,
  fromTorchBoolMask,
  fromAdditiveMask,
  BLOCKED_SCORE,
  ATTENTION_MASK_OPTIONS,
  type AttentionMaskOptions,
} from './masks';
