/**
 * One decoder layer of the Transformer (Vaswani et al. 2017, section 3.1): masked
 * self-attention, cross-attention over the encoder output ("memory"), and a feed-forward network,
 * each with dropout, a residual connection and a layer norm. Matches
 * `torch.nn.TransformerDecoderLayer` (`batch_first=True`; `multihead_attn` is `crossAttn`).
 */
import { checkBoolean, checkCallOptions, MieShapeError, Module, OUTPUT_FIELD, checkFeatures, dropout, errorMessage, tf, type ForwardMethods } from '@mie/core';
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
  /** An additive bias on the self-attention scores, `[1 | b, heads, t, keys]` (a stack's T5 relative bias). */
  bias?: tf.Tensor;
  /** Cross-attention keys and values projected once per source (`crossAttn.projectKeyValue(memory, memory)`). */
  memoryKeyValue?: ProjectedKeyValue;
}

const DECODER_LAYER_OPTIONS = ['mask', 'keyPaddingMask', 'causal', 'memoryMask', 'memoryKeyPaddingMask', 'cache', 'memoryKeyValue', 'bias'] as const;
const DECODER_LAYER_HOOK_POINTS = ['hookResidPre', 'hookResidMid', 'hookResidMidCross', 'hookResidPost', 'hookPre', 'hookPost'] as const;

/** Output of {@link TransformerDecoderLayer.forwardWithAttention}. */
export interface DecoderLayerOutput {
  output: tf.Tensor;
  /** `[b, heads, t, t (+ cached)]` */
  selfAttention: tf.Tensor;
  /** `[b, heads, t, s]`; `null` for a layer without cross-attention. */
  crossAttention: tf.Tensor | null;
}

/** Options of {@link TransformerDecoderLayer}: the layer options and whether it has cross-attention. */
export interface TransformerDecoderLayerOptions extends TransformerLayerOptions {
  /**
   * Cross-attention over an encoder output (default true). `false` makes the block of a
   * decoder-only model (GPT): masked self-attention and the feed-forward network, with norms
   * `norm1` and `norm2`, called with `memory` null.
   */
  crossAttention?: boolean;
}

