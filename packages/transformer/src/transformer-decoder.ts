/**
 * The decoder stack of the Transformer: token embedding, positions, N decoder layers (masked
 * self-attention, cross-attention over the encoder output, feed-forward), and a final layer norm
 * in pre-norm. Produces hidden states; `EncoderDecoderTransformer` turns them into logits.
 */
import { checkCallOptions, BaseModel, MieShapeError, OUTPUT_FIELD, registerModel, tf, type ForwardMethods } from '@mie/core';
import type { KeyValueCache, MultiHeadAttention, ProjectedKeyValue } from '@mie/attention';
import { TokenEmbedding } from '@mie/embeddings';
import { LayerNorm } from '@mie/layers';
import { PositionalEncoding, type RelativePositionBias } from '@mie/positional';
import { relativeBias, stackRelativeBias } from './relative-bias';
import { embedWithPositions } from './embed-positions';
import { checkStackMemory } from './stack-memory';
import { layerOptions, resolveStackOptions, type TransformerStackConfig, type TransformerStackOptions } from './stack-options';
import { TransformerDecoderLayer } from './transformer-decoder-layer';

/** Call options of {@link TransformerDecoder.forward}. */
export interface TransformerDecoderCallOptions {
  /** `[b, t]` (with caches: `[b, cached + t]`), 1 = real target token. */
  keyPaddingMask?: tf.Tensor;
  /** Self-attention mask, broadcastable to `[b, heads, t, t]`. */
  mask?: tf.Tensor;
  /** Causal self-attention. Default false, as everywhere in MIE: decoders normally pass true. */
  causal?: boolean;
  /** `[b, s]`, 1 = real source token. */
  memoryKeyPaddingMask?: tf.Tensor;
  /** Cross-attention mask, broadcastable to `[b, heads, t, s]`. */
  memoryMask?: tf.Tensor;
  /** One self-attention cache per layer (incremental decoding); positions continue from their length. */
  caches?: KeyValueCache[];
  /** One projected cross-attention key/value pair per layer (see {@link TransformerDecoder.projectMemory}). */
  memoryKeyValues?: ProjectedKeyValue[];
}

const DECODER_OPTIONS = ['mask', 'keyPaddingMask', 'causal', 'memoryMask', 'memoryKeyPaddingMask', 'caches', 'memoryKeyValues'] as const;

/** Output of {@link TransformerDecoder.forwardWithAttention}. */
export interface DecoderOutput {
  output: tf.Tensor;
  selfAttention: tf.Tensor[];
  crossAttention: tf.Tensor[];
}

/**
 * `forward(ids [b, t] int32, memory [b, s, dModel], options)` -> `[b, t, dModel]`.
 * State: `embedding`, `positionalEncoding` (learned only), `layers.N`, `norm` (pre-norm only).
 */
export class TransformerDecoder extends BaseModel<TransformerStackConfig> {
  static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithAttention: OUTPUT_FIELD };
  readonly config: TransformerStackConfig;
  readonly embedding: TokenEmbedding;
  readonly positionalEncoding: PositionalEncoding | null;
  /** T5's relative position bias (`positionalEncoding: 't5'`, causal buckets), shared by every layer; else null. */
  readonly relativePositionBias: RelativePositionBias | null;
  readonly layers: TransformerDecoderLayer[];
  readonly norm: LayerNorm | null;

  /** `shared.embedding` ties this decoder's embedding to another module's (the same weights). */
  constructor(options: TransformerStackOptions, shared: { embedding?: TokenEmbedding } = {}) {
    super();
    this.config = resolveStackOptions('TransformerDecoder', options);
    const { vocabSize, dModel, numLayers, maxSeqLength, dropout, positionalEncoding, paddingIdx, normFirst, layerNormEps } = this.config;
    this.embedding = shared.embedding ?? new TokenEmbedding({ vocabSize, dModel, paddingIdx });
    this.positionalEncoding =
      positionalEncoding === 'sinusoidal' || positionalEncoding === 'learned'
        ? new PositionalEncoding({ dModel, maxSeqLength, dropout, encodingType: positionalEncoding })
        : null;
    this.relativePositionBias = stackRelativeBias(positionalEncoding, this.config.numHeads, false);
    this.layers = Array.from({ length: numLayers }, () => new TransformerDecoderLayer(layerOptions(this.config)));
    this.norm = normFirst ? new LayerNorm({ normalizedShape: dModel, eps: layerNormEps }) : null;
  }

  forward(ids: tf.Tensor, memory: tf.Tensor, options?: TransformerDecoderCallOptions): tf.Tensor {
    const { output, selfAttention, crossAttention } = this.forwardWithAttention(ids, memory, options);
    tf.dispose([...selfAttention, ...crossAttention]);
    return output;
  }

  /** `forward`, also returning every layer's self- and cross-attention weights. */
  forwardWithAttention(ids: tf.Tensor, memory: tf.Tensor, callOptions?: TransformerDecoderCallOptions): DecoderOutput {
    const options = checkCallOptions('TransformerDecoder.forward', callOptions, DECODER_OPTIONS);
    const { caches, memoryKeyValues, ...masks } = options;
    const numLayers = this.layers.length;
    for (const [name, list] of [['caches', caches], ['memoryKeyValues', memoryKeyValues]] as const) {
      if (list !== undefined && (!Array.isArray(list) || list.length !== numLayers)) {
        throw new MieShapeError(`TransformerDecoder: ${name} must hold one entry per layer (${numLayers}). Received: ${Array.isArray(list) ? list.length : typeof list}.`);
      }
    }
    const offset = caches?.[0]?.length ?? 0;
    checkStackMemory('TransformerDecoder', ids, this.config, offset + (memory instanceof tf.Tensor ? (memory.shape[1] ?? 0) : 0), this.training);
    return tf.tidy(() => {
      let x = embedWithPositions(ids, this.embedding, this.positionalEncoding, this.config.dropout, this.training, offset);
      const selfAttention: tf.Tensor[] = [];
      const crossAttention: tf.Tensor[] = [];
      const bias = relativeBias(this.relativePositionBias, ids.shape[1] as number, offset);
      this.layers.forEach((layer, i) => {
        const result = layer.forwardWithAttention(x, memory, { ...masks, cache: caches?.[i], memoryKeyValue: memoryKeyValues?.[i], bias });
        x = result.output;
        selfAttention.push(result.selfAttention);
        crossAttention.push(result.crossAttention as tf.Tensor);
      });
      return { output: this.norm ? this.norm.forward(x) : x, selfAttention, crossAttention };
    });
  }

  /** Projects the encoder output once per layer for cached decoding; the caller disposes the result. */
  projectMemory(memory: tf.Tensor): ProjectedKeyValue[] {
    return this.layers.map((layer) => (layer.crossAttn as MultiHeadAttention).projectKeyValue(memory, memory));
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(TransformerDecoder, 'TransformerDecoder');
