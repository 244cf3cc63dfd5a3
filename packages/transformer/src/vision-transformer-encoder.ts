/**
 * The Vision Transformer encoder (ViT, Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words"):
 * patch embedding, an optional class token, positions, a stack of encoder layers and a final layer
 * norm in pre-norm. The same `TransformerEncoderLayer`s as the text models, over image patches.
 *
 * Legend: b batch, H/W image height/width, c channels, n patches, s sequence (n, +1 with the
 * class token), d dModel.
 */
import {
  BaseModel,
  MieConfigError,
  OUTPUT_FIELD,
  buffer,
  checkAllocation,
  checkCallOptions,
  dropout,
  errorMessage,
  float32Bytes,
  normal,
  option,
  parameter,
  pickOptions,
  registerModel,
  resolveOptions,
  tf,
  type ForwardMethods,
} from '@mie/core';
import { PatchEmbedding, checkImages } from '@mie/embeddings';
import { LayerNorm } from '@mie/layers';
import { PositionalEncoding } from '@mie/positional';
import { STACK_MODEL_OPTIONS, attentionPositions, checkHeads, type ModelOptions, type PositionalEncodingKind } from './model-options';
import { layerOptions } from './stack-options';
import { TransformerEncoderLayer } from './transformer-encoder-layer';

const NAME = 'VisionTransformerEncoder';

/** The image options shared by the vision models. */
export interface ImageOptions {
  /** `[height, width]` of the images in pixels; multiples of `patchSize`. Required. */
  imageSize: [number, number];
  /** Side of the square patches in pixels. Required. */
  patchSize: number;
  /** Image channels. Default 3. */
  numChannels?: number;
}

/** Options of {@link VisionTransformerEncoder}: the image, the shared {@link ModelOptions} (less `maxSeqLength`, which the patches set) and these. */
export interface VisionTransformerEncoderOptions extends ImageOptions, Omit<ModelOptions, 'maxSeqLength'> {
  /** Encoder layers. Default 6. */
  numLayers?: number;
  /** Prepend a learned class token (`classToken [1, 1, dModel]`, ViT's `[class]`) to the patches. Default true. */
  classToken?: boolean;
  /**
   * Image positions. `'learned'` (default, ViT): a trained table `positionalEncoding.weight
   * [sequenceLength, dModel]`, from N(0, 0.02^2). `'sinusoidal'`: the fixed 2-D sine-cosine table
   * (see {@link sinusoidalEncodings2d}; `dModel` divisible by 4), not state. `'rotary'` or `'alibi'`:
   * inside self-attention, over the row-major sequence (1-D: patch `i * gw + j` is at position `i * gw + j`,
   * after the class token). `'none'`.
   */
  positionalEncoding?: PositionalEncodingKind;
}

/** The resolved options of a {@link VisionTransformerEncoder}. */
export type VisionTransformerEncoderConfig = Required<VisionTransformerEncoderOptions>;

/** Options of {@link VisionTransformerEncoder.forward}: none yet (images are never padded). */
export type VisionTransformerEncoderCallOptions = Record<string, never>;

/** Output of {@link VisionTransformerEncoder.forwardWithAttention}. */
export interface VisionEncoderOutput {
  /** `[b, s, dModel]`: the class token first (when there is one), then the patches in row-major order. */
  output: tf.Tensor;
  /** One `[b, heads, s, s]` per layer. */
  selfAttention: tf.Tensor[];
}

/** `imageSize`: `[height, width]`, two positive integers. */
export const IMAGE_SIZE_OPTION = option.custom((module, name, value): [number, number] => {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((side) => Number.isSafeInteger(side) && side > 0)) {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, 'must be [height, width], two positive integers', value));
  }
  return [value[0] as number, value[1] as number];
}, 'required');

/** The image options, in config order. */
export const IMAGE_OPTIONS = {
  imageSize: IMAGE_SIZE_OPTION,
  patchSize: option.positiveInteger('required'),
  numChannels: option.positiveInteger(3),
} as const;

/** The layer options of the vision models, from the shared table (positions are the models' own). */
export const VISION_LAYER_OPTIONS = pickOptions(STACK_MODEL_OPTIONS, ['dModel', 'numHeads', 'numKeyValueHeads', 'dFf', 'dropout', 'activation', 'normFirst', 'layerNormEps', 'rotaryScaling']);

const OPTIONS = {
  ...IMAGE_OPTIONS,
  ...VISION_LAYER_OPTIONS,
  numLayers: STACK_MODEL_OPTIONS.numLayers,
  classToken: option.boolean(true),
  positionalEncoding: option.oneOf(['sinusoidal', 'learned', 'rotary', 'alibi', 'none'] as const, 'learned'),
} as const;

