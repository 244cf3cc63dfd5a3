/**
 * An image-to-sequence Transformer: the Vision Transformer encoder over the image patches and the
 * Transformer's decoder stack over the (shifted) target, with causal self-attention and
 * cross-attention over the patches, and an output projection to target-vocabulary logits
 * (TrOCR, Li et al. 2021; Pix2Struct and Donut have the same shape). Trained with teacher forcing;
 * generates with the same `generate` / `generateStream` as the text models.
 *
 * Legend: b batch, H/W image height/width, c channels, s encoder sequence (patches, +1 with a
 * class token), t target length, d dModel, V vocabulary.
 */
import {
  BaseModel,
  MieConfigError,
  MieShapeError,
  checkCallOptions,
  errorMessage,
  option,
  registerModel,
  resolveOptions,
  tf,
  type ForwardMethods,
} from '@mie/core';
import type { KeyValueCache, ProjectedKeyValue } from '@mie/attention';
import { checkImages } from '@mie/embeddings';
import { LinearLayer } from '@mie/layers';
import type { DecodingSpec, DecodingStartOptions, DecodingState } from './decoding';
import { generate as generateSequences, generateStream as streamSequences, type GenerateOptions, type GenerationOutput, type GenerationStreamStep } from './generation';
import { imageToSequenceDecodingSpec, imageToSequenceDecodingState } from './image-to-sequence-decoding';
import { MODEL_OPTIONS, POSITIONAL_ENCODING_OPTION, attentionPositions, checkHeads, type PositionalEncodingKind } from './model-options';
import { TransformerDecoder } from './transformer-decoder';
import { IMAGE_OPTIONS, VISION_LAYER_OPTIONS, VisionTransformerEncoder, checkImageOptions, type ImageOptions, type VisionTransformerEncoderOptions } from './vision-transformer-encoder';

const NAME = 'ImageToSequenceTransformer';

/** Options of {@link ImageToSequenceTransformer}. */
export interface ImageToSequenceTransformerOptions extends ImageOptions {
  /** Target vocabulary size. Required. */
  vocabSize: number;
  /** Model width. Default 512. */
  dModel?: number;
  /** Attention heads. Default 8. */
  numHeads?: number;
  /** Key/value heads of every attention (grouped-query attention); divides `numHeads`. Default `numHeads`. */
  numKeyValueHeads?: number;
  /** Encoder (vision) layers. Default 6. */
  numEncoderLayers?: number;
  /** Decoder layers. Default 6. */
  numDecoderLayers?: number;
  /** Feed-forward width. Default 2048. */
  dFf?: number;
  /** Dropout. Default 0.1. */
  dropout?: number;
  /** Longest target sequence (the decoder's positions; the BOS counts). Default 5000. */
  maxSeqLength?: number;
  /** A class token before the patches (see {@link VisionTransformerEncoder}). Default false: the decoder reads the patches. */
  classToken?: boolean;
  /** Image positions: `'learned'` (default), `'sinusoidal'` (2-D), `'rotary'`, `'alibi'` or `'none'` (see {@link VisionTransformerEncoderOptions}). */
  positionalEncoding?: PositionalEncodingKind;
  /** Target positions: `'sinusoidal'` (default), `'learned'`, `'rotary'`, `'alibi'` or `'none'`, as the text decoder's. */
  decoderPositionalEncoding?: PositionalEncodingKind;
  /** Padding token of the targets: padding masks come from it and its embedding row stays zero. Default null. */
  padTokenId?: number | null;
  /** Token every generated target starts with; `generate`'s default. Default null. */
  bosTokenId?: number | null;
  /** Token that ends a generated target; `generate`'s default. Default null. */
  eosTokenId?: number | null;
  /** Feed-forward activation. Default `'relu'`. */
  activation?: VisionTransformerEncoderOptions['activation'];
  /** Pre-norm layers (and final norms) when true; post-norm (default) when false. */
  normFirst?: boolean;
  /** Layer-norm epsilon. Default 1e-5. */
  layerNormEps?: number;
}

