/**
 * One decoder layer of the Transformer (Vaswani et al. 2017, section 3.1): masked
 * self-attention, cross-attention over the encoder output ("memory"), and a feed-forward network,
 * each with dropout, a residual connection and a layer norm. Matches
 * `torch.nn.TransformerDecoderLayer` (`batch_first=True`; `multihead_attn` is `crossAttn`).
 */
import { checkCallOptions, MieShapeError, Module, checkFeatures, dropout, errorMessage, tf } from '@mie/core';
import { KeyValueCache, MultiHeadAttention, type ProjectedKeyValue } from '@mie/attention';
import { LayerNorm, LinearLayer, getActivation, type ActivationFunction } from '@mie/layers';
import { positionWiseFeedForward } from './position-wise-feed-forward';
import { resolveLayerOptions, type TransformerLayerConfig, type TransformerLayerOptions } from './layer-options';

/** Call options of {@link TransformerDecoderLayer.forward}. */
export interface TransformerDecoderLayerCallOptions {
  /** Self-attention mask (true = may attend), broadcastable to `[b, heads, t, t]`. */
  mask?: tf.Tensor;
  /** `[b, t]` (self-attention keys; with a cache, all cached positions), 1 = real token. */
  keyPaddingMask?: tf.Tensor;
  /** Causal self-attention. Default false (as PyTorch; decoders normally pass true). */
  causal?: boolean;
  /** Cross-attention mask, broadcastable to `[b, heads, t, s]`. */
  memoryMask?: tf.Tensor;
  /** `[b, s]`, 1 = real source token. */
  memoryKeyPaddingMask?: tf.Tensor;
  /** Self-attention key/value cache for incremental decoding. */
  cache?: KeyValueCache;
  /** Cross-attention keys and values projected once per source (`crossAttn.projectKeyValue(memory, memory)`). */
  memoryKeyValue?: ProjectedKeyValue;
}

const DECODER_LAYER_OPTIONS = ['mask', 'keyPaddingMask', 'causal', 'memoryMask', 'memoryKeyPaddingMask', 'cache', 'memoryKeyValue'] as const;

/** Output of {@link TransformerDecoderLayer.forwardWithAttention}. */
export interface DecoderLayerOutput {
  output: tf.Tensor;
  /** `[b, heads, t, t (+ cached)]` */
  selfAttention: tf.Tensor;
  /** `[b, heads, t, s]` */
  crossAttention: tf.Tensor;
}

/**
 * `forward(x [b, t, dModel], memory [b, s, dModel], options)` -> `[b, t, dModel]`.
 *
 *   post-norm:  x = norm1(x + selfAttentionBlock(x)); x = norm2(x + crossAttentionBlock(x)); x = norm3(x + feedForwardBlock(x))
 *   pre-norm:   x = x + selfAttentionBlock(norm1(x)); x = x + crossAttentionBlock(norm2(x)); x = x + feedForwardBlock(norm3(x))
 *
 * State: `selfAttn`, `crossAttn`, `linear1`, `linear2`, `norm1`, `norm2`, `norm3`.
 */
export class TransformerDecoderLayer extends Module {
  readonly config: TransformerLayerConfig;
  readonly selfAttn: MultiHeadAttention;
  readonly crossAttn: MultiHeadAttention;
  readonly linear1: LinearLayer;
  readonly linear2: LinearLayer;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;
  readonly #activation: ActivationFunction;

  constructor(options: TransformerLayerOptions) {
    super();
    this.config = resolveLayerOptions('TransformerDecoderLayer', options);
    const { dModel, numHeads, dFf, dropout: rate, useRotaryEmbeddings, maxSeqLength, layerNormEps } = this.config;
    this.selfAttn = new MultiHeadAttention({ inputDim: dModel, numHeads, dropout: rate, useRotaryEmbeddings, maxSeqLength });
    // Rotary embeddings encode positions within one sequence: cross-attention does without.
    this.crossAttn = new MultiHeadAttention({ inputDim: dModel, numHeads, dropout: rate });
    this.linear1 = new LinearLayer({ inFeatures: dModel, outFeatures: dFf, initType: 'xavier_uniform' });
    this.linear2 = new LinearLayer({ inFeatures: dFf, outFeatures: dModel, initType: 'xavier_uniform' });
    this.norm1 = new LayerNorm({ normalizedShape: dModel, eps: layerNormEps });
    this.norm2 = new LayerNorm({ normalizedShape: dModel, eps: layerNormEps });
    this.norm3 = new LayerNorm({ normalizedShape: dModel, eps: layerNormEps });
    this.#activation = getActivation(this.config.activation, 'TransformerDecoderLayer');
  }

  forward(x: tf.Tensor, memory: tf.Tensor, options?: TransformerDecoderLayerCallOptions): tf.Tensor {
    const { output, selfAttention, crossAttention } = this.forwardWithAttention(x, memory, options);
    tf.dispose([selfAttention, crossAttention]);
    return output;
  }

  /** `forward`, also returning the self- and cross-attention weights. */
  forwardWithAttention(x: tf.Tensor, memory: tf.Tensor, callOptions?: TransformerDecoderLayerCallOptions): DecoderLayerOutput {
    const name = 'TransformerDecoderLayer';
    const options = checkCallOptions(`${name}.forward`, callOptions, DECODER_LAYER_OPTIONS);
    checkFeatures(name, 'input x', x, this.config.dModel, 'dModel', 3);
    checkFeatures(name, 'memory', memory, this.config.dModel, 'dModel', 3);
    if (memory.shape[0] !== x.shape[0]) {
      throw new MieShapeError(errorMessage(name, 'memory', `must have the batch size of input x (${x.shape[0]})`, memory));
    }
    const { mask, keyPaddingMask, causal, memoryMask, memoryKeyPaddingMask, cache, memoryKeyValue } = options;
    return tf.tidy(() => {
      const rate = this.config.dropout;
      let selfWeights!: tf.Tensor;
      let crossWeights!: tf.Tensor;
      const selfAttentionBlock = (h: tf.Tensor) => {
        const [out, w] = this.selfAttn.forward(h, h, h, { mask, keyPaddingMask, causal, cache });
        selfWeights = w;
        return dropout(out, rate, this.training);
      };
      const crossAttentionBlock = (h: tf.Tensor) => {
        const [out, w] = this.crossAttn.forward(h, memory, memory, {
          mask: memoryMask,
          keyPaddingMask: memoryKeyPaddingMask,
          projectedKeyValue: memoryKeyValue,
        });
        crossWeights = w;
        return dropout(out, rate, this.training);
      };
      if (this.config.normFirst) {
        x = tf.add(x, selfAttentionBlock(this.norm1.forward(x)));
        x = tf.add(x, crossAttentionBlock(this.norm2.forward(x)));
        x = tf.add(x, this.feedForwardBlock(this.norm3.forward(x)));
      } else {
        x = this.norm1.forward(tf.add(x, selfAttentionBlock(x)));
        x = this.norm2.forward(tf.add(x, crossAttentionBlock(x)));
        x = this.norm3.forward(tf.add(x, this.feedForwardBlock(x)));
      }
      return { output: x, selfAttention: selfWeights, crossAttention: crossWeights };
    });
  }

  /** `dropout(linear2(dropout(activation(linear1(x)))))`. */
  feedForwardBlock(x: tf.Tensor): tf.Tensor {
    return positionWiseFeedForward(x, this.linear1, this.linear2, this.#activation, this.config.dropout, this.training);
  }
}
