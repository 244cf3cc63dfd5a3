/**
 * The encoder-decoder Transformer (Vaswani et al. 2017): an encoder stack over the source, a
 * decoder stack over the (shifted) target with causal self-attention and cross-attention over the
 * encoder output, and an output projection to target-vocabulary logits. With `shareEmbeddings`
 * the source embedding, target embedding and output projection are one matrix (Press & Wolf 2017).
 *
 * Legend: b batch, s source length, t target length, V target vocabulary, d dModel.
 */
import { checkCallOptions, BaseModel, MieConfigError, MieShapeError, errorMessage, option, registerModel, resolveOptions, tf, type ForwardMethods } from '@mie/core';
import type { KeyValueCache, ProjectedKeyValue } from '@mie/attention';
import { LinearLayer, type ActivationName } from '@mie/layers';
import type { RotaryScalingOptions } from '@mie/positional';
import { MODEL_OPTIONS, POSITIONAL_ENCODING_OPTION, attentionPositions, checkHeads, type PositionalEncodingKind } from './model-options';
import { TransformerDecoder } from './transformer-decoder';
import { TransformerEncoder } from './transformer-encoder';
import type { DecodingSpec, DecodingStartOptions, DecodingState } from './decoding';
import { seq2seqDecodingSpec, seq2seqDecodingState } from './seq2seq-decoding';
import { generate as generateSequences, generateStream as streamSequences, type GenerateOptions, type GenerationOutput, type GenerationStreamStep } from './generation';

/** Options of {@link EncoderDecoderTransformer} (the design's names in camelCase). */
export interface EncoderDecoderTransformerOptions {
  /** Source vocabulary size. */
  srcVocabSize: number;
  /** Target vocabulary size (equal to `srcVocabSize` with `shareEmbeddings`). */
  tgtVocabSize: number;
  /** Model width. Default 512. */
  dModel?: number;
  /** Attention heads. Default 8. */
  numHeads?: number;
  /** Key/value heads of every attention (grouped-query attention); divides `numHeads`. Default `numHeads`. */
  numKeyValueHeads?: number;
  /** Encoder layers. Default 6. */
  numEncoderLayers?: number;
  /** Decoder layers. Default 6. */
  numDecoderLayers?: number;
  /** Feed-forward width. Default 2048. */
  dFf?: number;
  /** Dropout. Default 0.1. */
  dropout?: number;
  /** Longest source or target sequence. Default 5000. */
  maxSeqLength?: number;
  /** `'sinusoidal'` (default), `'learned'`, `'rotary'`, `'alibi'` or `'none'`. */
  positionalEncoding?: PositionalEncodingKind;
  /** One matrix for source embedding, target embedding and output projection (no output bias). Default false. */
  shareEmbeddings?: boolean;
  /** Padding token: when set, padding masks are derived from it and its embedding rows stay zero. Default null. */
  padTokenId?: number | null;
  /** Token every generated target starts with (the decoder start token); `generate` uses it unless its options give one. Default null. */
  bosTokenId?: number | null;
  /** Token that ends a generated target; `generate`'s default. Default null. */
  eosTokenId?: number | null;
  /** Feed-forward activation. Default `'relu'`. */
  activation?: ActivationName;
  /** Pre-norm layers (and final norms) when true; post-norm (default) when false. */
  normFirst?: boolean;
  /** Layer-norm epsilon. Default 1e-5. */
  layerNormEps?: number;
  /** With rotary positions: scaling for longer contexts (`{ type, factor, originalMaxSeqLength? }`). Default null. */
  rotaryScaling?: RotaryScalingOptions | null;
}

export type EncoderDecoderTransformerConfig = Required<EncoderDecoderTransformerOptions>;

