/**
 * The encoder stack of the Transformer: token embedding, positions, N encoder layers, and a final
 * layer norm in pre-norm (post-norm stacks have none, as in the paper and PyTorch).
 */
import { checkCallOptions, BaseModel, registerModel, tf } from '@mie/core';
import { ATTENTION_MASK_OPTIONS, type AttentionMaskOptions } from '@mie/attention';
import { TokenEmbedding } from '@mie/embeddings';
import { LayerNorm } from '@mie/layers';
import { PositionalEncoding } from '@mie/positional';
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

/**
 * `forward(ids [b, t] int32, { keyPaddingMask, mask, causal })` -> `[b, t, dModel]`.
 * State: `embedding`, `positionalEncoding` (learned only), `layers.N`, `norm` (pre-norm only).
 */
export class TransformerEncoder extends BaseModel<TransformerStackConfig> {
  readonly config: TransformerStackConfig;
  readonly embedding: TokenEmbedding;
  readonly positionalEncoding: PositionalEncoding | null;
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
    this.layers = Array.from({ length: numLayers }, () => new TransformerEncoderLayer(layerOptions(this.config)));
    this.norm = normFirst ? new LayerNorm({ normalizedShape: dModel, eps: layerNormEps }) : null;
  }

  forward(ids: tf.Tensor, options?: AttentionMaskOptions): tf.Tensor {
    const { output, selfAttention } = this.forwardWithAttention(ids, options);
    tf.dispose(selfAttention);
    return output;
  }

  /** `forward`, also returning every layer's self-attention weights. */
  forwardWithAttention(ids: tf.Tensor, callOptions?: AttentionMaskOptions): EncoderOutput {
    const options = checkCallOptions('TransformerEncoder.forward', callOptions, ATTENTION_MASK_OPTIONS);
    checkStackMemory('TransformerEncoder', ids, this.config, 0, this.training);
    return tf.tidy(() => {
      let x = embedWithPositions(ids, this.embedding, this.positionalEncoding, this.config.dropout, this.training);
      const selfAttention: tf.Tensor[] = [];
      for (const layer of this.layers) {
        const result = layer.forwardWithAttention(x, options);
        x = result.output;
        selfAttention.push(result.selfAttention);
      }
      return { output: this.norm ? this.norm.forward(x) : x, selfAttention };
    });
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(TransformerEncoder, 'TransformerEncoder');
