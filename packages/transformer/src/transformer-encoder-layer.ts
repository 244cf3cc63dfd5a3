/**
 * One encoder layer of the Transformer (Vaswani et al. 2017, section 3.1): self-attention and a
 * position-wise feed-forward network, each wrapped in dropout, a residual connection and a layer
 * norm. Matches `torch.nn.TransformerEncoderLayer` (`batch_first=True`), also in pre-norm
 * (`normFirst`, Xiong et al. 2020).
 */
import { checkCallOptions, Module, OUTPUT_FIELD, checkFeatures, dropout, tf, type ForwardMethods } from '@mie/core';
import { ATTENTION_MASK_OPTIONS, MultiHeadAttention, type AttentionMaskOptions, type KeyValueCache } from '@mie/attention';
import { LayerNorm, LinearLayer, getActivation, type ActivationFunction } from '@mie/layers';
import { positionWiseFeedForward } from './position-wise-feed-forward';
import { resolveLayerOptions, type TransformerLayerConfig, type TransformerLayerOptions } from './layer-options';

/** Call options of {@link TransformerEncoderLayer.forward}. */
export interface TransformerEncoderLayerCallOptions extends AttentionMaskOptions {
  /** Self-attention key/value cache (incremental causal decoding); positions continue from its length. */
  cache?: KeyValueCache;
  /** An additive bias on the self-attention scores, `[1 | b, heads, t, keys]` (a stack's T5 relative bias). */
  bias?: tf.Tensor;
}

const ENCODER_LAYER_OPTIONS = [...ATTENTION_MASK_OPTIONS, 'cache', 'bias'] as const;
const ENCODER_LAYER_HOOK_POINTS = ['hookResidPre', 'hookResidMid', 'hookResidPost', 'hookPre', 'hookPost'] as const;

/**
 * `forward(x [b, t, dModel], { mask, keyPaddingMask, causal, cache })` -> `[b, t, dModel]`.
 *
 *   post-norm:  x = norm1(x + selfAttentionBlock(x));  x = norm2(x + feedForwardBlock(x))
 *   pre-norm:   x = x + selfAttentionBlock(norm1(x));  x = x + feedForwardBlock(norm2(x))
 *
 * State: `selfAttn` (MultiHeadAttention), `linear1 [dFf, dModel]`, `linear2 [dModel, dFf]`,
 * `norm1`, `norm2`, as PyTorch's names (`self_attn`, ...) in camelCase.
 */
export class TransformerEncoderLayer extends Module {
  static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithAttention: OUTPUT_FIELD };
  readonly config: TransformerLayerConfig;
  readonly selfAttn: MultiHeadAttention;
  readonly linear1: LinearLayer;
  readonly linear2: LinearLayer;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly #activation: ActivationFunction;

  constructor(options: TransformerLayerOptions) {
    super();
    this.config = resolveLayerOptions('TransformerEncoderLayer', options);
    const { dModel, numHeads, numKeyValueHeads, dFf, dropout: rate, positionalEncoding, maxSeqLength, layerNormEps, rotaryScaling } = this.config;
    this.selfAttn = new MultiHeadAttention({ inputDim: dModel, numHeads, numKeyValueHeads, dropout: rate, positionalEncoding, maxSeqLength, rotaryScaling });
    this.linear1 = new LinearLayer({ inFeatures: dModel, outFeatures: dFf, initType: 'xavier_uniform' });
    this.linear2 = new LinearLayer({ inFeatures: dFf, outFeatures: dModel, initType: 'xavier_uniform' });
    this.norm1 = new LayerNorm({ normalizedShape: dModel, eps: layerNormEps });
    this.norm2 = new LayerNorm({ normalizedShape: dModel, eps: layerNormEps });
    this.#activation = getActivation(this.config.activation, 'TransformerEncoderLayer');
  }

  /**
   * Hook points: `hookResidPre` (the layer's input), `hookResidMid` (the residual stream between
   * self-attention and the next block), `hookResidPost` (the output), all `[b, t, dModel]`;
   * `hookPre` and `hookPost` (the feed-forward hidden activations before and after the
   * nonlinearity, `[b, t, dFf]`). The attention modules have their own (`selfAttn.hookQ`, ...).
   */
  override hookPoints(): readonly string[] {
    return ENCODER_LAYER_HOOK_POINTS;
  }

  forward(x: tf.Tensor, options?: TransformerEncoderLayerCallOptions): tf.Tensor {
    const { output, selfAttention } = this.forwardWithAttention(x, options);
    selfAttention.dispose();
    return output;
  }

  /** `forward`, also returning the self-attention weights `[b, heads, t, t]`. */
  forwardWithAttention(x: tf.Tensor, callOptions?: TransformerEncoderLayerCallOptions): { output: tf.Tensor; selfAttention: tf.Tensor } {
    const options = checkCallOptions('TransformerEncoderLayer.forward', callOptions, ENCODER_LAYER_OPTIONS);
    checkFeatures('TransformerEncoderLayer', 'input x', x, this.config.dModel, 'dModel', 3);
    return tf.tidy(() => {
      const hooks = this.hookPointRunner;
      const point = (name: string, t: tf.Tensor) => (hooks ? hooks(name, t) : t);
      let weights!: tf.Tensor;
      const selfAttentionBlock = (h: tf.Tensor) => {
        const [out, w] = this.selfAttn.forward(h, h, h, options);
        weights = w;
        return dropout(out, this.config.dropout, this.training);
      };
      x = point('hookResidPre', x);
      if (this.config.normFirst) {
        x = point('hookResidMid', tf.add(x, selfAttentionBlock(this.norm1.forward(x))));
        x = tf.add(x, this.feedForwardBlock(this.norm2.forward(x)));
      } else {
        x = point('hookResidMid', this.norm1.forward(tf.add(x, selfAttentionBlock(x))));
        x = this.norm2.forward(tf.add(x, this.feedForwardBlock(x)));
      }
      return { output: point('hookResidPost', x), selfAttention: weights };
    });
  }

  /** `dropout(linear2(dropout(activation(linear1(x)))))`. */
  feedForwardBlock(x: tf.Tensor): tf.Tensor {
    return positionWiseFeedForward(x, this.linear1, this.linear2, this.#activation, this.config.dropout, this.training, this.hookPointRunner);
  }
}
