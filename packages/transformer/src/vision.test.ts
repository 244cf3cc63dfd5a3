import * as path from 'node:path';
import { MieConfigError, MieShapeError, setBackend, setSeed, tf, type BackendChoice } from '@mie/core';
import { KeyValueCache } from '@mie/attention';
import { PatchEmbedding } from '@mie/embeddings';
import { fixtureCases, loadCase, maxAbsDifference } from './__tests__/fixtures';
import { ImageToSequenceTransformer, type ImageToSequenceTransformerOptions } from './image-to-sequence-transformer';
import { exportTorchStateDict, loadTorchStateDict } from './torch-state-dict';
import { VisionTransformerEncoder, sinusoidalEncodings2d, type VisionTransformerEncoderOptions } from './vision-transformer-encoder';

// References from scripts/fixtures/vision.py: nn.Conv2d, nn.TransformerEncoderLayer and
// nn.TransformerDecoderLayer in float64, with their PyTorch state dicts.
const FILE = path.join(__dirname, '../fixtures/vision.safetensors');
interface VisionCase {
  kind: 'PatchEmbedding' | 'VisionTransformerEncoder' | 'ImageToSequenceTransformer';
  options: Record<string, unknown>;
  torchKeys: string[];
  parameterCount: number;
}
const cases = fixtureCases<VisionCase>(FILE);
const TOLERANCE = 1e-5;

function build(spec: VisionCase): PatchEmbedding | VisionTransformerEncoder | ImageToSequenceTransformer {
  if (spec.kind === 'PatchEmbedding') return new PatchEmbedding(spec.options as unknown as ConstructorParameters<typeof PatchEmbedding>[0]);
  if (spec.kind === 'VisionTransformerEncoder') return new VisionTransformerEncoder(spec.options as unknown as VisionTransformerEncoderOptions);
  return new ImageToSequenceTransformer(spec.options as unknown as ImageToSequenceTransformerOptions);
}

