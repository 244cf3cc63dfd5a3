/**
 * Patch embedding of the Vision Transformer (Dosovitskiy et al. 2020, "An Image is Worth 16x16
 * Words", section 3.1): the image is cut into non-overlapping `p x p` patches, each flattened and
 * projected to `dModel`, in row-major patch order. The projection is PyTorch's
 * `nn.Conv2d(numChannels, dModel, kernel_size=p, stride=p)` (Hugging Face ViT's
 * `patch_embeddings.projection`), computed as one matrix product over the extracted patches.
 *
 * Legend: b batch, H/W image height/width, c channels, p patch size, gh/gw patch rows/columns
 * (H/p, W/p), n patches (gh * gw), d dModel.
 */
import {
  MieConfigError,
  MieShapeError,
  Module,
  checkAllocation,
  checkOptions,
  checkPositiveInteger,
  describeValue,
  errorMessage,
  float32Bytes,
  parameter,
  tf,
  uniform,
} from '@mie/core';

const MODULE = 'PatchEmbedding';

/** Constructor options of {@link PatchEmbedding}. */
export interface PatchEmbeddingOptions {
  /** `[height, width]` of the input images in pixels; both multiples of `patchSize`. Required. */
  imageSize: readonly [number, number] | number[];
  /** Side of the square patches in pixels. Required. */
  patchSize: number;
  /** Channels of the images (1 for grey, 3 for RGB). Default 3. */
  numChannels?: number;
  /** Width of each patch vector. Required. */
  dModel: number;
}

/** The resolved options of a {@link PatchEmbedding}. */
export interface PatchEmbeddingConfig {
  readonly imageSize: [number, number];
  readonly patchSize: number;
  readonly numChannels: number;
  readonly dModel: number;
}

/** Resolves and checks the options (a `MieConfigError` naming the option otherwise). */
function resolveConfig(options: PatchEmbeddingOptions): PatchEmbeddingConfig {
  const { imageSize, patchSize, numChannels = 3, dModel } = checkOptions(MODULE, options, ['imageSize', 'patchSize', 'numChannels', 'dModel']);
  if (!Array.isArray(imageSize) || imageSize.length !== 2 || !imageSize.every((side) => Number.isSafeInteger(side) && side > 0)) {
    throw new MieConfigError(errorMessage(MODULE, 'option "imageSize"', 'must be [height, width], two positive integers', imageSize));
  }
  checkPositiveInteger(MODULE, 'patchSize', patchSize);
  checkPositiveInteger(MODULE, 'numChannels', numChannels);
  checkPositiveInteger(MODULE, 'dModel', dModel);
  const [height, width] = imageSize as [number, number];
  if (height % patchSize !== 0 || width % patchSize !== 0) {
    throw new MieConfigError(errorMessage(MODULE, 'option "imageSize"', `must be a multiple of patchSize (${patchSize}) on both sides`, `[${height}, ${width}]`));
  }
  return Object.freeze({ imageSize: [height, width] as [number, number], patchSize, numChannels, dModel });
}

/**
 * The patch projection: PyTorch's `nn.Conv2d(c, d, kernel_size=p, stride=p)` on NHWC images.
 * `weight [d, c, p, p]` and `bias [d]` in PyTorch's layout, initialised as PyTorch does (uniform
 * in `+-1/sqrt(c p p)`). `forward(images [b, H, W, c])` -> `[b, gh, gw, d]` (tfjs's NHWC output).
 */
export class PatchProjection extends Module {
  readonly config: { readonly numChannels: number; readonly dModel: number; readonly patchSize: number };
  /** `[dModel, numChannels, patchSize, patchSize]`, as `nn.Conv2d.weight`. */
  weight: tf.Variable;
  /** `[dModel]`. */
  bias: tf.Variable;

  constructor(options: { numChannels: number; dModel: number; patchSize: number }) {
    super();
    const { numChannels, dModel, patchSize } = checkOptions('PatchProjection', options, ['numChannels', 'dModel', 'patchSize']);
    for (const [name, value] of [['numChannels', numChannels], ['dModel', dModel], ['patchSize', patchSize]] as const) checkPositiveInteger('PatchProjection', name, value);
    this.config = Object.freeze({ numChannels, dModel, patchSize });
    // nn.Conv2d.reset_parameters: kaiming_uniform_(a=sqrt(5)) is uniform(+-1/sqrt(fanIn)), and so is the bias.
    const bound = 1 / Math.sqrt(numChannels * patchSize * patchSize);
    this.weight = parameter([dModel, numChannels, patchSize, patchSize], (shape) => uniform(shape, bound));
    this.bias = parameter([dModel], (shape) => uniform(shape, bound));
  }

  /** `images [b, H, W, c]` (H, W multiples of p) -> `[b, H/p, W/p, d]`. */
  forward(images: tf.Tensor): tf.Tensor {
    const { numChannels: c, dModel: d, patchSize: p } = this.config;
    const [b, height, width] = images.shape as [number, number, number, number];
    const gh = height / p;
    const gw = width / p;
    return tf.tidy(() => {
      // Patch extraction without a rank-6 transpose: a row of patches is [p, gw, p*c].
      const rows = tf.reshape(images, [b * gh, p, gw, p * c]); // [b, H, W, c] -> [b*gh, p, gw, p*c]
      const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [b * gh * gw, p * p * c]); // -> [b*gh, gw, p, p*c] -> [b*n, p*p*c]
      // The filter in the patches' (row, column, channel) order: [d, c, p, p] -> [d, p, p, c] -> [d, p*p*c].
      const filter = c === 1 ? tf.reshape(this.weight, [d, p * p]) : tf.reshape(tf.transpose(this.weight, [0, 2, 3, 1]), [d, p * p * c]);
      const projected = tf.add(tf.matMul(patches, filter, false, true), this.bias); // [b*n, p*p*c] x [d, p*p*c]^T -> [b*n, d]
      return tf.reshape(projected, [b, gh, gw, d]); // [b*n, d] -> [b, gh, gw, d]
    });
  }
}