const OPTIONS = {
  srcVocabSize: option.positiveInteger('required'),
  tgtVocabSize: option.positiveInteger('required'),
  dModel: MODEL_OPTIONS.dModel,
  numHeads: MODEL_OPTIONS.numHeads,
  numKeyValueHeads: MODEL_OPTIONS.numKeyValueHeads,
  numEncoderLayers: option.positiveInteger(6),
  numDecoderLayers: option.positiveInteger(6),
  dFf: MODEL_OPTIONS.dFf,
  dropout: MODEL_OPTIONS.dropout,
  maxSeqLength: MODEL_OPTIONS.maxSeqLength,
  positionalEncoding: POSITIONAL_ENCODING_OPTION,
  shareEmbeddings: option.boolean(false),
  padTokenId: option.nullableInteger(null),
  bosTokenId: option.nullableInteger(null),
  eosTokenId: option.nullableInteger(null),
  activation: MODEL_OPTIONS.activation,
  normFirst: MODEL_OPTIONS.normFirst,
  layerNormEps: MODEL_OPTIONS.layerNormEps,
  rotaryScaling: MODEL_OPTIONS.rotaryScaling,
} as const;

/** Call options of {@link EncoderDecoderTransformer.forward}. */
export interface EncoderDecoderCallOptions {
  /** `[b, s]`, 1 = real source token. Derived from `padTokenId` when not given. */
  srcKeyPaddingMask?: tf.Tensor;
  /** `[b, t]`, 1 = real target token. Derived from `padTokenId` when not given. */
  tgtKeyPaddingMask?: tf.Tensor;
  /** Also return every layer's attention weights. */
  returnAttention?: boolean;
}

/** Every layer's attention weights, for interpretability. */
export interface AttentionMaps {
  /** Per encoder layer, `[b, heads, s, s]`. */
  encoderSelfAttention: tf.Tensor[];
  /** Per decoder layer, `[b, heads, t, t]`. */
  decoderSelfAttention: tf.Tensor[];
  /** Per decoder layer, `[b, heads, t, s]`. */
  crossAttention: tf.Tensor[];
}

/** Output of `forward(..., { returnAttention: true })`. */
export interface EncoderDecoderOutput extends AttentionMaps {
  logits: tf.Tensor;
}

/** Call options of {@link EncoderDecoderTransformer.decode}. */
export interface DecodeOptions {
  tgtKeyPaddingMask?: tf.Tensor;
  memoryKeyPaddingMask?: tf.Tensor;
  caches?: KeyValueCache[];
  memoryKeyValues?: ProjectedKeyValue[];
}

/**
 * `forward(src [b, s], tgt [b, t], options)` -> logits `[b, t, tgtVocabSize]`; the target
 * self-attention is causal. Also `encode(src)`, `decode(tgt, memory)` and (in generation.ts)
 * `generate(src, options)`. State: `encoder`, `decoder`, `outputProjection` (absent with
 * `shareEmbeddings`: then `encoder.embedding.weight` is the only copy of the shared matrix).
 */
export class EncoderDecoderTransformer extends BaseModel<EncoderDecoderTransformerConfig> {
  /** Hooks on the model see the logits of `forward` and of every `decode` step (generation). */
  static override readonly forwardMethods: ForwardMethods = {
    forward: {
      get: (result) => (result instanceof tf.Tensor ? result : (result as EncoderDecoderOutput).logits),
      set: (result, logits) => (result instanceof tf.Tensor ? logits : { ...(result as EncoderDecoderOutput), logits }),
    },
    decode: null,
  };
  readonly config: EncoderDecoderTransformerConfig;
  readonly encoder: TransformerEncoder;
  readonly decoder: TransformerDecoder;
  readonly outputProjection: LinearLayer | null;

