/**
 * The encoder stack of the Transformer: token embedding, positions, N encoder layers, and a final
 * layer norm in pre-norm (post-norm stacks have none, as in the paper and PyTorch).
 */
import { checkCallOptions, BaseModel, MieShapeError, OUTPUT_FIELD, registerModel, tf, type ForwardMethods } from '@mie/core';
import { ATTENTION_MASK_OPTIONS, type AttentionMaskOptions, type KeyValueCache } from '@mie/attention';
import { TokenEmbedding } from '@mie/embeddings';
import { LayerNorm } from '@mie/layers';
import { PositionalEncoding, type RelativePositionBias } from '@mie/positional';
import { relativeBias, stackRelativeBias } from './relative-bias';
import { embedWithPositions } from './embed-positions';
import { checkStackMemory } from './stack-memory';
import { layerOptions, resolveStackOptions, type TransformerStackConfig, type TransformerStackOptions } from './stack-options';
import { TransformerEncoderLayer } from './transformer-encoder-layer';

/** Output of {@link TransformerEncoder.forwardWithAttention}. */
export interface EncoderOutput {
  /** `[b, t, dModel]` */
  output: tf.Tensor;
  /** One `[b, heads, t, t]` per layer. */
  selfAttention: tf.Tensor[];
}

/** Call options of {@link TransformerEncoder.forward}. */
export interface TransformerEncoderCallOptions extends AttentionMaskOptions {
  /**
   * One self-attention cache per layer, for incremental decoding of a causal encoder (a language
   * model built from encoder layers): positions continue from their length; pass `causal: true`.
   */
  caches?: KeyValueCache[];
}

const ENCODER_OPTIONS = [...ATTENTION_MASK_OPTIONS, 'caches'] as const;

/**
 * `forward(ids [b, t] int32, { keyPaddingMask, mask, causal, caches })` -> `[b, t, dModel]`.
 * State: `embedding`, `positionalEncoding` (learned only), `layers.N`, `norm` (pre-norm only).
 */
export class TransformerEncoder extends BaseModel<TransformerStackConfig> {
  static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithAttention: OUTPUT_FIELD };
  readonly config: TransformerStackConfig;
  readonly embedding: TokenEmbedding;
  readonly positionalEncoding: PositionalEncoding | null;
  /** T5's relative position bias (`positionalEncoding: 't5'`, bidirectional), shared by every layer; else null. */
  readonly relativePositionBias: RelativePositionBias | null;
  readonly layers: TransformerEncoderLayer[];
  readonly norm: LayerNorm | null;

  constructor(options: TransformerStackOptions) {
    super();
    this.config = resolveStackOptions('TransformerEncoder', options);
    const { vocabSize, dModel, numLayers, maxSeqLength, dropout, positionalEncoding, paddingIdx, normFirst, layerNormEps } = this.config;
    this.embedding = new TokenEmbedding({ vocabSize, dModel, paddingIdx });
    this.positionalEncoding =
      positionalEncoding === 'sinusoidal' || positionalEncoding === 'learned'
        ? new PositionalEncoding({ dModel, maxSeqLength, dropout, encodingType: positionalEncoding })
        : null;
    this.relativePositionBias = stackRelativeBias(positionalEncoding, this.config.numHeads, true);
    this.layers = Array.from({ length: numLayers }, () => new TransformerEncoderLayer(layerOptions(this.config)));
    this.norm = normFirst ? new LayerNorm({ normalizedShape: dModel, eps: layerNormEps }) : null;
  }

  forward(ids: tf.Tensor, options?: TransformerEncoderCallOptions): tf.Tensor {
    const { output, selfAttention } = this.forwardWithAttention(ids, options);
    tf.dispose(selfAttention);
    return output;
  }

  /** `forward`, also returning every layer's self-attention weights. */
  forwardWithAttention(ids: tf.Tensor, callOptions?: TransformerEncoderCallOptions): EncoderOutput {
    const { caches, ...options } = checkCallOptions('TransformerEncoder.forward', callOptions, ENCODER_OPTIONS);
    if (caches !== undefined && (!Array.isArray(caches) || caches.length !== this.layers.length)) {
      throw new MieShapeError(`TransformerEncoder: caches must hold one KeyValueCache per layer (${this.layers.length}). Received: ${Array.isArray(caches) ? caches.length : typeof caches}.`);
    }
    const offset = caches?.[0]?.length ?? 0;
    checkStackMemory('TransformerEncoder', ids, this.config, offset, this.training);
    return tf.tidy(() => {
      let x = embedWithPositions(ids, this.embedding, this.positionalEncoding, this.config.dropout, this.training, offset);
      const selfAttention: tf.Tensor[] = [];
      const bias = relativeBias(this.relativePositionBias, ids.shape[1] as number, offset);
      for (const [i, layer] of this.layers.entries()) {
        const result = layer.forwardWithAttention(x, { ...options, cache: caches?.[i], bias });
        x = result.output;
        selfAttention.push(result.selfAttention);
      }
      return { output: this.norm ? this.norm.forward(x) : x, selfAttention };
    });
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(TransformerEncoder, 'TransformerEncoder');