/**
 * Patch embedding (Dosovitskiy et al. 2020): `forward(images [b, H, W, c])` -> `[b, n, dModel]`,
 * patch `i * gw + j` being the patch at row `i`, column `j` (row-major, as
 * `conv(x).flatten(2).transpose(1, 2)` orders them in PyTorch).
 *
 * State: `proj.weight [dModel, numChannels, patchSize, patchSize]` and `proj.bias [dModel]`,
 * exactly `nn.Conv2d(numChannels, dModel, patchSize, stride=patchSize)`'s, so PyTorch (and
 * Hugging Face ViT) weights load and export unchanged.
 *
 * ```ts
 * const patches = new PatchEmbedding({ imageSize: [28, 140], patchSize: 7, numChannels: 1, dModel: 64 });
 * const x = patches.forward(tf.zeros([2, 28, 140, 1])); // [2, 80, 64]
 * ```
 */
export class PatchEmbedding extends Module {
  /** The resolved options: `new PatchEmbedding(e.config)` rebuilds the same module. */
  readonly config: PatchEmbeddingConfig;
  /** The projection (an `nn.Conv2d` with kernel and stride `patchSize`). */
  readonly proj: PatchProjection;

  constructor(options: PatchEmbeddingOptions) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new MieConfigError(errorMessage(MODULE, 'options', 'must be an object { imageSize, patchSize, numChannels?, dModel }', options));
    }
    this.config = resolveConfig(options);
    const { numChannels, dModel, patchSize } = this.config;
    this.proj = new PatchProjection({ numChannels, dModel, patchSize });
  }

  /** Patches per image: `(height / patchSize) * (width / patchSize)`. */
  get numPatches(): number {
    const { imageSize: [height, width], patchSize } = this.config;
    return (height / patchSize) * (width / patchSize);
  }

  /** The patch grid `[rows, columns]`. */
  get gridSize(): [number, number] {
    const { imageSize: [height, width], patchSize } = this.config;
    return [height / patchSize, width / patchSize];
  }

  /**
   * `images` float32 `[batch, height, width, channels]` (NHWC, of `imageSize` and `numChannels`)
   * -> `[batch, numPatches, dModel]`. Anything else is a `MieShapeError` naming `images`.
   */
  forward(images: tf.Tensor): tf.Tensor {
    checkImages(MODULE, images, this.config);
    const [batch] = images.shape;
    const { dModel } = this.config;
    // The extracted patches (a copy of the images) and the projected patches.
    checkAllocation(MODULE, `patches [${batch}, ${this.numPatches}, ${dModel}]`, 2 * float32Bytes(images.size) + 2 * float32Bytes(batch, this.numPatches, dModel));
    return tf.tidy(() => tf.reshape(this.proj.forward(images), [batch, this.numPatches, dModel])); // [b, gh, gw, d] -> [b, n, d]
  }
}

/**
 * Throws a `MieShapeError` naming `module` and `images` unless `images` is a live float32
 * `[batch >= 1, height, width, channels]` tensor of the configured size and channels.
 */
export function checkImages(module: string, images: unknown, config: Pick<PatchEmbeddingConfig, 'imageSize' | 'numChannels' | 'patchSize'>): asserts images is tf.Tensor4D {
  const { imageSize: [height, width], numChannels, patchSize } = config;
  const expected = `must be a live float32 tensor of images [batch, height = ${height}, width = ${width}, channels = ${numChannels}] (NHWC)`;
  if (!(images instanceof tf.Tensor) || images.isDisposed) throw new MieShapeError(errorMessage(module, 'images', expected, images));
  if (images.rank !== 4) throw new MieShapeError(`${module}: images ${expected}. Received: ${describeValue(images)} (rank ${images.rank}).`);
  if (images.dtype !== 'float32') throw new MieShapeError(`${module}: images ${expected}. Received: ${describeValue(images)} (convert with tf.cast(images, 'float32')).`);
  const [batch, h, w, c] = images.shape;
  if (batch < 1) throw new MieShapeError(`${module}: images ${expected}, with at least one image. Received: ${describeValue(images)}.`);
  if (c !== numChannels) throw new MieShapeError(`${module}: images ${expected}: it has ${c} channels, not numChannels = ${numChannels}. Received: ${describeValue(images)}.`);
  if (h % patchSize !== 0 || w % patchSize !== 0) {
    throw new MieShapeError(`${module}: images ${expected}: ${h} x ${w} is not a multiple of patchSize = ${patchSize}. Received: ${describeValue(images)}.`);
  }
  if (h !== height || w !== width) {
    throw new MieShapeError(`${module}: images ${expected}: ${h} x ${w} differs from imageSize [${height}, ${width}]. Received: ${describeValue(images)}.`);
  }
}