  constructor(options: EncoderDecoderTransformerOptions) {
    super();
    const name = 'EncoderDecoderTransformer';
    const config = resolveOptions(name, options, OPTIONS);
    const { srcVocabSize, tgtVocabSize, numEncoderLayers, numDecoderLayers, shareEmbeddings, padTokenId, bosTokenId, eosTokenId, ...shared } = config;
    if (shareEmbeddings && srcVocabSize !== tgtVocabSize) {
      throw new MieConfigError(
        errorMessage(name, 'option "shareEmbeddings"', `needs srcVocabSize = tgtVocabSize (one shared matrix); srcVocabSize is ${srcVocabSize}`, `tgtVocabSize ${tgtVocabSize}`),
      );
    }
    const vocab = Math.min(srcVocabSize, tgtVocabSize);
    if (padTokenId !== null && padTokenId >= vocab) {
      throw new MieConfigError(errorMessage(name, 'option "padTokenId"', `must be null or an integer in [0, ${vocab})`, padTokenId));
    }
    for (const [key, id] of [['bosTokenId', bosTokenId], ['eosTokenId', eosTokenId]] as const) {
      if (id !== null && id >= tgtVocabSize) throw new MieConfigError(errorMessage(name, `option "${key}"`, `must be null or a target token id in [0, ${tgtVocabSize})`, id));
    }
    checkHeads(name, { ...shared, attentionPositions: attentionPositions(shared.positionalEncoding) });
    this.config = config;
    const common = { ...shared, paddingIdx: padTokenId };
    this.encoder = new TransformerEncoder({ ...common, vocabSize: srcVocabSize, numLayers: numEncoderLayers });
    this.decoder = new TransformerDecoder(
      { ...common, vocabSize: tgtVocabSize, numLayers: numDecoderLayers },
      shareEmbeddings ? { embedding: this.encoder.embedding } : {},
    );
    this.outputProjection = shareEmbeddings ? null : new LinearLayer({ inFeatures: shared.dModel, outFeatures: tgtVocabSize, initType: 'xavier_uniform' });
  }

  /** Encodes `src [b, s]` int32 -> memory `[b, s, dModel]`. */
  encode(src: tf.Tensor, options?: { srcKeyPaddingMask?: tf.Tensor }): tf.Tensor {
    const { srcKeyPaddingMask } = checkCallOptions('EncoderDecoderTransformer.encode', options, ['srcKeyPaddingMask']);
    return tf.tidy(() => this.encoder.forward(src, { keyPaddingMask: srcKeyPaddingMask ?? this.paddingMask(src) ?? undefined }));
  }

  /** Decodes `tgt [b, t]` against `memory` -> logits `[b, t, V]` (causal self-attention). */
  decode(tgt: tf.Tensor, memory: tf.Tensor, callOptions?: DecodeOptions): tf.Tensor {
    const options = checkCallOptions('EncoderDecoderTransformer.decode', callOptions, ['tgtKeyPaddingMask', 'memoryKeyPaddingMask', 'caches', 'memoryKeyValues']);
    return tf.tidy(() => {
      const hidden = this.decoder.forward(tgt, memory, {
        causal: true,
        keyPaddingMask: options.tgtKeyPaddingMask ?? (options.caches ? undefined : (this.paddingMask(tgt) ?? undefined)),
        memoryKeyPaddingMask: options.memoryKeyPaddingMask,
        caches: options.caches,
        memoryKeyValues: options.memoryKeyValues,
      });
      return this.project(hidden);
    });
  }

  /** Hidden states `[b, t, d]` -> logits `[b, t, V]`: the output projection, or the shared embedding. */
  project(hidden: tf.Tensor): tf.Tensor {
    return this.outputProjection ? this.outputProjection.forward(hidden) : this.encoder.embedding.attend(hidden);
  }

  forward(src: tf.Tensor, tgt: tf.Tensor, options?: EncoderDecoderCallOptions & { returnAttention?: false }): tf.Tensor;
  forward(src: tf.Tensor, tgt: tf.Tensor, options: EncoderDecoderCallOptions & { returnAttention: true }): EncoderDecoderOutput;
  forward(src: tf.Tensor, tgt: tf.Tensor, callOptions?: EncoderDecoderCallOptions): tf.Tensor | EncoderDecoderOutput {
    const options = checkCallOptions('EncoderDecoderTransformer.forward', callOptions, ['srcKeyPaddingMask', 'tgtKeyPaddingMask', 'returnAttention']);
    this.checkPair(src, tgt, options);
    return tf.tidy(() => {
      const srcMask = options.srcKeyPaddingMask ?? this.paddingMask(src) ?? undefined;
      const tgtMask = options.tgtKeyPaddingMask ?? this.paddingMask(tgt) ?? undefined;
      const encoded = this.encoder.forwardWithAttention(src, { keyPaddingMask: srcMask });
      const decoded = this.decoder.forwardWithAttention(tgt, encoded.output, { causal: true, keyPaddingMask: tgtMask, memoryKeyPaddingMask: srcMask });
      const logits = this.project(decoded.output);
      if (!options.returnAttention) return logits;
      return {
        logits,
        encoderSelfAttention: encoded.selfAttention,
        decoderSelfAttention: decoded.selfAttention,
        crossAttention: decoded.crossAttention,
      };
    });
  }