export type ImageToSequenceTransformerConfig = Required<ImageToSequenceTransformerOptions>;

const OPTIONS = {
  ...IMAGE_OPTIONS,
  vocabSize: option.positiveInteger('required'),
  ...VISION_LAYER_OPTIONS,
  numEncoderLayers: option.positiveInteger(6),
  numDecoderLayers: option.positiveInteger(6),
  maxSeqLength: MODEL_OPTIONS.maxSeqLength,
  classToken: option.boolean(false),
  positionalEncoding: option.oneOf(['sinusoidal', 'learned', 'rotary', 'alibi', 'none'] as const, 'learned'),
  decoderPositionalEncoding: POSITIONAL_ENCODING_OPTION,
  padTokenId: option.nullableInteger(null),
  bosTokenId: option.nullableInteger(null),
  eosTokenId: option.nullableInteger(null),
} as const;

/** Where hooks find the logits of `forward` and `decode`: the result, or its `logits` with `returnAttention`. */
const LOGITS = Object.freeze({
  get: (result: unknown) => (result instanceof tf.Tensor ? result : (result as ImageToSequenceOutput).logits),
  set: (result: unknown, logits: unknown) => (result instanceof tf.Tensor ? logits : { ...(result as ImageToSequenceOutput), logits }),
});

/** Call options of {@link ImageToSequenceTransformer.forward}. */
export interface ImageToSequenceCallOptions {
  /** `[b, t]`, 1 = real target token. Derived from `padTokenId` when not given. */
  tgtKeyPaddingMask?: tf.Tensor;
  /** Also return every layer's attention weights. */
  returnAttention?: boolean;
}

/** Every layer's attention weights. */
export interface ImageToSequenceAttention {
  /** Per encoder layer, `[b, heads, s, s]`. */
  encoderSelfAttention: tf.Tensor[];
  /** Per decoder layer, `[b, heads, t, t]`. */
  decoderSelfAttention: tf.Tensor[];
  /** Per decoder layer, `[b, heads, t, s]`: where each target position looks in the image (patches in row-major order, after the class token). */
  crossAttention: tf.Tensor[];
}

/** Output of `forward(..., { returnAttention: true })`. */
export interface ImageToSequenceOutput extends ImageToSequenceAttention {
  /** `[b, t, V]` */
  logits: tf.Tensor;
}

/** Output of `decode(..., { returnAttention: true })`. */
export type ImageToSequenceDecodeOutput = Omit<ImageToSequenceOutput, 'encoderSelfAttention'>;

/** Call options of {@link ImageToSequenceTransformer.decode}. */
export interface ImageToSequenceDecodeOptions {
  /** `[b, t]` (with caches: `[b, cached + t]`), 1 = real target token. */
  tgtKeyPaddingMask?: tf.Tensor;
  /** One self-attention cache per decoder layer (incremental decoding). */
  caches?: KeyValueCache[];
  /** The memory's cross-attention keys/values, projected once per layer ({@link TransformerDecoder.projectMemory}). */
  memoryKeyValues?: ProjectedKeyValue[];
  /** Also return the decoder's attention weights. */
  returnAttention?: boolean;
}

/**
 * `forward(images [b, H, W, c] float32, tgt [b, t] int32, options)` -> logits `[b, t, vocabSize]`;
 * the target self-attention is causal and every target position attends to every patch. Also
 * `encode(images)` -> memory `[b, s, d]`, `decode(tgt, memory, options)` -> logits, and
 * `generate(images, options)` / `generateStream(images, options)`, as the seq2seq model's.
 *
 * State: `encoder` (a {@link VisionTransformerEncoder}: `patchEmbedding.proj`, `classToken`,
 * `positionalEncoding`, `layers.N`, `norm`), `decoder` (a {@link TransformerDecoder}: `embedding`,
 * `positionalEncoding`, `layers.N`, `norm`), `outputProjection`.
 */