/** Checks the image options against each other and the positions against the width (shared by both vision models). */
export function checkImageOptions(module: string, config: { imageSize: [number, number]; patchSize: number; dModel: number; positionalEncoding: PositionalEncodingKind }): void {
  const { imageSize: [height, width], patchSize, dModel, positionalEncoding } = config;
  if (height % patchSize !== 0 || width % patchSize !== 0) {
    throw new MieConfigError(errorMessage(module, 'option "imageSize"', `must be a multiple of patchSize (${patchSize}) on both sides`, `[${height}, ${width}]`));
  }
  if (positionalEncoding === 'sinusoidal' && dModel % 4 !== 0) {
    throw new MieConfigError(errorMessage(module, 'option "dModel"', "must be divisible by 4 for 2-D sinusoidal positions (positionalEncoding 'sinusoidal')", dModel));
  }
}

/** Checks and completes the options. */
function resolveVisionOptions(options: VisionTransformerEncoderOptions): VisionTransformerEncoderConfig {
  const config = resolveOptions(NAME, options, OPTIONS);
  checkImageOptions(NAME, config);
  checkHeads(NAME, { ...config, attentionPositions: attentionPositions(config.positionalEncoding) });
  const { imageSize: [height, width], patchSize, classToken, dModel, positionalEncoding } = config;
  // The 2-D table is computed, not loaded: a config's imageSize alone must not exhaust the memory.
  const length = (height / patchSize) * (width / patchSize) + (classToken ? 1 : 0);
  if (positionalEncoding === 'sinusoidal') checkAllocation(NAME, `the 2-D sinusoidal table [${length}, ${dModel}]`, 2 * float32Bytes(length, dModel));
  return config;
}

/**
 * The fixed 2-D sine-cosine positions of a `rows x columns` patch grid (MAE, He et al. 2021;
 * Beyer et al. 2022), `[rows * columns, dModel]` in row-major order: the first half of the
 * dimensions encodes the patch's row `r`, the second half its column `c`, each with the 1-D
 * table of `PositionalEncoding` at width `h = dModel / 2`:
 *
 *   PE[(r, c), 2i]         = sin(r / 10000^(2i/h)),   PE[(r, c), 2i + 1]     = cos(r / 10000^(2i/h)),
 *   PE[(r, c), h + 2i]     = sin(c / 10000^(2i/h)),   PE[(r, c), h + 2i + 1] = cos(c / 10000^(2i/h)),
 *
 * for `0 <= 2i < h`; `dModel` must be divisible by 4. Computed in float64, rounded once.
 */
export function sinusoidalEncodings2d(rows: number, columns: number, dModel: number): tf.Tensor2D {
  if (dModel % 4 !== 0) throw new MieConfigError(errorMessage('sinusoidalEncodings2d', 'dModel', 'must be divisible by 4', dModel));
  const half = dModel / 2;
  const values = new Float32Array(rows * columns * dModel);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const at = (r * columns + c) * dModel;
      for (let column = 0; column < half; column += 2) {
        const frequency = 10000 ** (-column / half);
        values[at + column] = Math.sin(r * frequency);
        values[at + column + 1] = Math.cos(r * frequency);
        values[at + half + column] = Math.sin(c * frequency);
        values[at + half + column + 1] = Math.cos(c * frequency);
      }
    }
  }
  return tf.tensor2d(values, [rows * columns, dModel], 'float32');
}

/**
 * The Vision Transformer encoder (Dosovitskiy et al. 2020), the design's encoder over images:
 *
 *   x = patchEmbedding(images)              [b, H, W, c] -> [b, n, d]  (an nn.Conv2d, kernel = stride = patchSize)
 *   x = [classToken; x]                     (with classToken) -> [b, n + 1, d]
 *   x = dropout(x + PE)                     (learned or 2-D sinusoidal; rotary and ALiBi act inside attention)
 *   x = layers.N(x)                         (TransformerEncoderLayer, post- or pre-norm)
 *   x = norm(x)                             (pre-norm only)
 *
 * `forward(images [b, H, W, c] float32)` -> `[b, s, dModel]`. State: `patchEmbedding.proj.{weight,
 * bias}` (`[d, c, p, p]`, `[d]`), `classToken [1, 1, d]`, `positionalEncoding.weight [s, d]`
 * (learned only), `layers.N`, `norm` (pre-norm only): in PyTorch, an `nn.Conv2d`, a `Parameter`,
 * an `nn.Embedding`'s weight, `nn.TransformerEncoderLayer`s and an `nn.LayerNorm`
 * (`loadTorchStateDict` maps `patch_embedding.proj.*`, `class_token`, `positional_encoding.weight`).
 */