/** The resolved options of a {@link TransformerDecoderLayer}. */
export interface TransformerDecoderLayerConfig extends TransformerLayerConfig {
  crossAttention: boolean;
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
  static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithAttention: OUTPUT_FIELD };
  readonly config: TransformerDecoderLayerConfig;
  readonly selfAttn: MultiHeadAttention;
  /** Cross-attention over the memory; `null` with `crossAttention: false`. */
  readonly crossAttn: MultiHeadAttention | null;
  readonly linear1: LinearLayer;
  readonly linear2: LinearLayer;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  /** The feed-forward norm of a layer with cross-attention (`norm2` is then the cross-attention's); `null` without. */
  readonly norm3: LayerNorm | null;
  readonly #activation: ActivationFunction;

  constructor(options: TransformerDecoderLayerOptions) {
    super();
    const name = 'TransformerDecoderLayer';
    const { crossAttention = true, ...layer } = options ?? ({} as TransformerDecoderLayerOptions);
    checkBoolean(name, 'crossAttention', crossAttention);
    this.config = Object.freeze({ ...resolveLayerOptions(name, layer), crossAttention });
    const { dModel, numHeads, numKeyValueHeads, dFf, dropout: rate, positionalEncoding, maxSeqLength, layerNormEps, rotaryScaling } = this.config;
    this.selfAttn = new MultiHeadAttention({ inputDim: dModel, numHeads, numKeyValueHeads, dropout: rate, positionalEncoding, maxSeqLength, rotaryScaling });
    // Rotary and ALiBi positions relate tokens of one sequence: cross-attention does without.
    this.crossAttn = crossAttention ? new MultiHeadAttention({ inputDim: dModel, numHeads, numKeyValueHeads, dropout: rate }) : null;
    this.linear1 = new LinearLayer({ inFeatures: dModel, outFeatures: dFf, initType: 'xavier_uniform' });
    this.linear2 = new LinearLayer({ inFeatures: dFf, outFeatures: dModel, initType: 'xavier_uniform' });
    const norm = () => new LayerNorm({ normalizedShape: dModel, eps: layerNormEps });
    this.norm1 = norm();
    this.norm2 = norm();
    this.norm3 = crossAttention ? norm() : null;
    this.#activation = getActivation(this.config.activation, name);
  }

  /**
   * Hook points: `hookResidPre` (the layer's input), `hookResidMid` (the residual stream between
   * self-attention and the next block), `hookResidMidCross` (after
   * cross-attention; not in a layer without it), `hookResidPost` (the output), all `[b, t, dModel]`;
   * `hookPre` and `hookPost` (the feed-forward hidden activations before and after the
   * nonlinearity, `[b, t, dFf]`). The attention modules have their own (`selfAttn.hookQ`, ...).
   */
  override hookPoints(): readonly string[] {
    return this.crossAttn ? DECODER_LAYER_HOOK_POINTS : DECODER_LAYER_HOOK_POINTS.filter((p) => p !== 'hookResidMidCross');
  }

  forward(x: tf.Tensor, memory: tf.Tensor | null, options?: TransformerDecoderLayerCallOptions): tf.Tensor {
    const { output, selfAttention, crossAttention } = this.forwardWithAttention(x, memory, options);
    tf.dispose(crossAttention ? [selfAttention, crossAttention] : [selfAttention]);
    return output;
  }

  /** `forward`, also returning the self- and cross-attention weights. */
  forwardWithAttention(x: tf.Tensor, memory: tf.Tensor | null, callOptions?: TransformerDecoderLayerCallOptions): DecoderLayerOutput {
    const name = 'TransformerDecoderLayer';
    const options = checkCallOptions(`${name}.forward`, callOptions, DECODER_LAYER_OPTIONS);
    checkFeatures(name, 'input x', x, this.config.dModel, 'dModel', 3);
    if (this.crossAttn === null) {
      if (memory !== null && memory !== undefined) {
        throw new MieShapeError(errorMessage(name, 'memory', 'must be null: this layer has no cross-attention (crossAttention: false)', memory));
      }
      for (const key of ['memoryMask', 'memoryKeyPaddingMask', 'memoryKeyValue'] as const) {
        if (options[key] !== undefined) throw new MieShapeError(errorMessage(name, `option "${key}"`, 'needs cross-attention (this layer has crossAttention: false)', options[key]));
      }
    } else {
      checkFeatures(name, 'memory', memory, this.config.dModel, 'dModel', 3);
      if ((memory as tf.Tensor).shape[0] !== x.shape[0]) {
        throw new MieShapeError(errorMessage(name, 'memory', `must have the batch size of input x (${x.shape[0]})`, memory));
      }
    }
    const { mask, keyPaddingMask, causal, memoryMask, memoryKeyPaddingMask, cache, memoryKeyValue, bias } = options;
    const result = tf.tidy(() => {
      const rate = this.config.dropout;
      const crossAttn = this.crossAttn;
      let selfWeights!: tf.Tensor;
      let crossWeights: tf.Tensor | null = null;
      const selfAttentionBlock = (h: tf.Tensor) => {
        const [out, w] = this.selfAttn.forward(h, h, h, { mask, keyPaddingMask, causal, cache, bias });
        selfWeights = w;
        return dropout(out, rate, this.training);
      };
      const crossAttentionBlock = (h: tf.Tensor) => {
        const [out, w] = (crossAttn as MultiHeadAttention).forward(h, memory as tf.Tensor, memory as tf.Tensor, {
          mask: memoryMask,
          keyPaddingMask: memoryKeyPaddingMask,
          projectedKeyValue: memoryKeyValue,
        });
        crossWeights = w;
        return dropout(out, rate, this.training);
      };
      // The feed-forward norm is norm3 after a cross-attention block, norm2 without one.
      const feedForwardNorm = this.norm3 ?? this.norm2;
      const hooks = this.hookPointRunner;
      const point = (name: string, t: tf.Tensor) => (hooks ? hooks(name, t) : t);
      x = point('hookResidPre', x);
      if (this.config.normFirst) {
        x = point('hookResidMid', tf.add(x, selfAttentionBlock(this.norm1.forward(x))));
        if (crossAttn) x = point('hookResidMidCross', tf.add(x, crossAttentionBlock(this.norm2.forward(x))));
        x = tf.add(x, this.feedForwardBlock(feedForwardNorm.forward(x)));
      } else {
        x = point('hookResidMid', this.norm1.forward(tf.add(x, selfAttentionBlock(x))));
        if (crossAttn) x = point('hookResidMidCross', this.norm2.forward(tf.add(x, crossAttentionBlock(x))));
        x = feedForwardNorm.forward(tf.add(x, this.feedForwardBlock(x)));
      }
      x = point('hookResidPost', x);
      return crossWeights ? { output: x, selfAttention: selfWeights, crossAttention: crossWeights as tf.Tensor } : { output: x, selfAttention: selfWeights };
    });
    return { crossAttention: null, ...result };
  }

  /** `dropout(linear2(dropout(activation(linear1(x)))))`. */
  feedForwardBlock(x: tf.Tensor): tf.Tensor {
    return positionWiseFeedForward(x, this.linear1, this.linear2, this.#activation, this.config.dropout, this.training, this.hookPointRunner);
  }
}