export class ImageToSequenceTransformer extends BaseModel<ImageToSequenceTransformerConfig> {
  /** Hooks on the model see the logits of `forward` and of every `decode` step (generation), and the memory of `encode`. */
  static override readonly forwardMethods: ForwardMethods = {
    forward: LOGITS,
    encode: null,
    decode: LOGITS,
  };
  readonly config: ImageToSequenceTransformerConfig;
  readonly encoder: VisionTransformerEncoder;
  readonly decoder: TransformerDecoder;
  readonly outputProjection: LinearLayer;

  constructor(options: ImageToSequenceTransformerOptions) {
    super();
    const config = resolveOptions(NAME, options, OPTIONS);
    const { imageSize, patchSize, numChannels, vocabSize, numEncoderLayers, numDecoderLayers, maxSeqLength, classToken, positionalEncoding, decoderPositionalEncoding, padTokenId, bosTokenId, eosTokenId, ...shared } = config;
    for (const [key, id] of [['padTokenId', padTokenId], ['bosTokenId', bosTokenId], ['eosTokenId', eosTokenId]] as const) {
      if (id !== null && id >= vocabSize) throw new MieConfigError(errorMessage(NAME, `option "${key}"`, `must be null or a token id in [0, ${vocabSize})`, id));
    }
    checkImageOptions(NAME, { ...config });
    checkHeads(NAME, { ...shared, attentionPositions: attentionPositions(positionalEncoding) });
    checkHeads(NAME, { ...shared, attentionPositions: attentionPositions(decoderPositionalEncoding) });
    this.config = config;
    this.encoder = new VisionTransformerEncoder({ imageSize, patchSize, numChannels, ...shared, numLayers: numEncoderLayers, classToken, positionalEncoding });
    this.decoder = new TransformerDecoder({ ...shared, vocabSize, numLayers: numDecoderLayers, maxSeqLength, positionalEncoding: decoderPositionalEncoding, paddingIdx: padTokenId });
    this.outputProjection = new LinearLayer({ inFeatures: shared.dModel, outFeatures: vocabSize, initType: 'xavier_uniform' });
  }

  /** Encodes `images [b, H, W, c]` -> memory `[b, s, dModel]`. */
  encode(images: tf.Tensor): tf.Tensor {
    return this.encoder.forward(images);
  }

  /** Decodes `tgt [b, t]` against `memory [b, s, d]` -> logits `[b, t, V]` (causal self-attention). */
  decode(tgt: tf.Tensor, memory: tf.Tensor, options?: ImageToSequenceDecodeOptions & { returnAttention?: false }): tf.Tensor;
  decode(tgt: tf.Tensor, memory: tf.Tensor, options: ImageToSequenceDecodeOptions & { returnAttention: true }): ImageToSequenceDecodeOutput;
  decode(tgt: tf.Tensor, memory: tf.Tensor, callOptions?: ImageToSequenceDecodeOptions): tf.Tensor | ImageToSequenceDecodeOutput {
    const options = checkCallOptions(`${NAME}.decode`, callOptions, ['tgtKeyPaddingMask', 'caches', 'memoryKeyValues', 'returnAttention']);
    return tf.tidy(() => {
      const decoded = this.decoder.forwardWithAttention(tgt, memory, {
        causal: true,
        keyPaddingMask: options.tgtKeyPaddingMask ?? (options.caches ? undefined : (this.paddingMask(tgt) ?? undefined)),
        caches: options.caches,
        memoryKeyValues: options.memoryKeyValues,
      });
      const logits = this.outputProjection.forward(decoded.output); // [b, t, d] -> [b, t, V]
      if (!options.returnAttention) return logits;
      return { logits, decoderSelfAttention: decoded.selfAttention, crossAttention: decoded.crossAttention };
    });
  }