export class VisionTransformerEncoder extends BaseModel<VisionTransformerEncoderConfig> {
  static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithAttention: OUTPUT_FIELD };
  readonly config: VisionTransformerEncoderConfig;
  readonly patchEmbedding: PatchEmbedding;
  /** `[1, 1, dModel]`, or null without a class token. */
  readonly classToken: tf.Variable | null;
  /** The learned positions (with the first dropout), or null. */
  readonly positionalEncoding: PositionalEncoding | null;
  /** The 2-D sinusoidal table `[s, dModel]` (zeros for the class token), not state; or null. */
  readonly positionTable: tf.Tensor2D | null;
  readonly layers: TransformerEncoderLayer[];
  readonly norm: LayerNorm | null;

  constructor(options: VisionTransformerEncoderOptions) {
    super();
    this.config = resolveVisionOptions(options);
    const { imageSize, patchSize, numChannels, dModel, numLayers, dropout: rate, classToken, positionalEncoding, normFirst, layerNormEps } = this.config;
    this.patchEmbedding = new PatchEmbedding({ imageSize, patchSize, numChannels, dModel });
    // ViT starts its class token near zero (timm: N(0, 1e-6^2)); here N(0, 0.02^2), as the learned positions.
    this.classToken = classToken ? parameter([1, 1, dModel], (shape) => normal(shape, 0.02)) : null;
    const length = this.sequenceLength;
    this.positionalEncoding = positionalEncoding === 'learned' ? new PositionalEncoding({ dModel, maxSeqLength: length, dropout: rate, encodingType: 'learned' }) : null;
    const [rows, columns] = this.patchEmbedding.gridSize;
    this.positionTable =
      positionalEncoding === 'sinusoidal'
        ? buffer([length, dModel], () => {
            const table = sinusoidalEncodings2d(rows, columns, dModel);
            return classToken ? tf.concat([tf.zeros([1, dModel]), table], 0) : table; // the class token has no position
          })
        : null;
    this.layers = Array.from({ length: numLayers }, () => new TransformerEncoderLayer(layerOptions({ ...this.config, maxSeqLength: length })));
    this.norm = normFirst ? new LayerNorm({ normalizedShape: dModel, eps: layerNormEps }) : null;
  }

  /** Patches per image. */
  get numPatches(): number {
    const { imageSize: [height, width], patchSize } = this.config;
    return (height / patchSize) * (width / patchSize);
  }

  /** Length of the output sequence: the patches, and the class token when there is one. */
  get sequenceLength(): number {
    return this.numPatches + (this.config.classToken ? 1 : 0);
  }

  /** `[b, H, W, c]` -> `[b, s, dModel]`. */
  forward(images: tf.Tensor, options?: VisionTransformerEncoderCallOptions): tf.Tensor {
    const { output, selfAttention } = this.forwardWithAttention(images, options);
    tf.dispose(selfAttention);
    return output;
  }

  /** `forward`, also returning every layer's self-attention weights `[b, heads, s, s]`. */
  forwardWithAttention(images: tf.Tensor, callOptions?: VisionTransformerEncoderCallOptions): VisionEncoderOutput {
    checkCallOptions(`${NAME}.forward`, callOptions, []);
    checkImages(NAME, images, this.config);
    const { numHeads, dModel, dFf, numLayers, dropout: rate } = this.config;
    const batch = images.shape[0];
    const length = this.sequenceLength;
    // Per layer: the attention scores (a few live copies), the feed-forward hidden and the
    // residual stream; a training step keeps every layer's for the backward pass.
    const perLayer = 4 * float32Bytes(batch, numHeads, length, length) + 2 * float32Bytes(batch, length, dFf) + 8 * float32Bytes(batch, length, dModel);
    checkAllocation(NAME, `a forward of images [${images.shape.join(', ')}]`, this.training ? numLayers * perLayer : perLayer);
    return tf.tidy(() => {
      let x = this.patchEmbedding.forward(images); // [b, H, W, c] -> [b, n, d]
      if (this.classToken) x = tf.concat([tf.tile(this.classToken, [batch, 1, 1]), x], 1); // -> [b, n + 1, d]
      if (this.positionalEncoding) x = this.positionalEncoding.forward(x);
      else x = dropout(this.positionTable ? tf.add(x, this.positionTable) : x, rate, this.training); // [b, s, d] + [s, d]
      const selfAttention: tf.Tensor[] = [];
      for (const layer of this.layers) {
        const result = layer.forwardWithAttention(x);
        x = result.output;
        selfAttention.push(result.selfAttention);
      }
      return { output: this.norm ? this.norm.forward(x) : x, selfAttention };
    });
  }
}
// Named explicitly: bundlers rename classes and minifiers mangle them.
registerModel(VisionTransformerEncoder, 'VisionTransformerEncoder');