describe.each<BackendChoice>(['cpu', 'wasm'])('vision models match PyTorch on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each(Object.keys(cases))('%s within 1e-5', (name) => {
    const before = tf.memory().numTensors;
    const spec = cases[name];
    const { state, tensors } = loadCase(name, FILE);
    const module = build(spec);
    module.eval();
    try {
      loadTorchStateDict(module, state);
      if (module instanceof ImageToSequenceTransformer) {
        const out = module.forward(tensors.images, tensors.tgt, { returnAttention: true });
        expect(maxAbsDifference(out.logits, tensors.logits)).toBeLessThan(TOLERANCE);
        out.crossAttention.forEach((weights, i) => expect(maxAbsDifference(weights, tensors[`crossAttention.${i}`])).toBeLessThan(TOLERANCE));
        tf.dispose([out.logits, ...out.encoderSelfAttention, ...out.decoderSelfAttention, ...out.crossAttention]);
      } else {
        const output = module.forward(tensors.images);
        expect(maxAbsDifference(output, tensors.output)).toBeLessThan(TOLERANCE);
        output.dispose();
      }
    } finally {
      module.dispose();
      tf.dispose([...Object.values(state), ...Object.values(tensors)]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('vision models: PyTorch names, options and errors', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each(Object.keys(cases))('%s exports exactly the PyTorch state_dict keys, in order, and its parameter count', (name) => {
    const spec = cases[name];
    const module = build(spec);
    const exported = exportTorchStateDict(module);
    expect(Object.keys(exported)).toEqual(spec.torchKeys);
    expect(module.countParameters()).toBe(spec.parameterCount);
    tf.dispose(Object.values(exported));
    module.dispose();
  });

  it('PatchEmbedding orders patches row-major and refuses bad images by name', () => {
    setSeed(1);
    const patches = new PatchEmbedding({ imageSize: [4, 6], patchSize: 2, numChannels: 1, dModel: 1 });
    // A filter that sums the patch: then each output is its patch's sum.
    patches.proj.weight.assign(tf.ones([1, 1, 2, 2]));
    patches.proj.bias.assign(tf.zeros([1]));
    const image = tf.tensor4d(Array.from({ length: 24 }, (_, i) => i), [1, 4, 6, 1]);
    const out = patches.forward(image);
    // Patch (r, c) covers rows 2r, 2r+1 and columns 2c, 2c+1 of the 4 x 6 image.
    expect(Array.from(out.dataSync())).toEqual([14, 22, 30, 62, 70, 78]);
    expect(patches.numPatches).toBe(6);
    expect(patches.gridSize).toEqual([2, 3]);
    tf.dispose([image, out]);
    const bad: Array<[tf.Tensor, RegExp]> = [
      [tf.zeros([4, 6, 1]), /^PatchEmbedding: images must be a live float32 tensor of images \[batch, height = 4, width = 6, channels = 1\].*rank 3/],
      [tf.zeros([1, 4, 6, 3]), /it has 3 channels, not numChannels = 1/],
      [tf.zeros([1, 4, 5, 1]), /4 x 5 is not a multiple of patchSize = 2/],
      [tf.zeros([1, 6, 6, 1]), /6 x 6 differs from imageSize \[4, 6\]/],
      [tf.zeros([1, 4, 6, 1], 'int32'), /convert with tf.cast/],
    ];
    for (const [images, message] of bad) {
      expect(() => patches.forward(images)).toThrow(MieShapeError);
      expect(() => patches.forward(images)).toThrow(message);
      images.dispose();
    }
    expect(() => new PatchEmbedding({ imageSize: [28, 140], patchSize: 8, numChannels: 1, dModel: 4 })).toThrow(
      /PatchEmbedding: option "imageSize" must be a multiple of patchSize \(8\) on both sides/,
    );
    expect(() => new PatchEmbedding({ imageSize: [28] as unknown as [number, number], patchSize: 7, dModel: 4 })).toThrow(MieConfigError);
    patches.dispose();
  });

  it('the 2-D sinusoidal table: the row in the first half, the column in the second', () => {
    const table = sinusoidalEncodings2d(2, 3, 8);
    const values = table.arraySync();
    // Patch (1, 2) is row 5: sin/cos of 1 at frequencies 1 and 1/100 (h = 4), then of 2.
    expect(values[5][0]).toBeCloseTo(Math.sin(1), 6);
    expect(values[5][1]).toBeCloseTo(Math.cos(1), 6);
    expect(values[5][2]).toBeCloseTo(Math.sin(1 / 100), 6);
    expect(values[5][4]).toBeCloseTo(Math.sin(2), 6);
    expect(values[5][7]).toBeCloseTo(Math.cos(2 / 100), 6);
    table.dispose();
    expect(() => new VisionTransformerEncoder({ imageSize: [8, 8], patchSize: 4, dModel: 6, numHeads: 2, positionalEncoding: 'sinusoidal' })).toThrow(
      /VisionTransformerEncoder: option "dModel" must be divisible by 4 for 2-D sinusoidal positions/,
    );
  });

  it('ImageToSequenceTransformer names its arguments in errors', () => {
    const model = new ImageToSequenceTransformer({ imageSize: [8, 8], patchSize: 4, numChannels: 1, vocabSize: 5, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, maxSeqLength: 8 });
    const images = tf.zeros([2, 8, 8, 1]);
    const tgt = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    expect(() => model.forward(images, tgt)).toThrow(/ImageToSequenceTransformer: tgt must have the batch size of images \(2\)/);
    expect(() => model.forward(tf.zeros([2, 8, 8]), tgt)).toThrow(/ImageToSequenceTransformer: images must be a live float32 tensor/);
    expect(() => new ImageToSequenceTransformer({ imageSize: [8, 8], patchSize: 4, vocabSize: 5, eosTokenId: 5 })).toThrow(/option "eosTokenId" must be null or a token id in \[0, 5\)/);
    tf.dispose([images, tgt]);
    model.dispose();
  });
});

describe.each<BackendChoice>(['cpu', 'wasm'])('ImageToSequenceTransformer decoding on %s', (backend) => {
  let model: ImageToSequenceTransformer;
  let images: tf.Tensor;

  beforeAll(async () => {
    await setBackend(backend);
    setSeed(5);
    model = new ImageToSequenceTransformer({
      imageSize: [8, 12], patchSize: 4, numChannels: 1, vocabSize: 9, dModel: 16, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 2,
      dFf: 32, dropout: 0, maxSeqLength: 8, normFirst: true, padTokenId: 0, bosTokenId: 1, eosTokenId: 2,
    }).eval();
    images = tf.randomUniform([3, 8, 12, 1], 0, 1, 'float32', 3);
  });
  afterAll(() => {
    model.dispose();
    images.dispose();
  });

  it('cached step-by-step decoding equals one full pass, step for step', () => {
    const before = tf.memory().numTensors;
    const tokens = [1, 5, 3, 7, 4, 6];
    const tgt = tf.tensor2d([tokens, tokens, tokens], [3, tokens.length], 'int32');
    const full = model.forward(images, tgt); // [3, 6, V]
    const memory = model.encode(images);
    const memoryKeyValues = model.decoder.projectMemory(memory);
    const caches = model.decoder.layers.map(() => new KeyValueCache());
    const steps: tf.Tensor[] = [];
    for (let t = 0; t < tokens.length; t++) {
      const ids = tf.tensor2d([[tokens[t]], [tokens[t]], [tokens[t]]], [3, 1], 'int32');
      steps.push(model.decode(ids, memory, { caches, memoryKeyValues }));
      ids.dispose();
    }
    const stepped = tf.concat(steps, 1);
    expect(maxAbsDifference(stepped, full)).toBeLessThan(1e-5);
    tf.dispose([tgt, full, memory, stepped, ...steps, ...memoryKeyValues.flatMap(({ keys, values }) => [keys, values])]);
    for (const cache of caches) cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('generate: greedy and beam search give the same sequences with and without caches, and leak nothing', async () => {
    const before = tf.memory().numTensors;
    for (const options of [{ maxNewTokens: 6 }, { maxNewTokens: 6, numBeams: 3 }]) {
      const cached = await model.generate(images, options);
      const uncached = await model.generate(images, { ...options, useCache: false });
      expect(cached.sequences).toEqual(uncached.sequences);
      cached.scores.forEach((score, i) => expect(score).toBeCloseTo(uncached.scores[i], 4));
      expect(cached.sequences).toHaveLength(3);
    }
    const streamed: number[][] = [[], [], []];
    for await (const step of model.generateStream(images, { maxNewTokens: 6 })) {
      step.tokens.forEach((token, row) => {
        if (token !== null) streamed[row].push(token);
      });
    }
    expect(streamed).toEqual((await model.generate(images, { maxNewTokens: 6 })).sequences);
    const small = tf.zeros([1, 8, 8, 1]);
    await expect(model.generate(small)).rejects.toThrow(/ImageToSequenceTransformer.generate: images .*8 x 8 differs from imageSize \[8, 12\]/);
    const mask = tf.ones([3, 8]);
    await expect(model.generate(images, { srcKeyPaddingMask: mask })).rejects.toThrow(/does not apply: images have no padding/);
    tf.dispose([small, mask]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('greedy generation picks the argmax of the full pass at every step', async () => {
    const { sequences } = await model.generate(images, { maxNewTokens: 5, eosTokenId: null });
    for (const [row, sequence] of sequences.entries()) {
      const ids = tf.tensor2d([[1, ...sequence.slice(0, -1)]], [1, sequence.length], 'int32');
      const image = tf.slice(images, [row, 0, 0, 0], [1, -1, -1, -1]);
      const mask = tf.ones([1, sequence.length]);
      const logits = model.forward(image, ids, { tgtKeyPaddingMask: mask });
      const argmax = tf.argMax(logits, -1);
      expect(Array.from(argmax.dataSync())).toEqual(sequence);
      tf.dispose([ids, image, mask, logits, argmax]);
    }
  });
});

describe('forward hooks in the vision models', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('fire on every module of an ImageToSequenceTransformer, in forward and in cached generation', async () => {
    setSeed(8);
    const model = new ImageToSequenceTransformer({
      imageSize: [8, 8], patchSize: 4, numChannels: 1, vocabSize: 6, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1,
      dFf: 16, dropout: 0, maxSeqLength: 8, classToken: true, bosTokenId: 1, eosTokenId: 2,
    }).eval();
    const counts = new Map<string, number>();
    const removers = model.namedModules().map(([name, module]) => {
      counts.set(name, 0);
      return module.registerForwardHook(() => void counts.set(name, (counts.get(name) ?? 0) + 1));
    });
    const images = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 1);
    const tgt = tf.tensor2d([[1, 3, 4], [1, 5, 2]], [2, 3], 'int32');
    tf.dispose(model.forward(images, tgt));
    expect([...counts].filter(([, n]) => n === 0).map(([name]) => name)).toEqual([]);
    expect(counts.get('')).toBe(1);
    expect(counts.get('encoder.patchEmbedding.proj')).toBe(1);
    for (const name of counts.keys()) counts.set(name, 0);
    await model.generate(images, { maxNewTokens: 3, eosTokenId: null });
    // One encoding, three cached decoder steps.
    expect(counts.get('encoder')).toBe(1);
    expect(counts.get('encoder.patchEmbedding')).toBe(1);
    expect(counts.get('decoder.layers.0.selfAttn')).toBe(3);
    expect(counts.get('')).toBe(4); // encode once, decode three times
    removers.forEach((remove) => remove());
    tf.dispose([images, tgt]);
    model.dispose();
  });
});

describe('vision models refuse what would not fit', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('a 2-D sinusoidal table larger than memory is a MieResourceError before anything is computed', () => {
    const before = tf.memory().numTensors;
    expect(() => new VisionTransformerEncoder({ imageSize: [1_000_000, 1_000_000], patchSize: 2, dModel: 8, numHeads: 2, numLayers: 1, dFf: 8, positionalEncoding: 'sinusoidal' })).toThrow(
      /VisionTransformerEncoder: the 2-D sinusoidal table \[250000000001, 8\] needs/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