  forward(images: tf.Tensor, tgt: tf.Tensor, options?: ImageToSequenceCallOptions & { returnAttention?: false }): tf.Tensor;
  forward(images: tf.Tensor, tgt: tf.Tensor, options: ImageToSequenceCallOptions & { returnAttention: true }): ImageToSequenceOutput;
  forward(images: tf.Tensor, tgt: tf.Tensor, callOptions?: ImageToSequenceCallOptions): tf.Tensor | ImageToSequenceOutput {
    const options = checkCallOptions(`${NAME}.forward`, callOptions, ['tgtKeyPaddingMask', 'returnAttention']);
    checkImages(NAME, images, this.config);
    this.#checkTarget(images, tgt, options.tgtKeyPaddingMask);
    return tf.tidy(() => {
      const encoded = this.encoder.forwardWithAttention(images);
      const tgtMask = options.tgtKeyPaddingMask ?? this.paddingMask(tgt) ?? undefined;
      const decoded = this.decoder.forwardWithAttention(tgt, encoded.output, { causal: true, keyPaddingMask: tgtMask });
      const logits = this.outputProjection.forward(decoded.output); // [b, t, d] -> [b, t, V]
      if (!options.returnAttention) return logits;
      return { logits, encoderSelfAttention: encoded.selfAttention, decoderSelfAttention: decoded.selfAttention, crossAttention: decoded.crossAttention };
    });
  }

  /** What the inner modules cannot name: the batch sizes agree and the mask matches the target. Ranks and id ranges are the embedding's. */
  #checkTarget(images: tf.Tensor, tgt: tf.Tensor, mask: tf.Tensor | undefined): void {
    if (!(tgt instanceof tf.Tensor) || tgt.isDisposed || tgt.rank !== 2) return;
    if (tgt.shape[0] !== images.shape[0]) throw new MieShapeError(errorMessage(NAME, 'tgt', `must have the batch size of images (${images.shape[0]})`, tgt));
    if (mask !== undefined && (!(mask instanceof tf.Tensor) || mask.isDisposed || !tf.util.arraysEqual(mask.shape, tgt.shape))) {
      throw new MieShapeError(errorMessage(NAME, 'option "tgtKeyPaddingMask"', `must be a tensor [${tgt.shape.join(', ')}] like tgt (1 = real token)`, mask));
    }
  }

  /** `[b, t]` float mask (1 = real token) from `padTokenId`, or null without one. */
  paddingMask(ids: tf.Tensor): tf.Tensor | null {
    const { padTokenId } = this.config;
    if (padTokenId === null || !(ids instanceof tf.Tensor)) return null;
    return tf.tidy(() => tf.cast(tf.notEqual(ids, tf.scalar(padTokenId, ids.dtype)), 'float32'));
  }

  /** The decoding interface (decoding.ts): checks `images` and says what generation may do with them. */
  decodingSpec(images: unknown): DecodingSpec {
    return imageToSequenceDecodingSpec(this, images);
  }

  /** The decoding interface: encodes the images once and returns the state that steps the decoder. */
  startDecoding(images: tf.Tensor, options: DecodingStartOptions): DecodingState {
    return imageToSequenceDecodingState(this, images, options);
  }

  /**
   * Reads `images` (float32 `[b, H, W, c]`): greedy search, beam search (`numBeams`) or sampling
   * (`doSample`), with cached incremental decoding. Resolves to `{ sequences, scores }`: token ids
   * without the BOS, up to and including the EOS. See generation.ts.
   */
  async generate(images: tf.Tensor, options?: GenerateOptions): Promise<GenerationOutput> {
    return generateSequences(this, images, options);
  }

  /** Streams greedy search or sampling: one `{ step, tokens, finished }` per generated position. */
  generateStream(images: tf.Tensor, options?: GenerateOptions): AsyncGenerator<GenerationStreamStep, GenerationOutput, undefined> {
    return streamSequences(this, images, options);
  }
}
// Named explicitly: bundlers rename classes and minifiers mangle them.
registerModel(ImageToSequenceTransformer, 'ImageToSequenceTransformer');
