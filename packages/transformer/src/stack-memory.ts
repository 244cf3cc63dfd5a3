/** What a stack's forward holds in memory, checked before the first op (shared by the encoder and decoder stacks). */
import { checkAllocation, float32Bytes, tf } from '@mie/core';
import type { TransformerStackConfig } from './stack-options';

/**
 * Refuses (MieResourceError) a stack forward whose activations would not fit in the backend's
 * memory, before the embedding runs: per layer the attention scores `[b, h, t, keys]` (a few live
 * copies), the feed-forward hidden `[b, t, dFf]` and the residual stream `[b, t, d]` (a few
 * copies), for `ids [b, t]` attending over `keys` positions (the cache, or the memory for a
 * decoder's cross-attention). A layer's intermediates are freed before the next, but a
 * training step keeps every layer's for the backward pass: with gradients, all layers count.
 */
export function checkStackMemory(
  module: string,
  ids: unknown,
  config: Pick<TransformerStackConfig, 'numHeads' | 'dModel' | 'dFf' | 'numLayers'>,
  keyLength: number,
  training: boolean,
): void {
  if (!(ids instanceof tf.Tensor) || ids.rank !== 2) return; // the embedding names the problem
  const [batch, length] = ids.shape as [number, number];
  const { numHeads, dModel, dFf, numLayers } = config;
  const perLayer = 4 * float32Bytes(batch, numHeads, length, Math.max(length, keyLength)) + 2 * float32Bytes(batch, length, dFf) + 8 * float32Bytes(batch, length, dModel);
  checkAllocation(module, `a forward of ids [${batch}, ${length}]`, training ? numLayers * perLayer : perLayer);
}
