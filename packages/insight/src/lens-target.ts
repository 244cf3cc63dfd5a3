/**
 * Where a model's residual stream meets its vocabulary: the decoder stack of an encoder-decoder
 * model, or the blocks of a decoder-only model, found anywhere inside `model` (a `G2PModel`
 * wraps an `EncoderDecoderTransformer` as `transformer`).
 */
import { MieConfigError, type Module, type tf } from '@mie/core';
import type { MultiHeadAttention } from '@mie/attention';
import type { LayerNorm } from '@mie/layers';
import { DecoderOnlyTransformer, EncoderDecoderTransformer } from '@mie/transformer';

/** The decoder side of a model, for the logit lens and direct logit attribution. */
export interface LensTarget {
  /** Path of the layer list (`transformer.decoder.layers`, `layers`). */
  layersPath: string;
  numLayers: number;
  /** The attention modules of each layer, by field (`selfAttn`, `crossAttn`). */
  attention: Array<Array<[string, MultiHeadAttention]>>;
  /** The final norm (pre-norm models), or null (post-norm: each layer's output is normed). */
  finalNorm: LayerNorm | null;
  /** Hidden states `[..., dModel]` -> logits `[..., V]`. */
  project(hidden: tf.Tensor): tf.Tensor;
  dModel: number;
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

/** Finds the decoder of `model` (itself or its first descendant that has one). */
export function lensTarget(model: Module, where: string): LensTarget {
  for (const [path, module] of model.namedModules()) {
    if (module instanceof EncoderDecoderTransformer) {
      const decoder = module.decoder;
      return {
        layersPath: join(path, 'decoder.layers'),
        numLayers: decoder.layers.length,
        attention: decoder.layers.map((layer) => [['selfAttn', layer.selfAttn], ['crossAttn', layer.crossAttn as MultiHeadAttention]]),
        finalNorm: decoder.norm,
        project: (hidden) => module.project(hidden),
        dModel: module.config.dModel,
      };
    }
    if (module instanceof DecoderOnlyTransformer) {
      return {
        layersPath: join(path, 'layers'),
        numLayers: module.layers.length,
        attention: module.layers.map((layer) => [['selfAttn', layer.selfAttn]]),
        finalNorm: module.norm,
        project: (hidden) => module.project(hidden),
        dModel: module.config.dModel,
      };
    }
  }
  throw new MieConfigError(`${where}: the model holds no EncoderDecoderTransformer or DecoderOnlyTransformer, so there is no residual stream to read through the vocabulary.`);
}