  /**
   * Checks what the inner modules cannot name: src and tgt batch sizes agree, the source is not
   * empty (the decoder would attend to nothing and ignore it), and the padding masks match their ids.
   * Ranks, dtypes and id ranges are checked by the embeddings.
   */
  private checkPair(src: tf.Tensor, tgt: tf.Tensor, options: EncoderDecoderCallOptions): void {
    const name = 'EncoderDecoderTransformer';
    const isIds = (x: unknown): x is tf.Tensor => x instanceof tf.Tensor && !x.isDisposed && x.rank === 2;
    if (!isIds(src) || !isIds(tgt)) return;
    if (src.shape[1] === 0) {
      throw new MieShapeError(errorMessage(name, 'src', 'must hold at least one token per sequence ([batch, srcLength >= 1])', src));
    }
    if (tgt.shape[0] !== src.shape[0]) {
      throw new MieShapeError(errorMessage(name, 'tgt', `must have the batch size of src (${src.shape[0]})`, tgt));
    }
    const masks: Array<[string, tf.Tensor | undefined, tf.Tensor]> = [
      ['srcKeyPaddingMask', options.srcKeyPaddingMask, src],
      ['tgtKeyPaddingMask', options.tgtKeyPaddingMask, tgt],
    ];
    for (const [option, mask, ids] of masks) {
      if (mask === undefined) continue;
      if (!(mask instanceof tf.Tensor) || mask.isDisposed || !tf.util.arraysEqual(mask.shape, ids.shape)) {
        throw new MieShapeError(errorMessage(name, `option "${option}"`, `must be a tensor [${ids.shape.join(', ')}] like its ids (1 = real token)`, mask));
      }
    }
  }

  /**
   * Generates target sequences for `src` (int32 `[b, s]`): greedy, beam search (`numBeams`) or
   * sampling (`doSample`), with cached incremental decoding. Resolves to `{ sequences, scores }`:
   * token ids without the BOS, up to and including the EOS, `numReturnSequences` rows per source.
   * See generation.ts.
   */
  /** The decoding interface (decoding.ts): checks `src` and says what generation may do with it. */
  decodingSpec(src: unknown): DecodingSpec {
    return seq2seqDecodingSpec(this, src);
  }

  /** The decoding interface: encodes `src` once and returns the state that steps the decoder. */
  startDecoding(src: tf.Tensor, options: DecodingStartOptions): DecodingState {
    return seq2seqDecodingState(this, src, options);
  }

  async generate(src: tf.Tensor, options?: GenerateOptions): Promise<GenerationOutput> {
    return generateSequences(this, src, options);
  }

  /**
   * Streams greedy search or sampling: an async generator of `{ step, tokens, finished }` with one
   * token per output row per step; honours `options.signal`. See generation.ts.
   */
  generateStream(src: tf.Tensor, options?: GenerateOptions): AsyncGenerator<GenerationStreamStep, GenerationOutput, undefined> {
    return streamSequences(this, src, options);
  }

  /** `[b, n]` float mask (1 = real token) from `padTokenId`, or null without one. */
  paddingMask(ids: tf.Tensor): tf.Tensor | null {
    const { padTokenId } = this.config;
    if (padTokenId === null || !(ids instanceof tf.Tensor)) return null;
    return tf.tidy(() => tf.cast(tf.notEqual(ids, tf.scalar(padTokenId, ids.dtype)), 'float32'));
  }
}
// Named explicitly: bundlers rename classes (esbuild: EncoderDecoderTransformer2) and minifiers mangle them.
registerModel(EncoderDecoderTransformer, 'EncoderDecoderTransformer');
