/**
 * Configs that describe another (usually much bigger) model than the weights they come with, and
 * hostile JSON values anywhere in a checkpoint: every one is refused with a MieSerializationError
 * before anything is built, fast, with no tensor leaked, and the backend computes correctly
 * afterwards. (Before the layout check, `numEncoderLayers: 20000` built 152,795 tensors in 20 s
 * and left the wasm heap corrupt; with dModel 8 the walk of the modules overflowed the stack.)
 */
import { BaseModel, MieError, MieSerializationError, setBackend, setSeed, tf, writeSafetensors, type CheckpointBuffers } from '@mie/core';
import { FeedForwardNN, MultiLayerPerceptron } from '@mie/layers';
import { DecoderOnlyTransformer, EncoderDecoderTransformer, TransformerEncoder } from '@mie/transformer';
import { expectBackendHealthy, testBackend } from './helpers';

const TIME_LIMIT_MS = 2000;

beforeAll(async () => {
  await setBackend(testBackend());
  setSeed(11);
});

const encoder = new TextEncoder();
const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;

/** fromBuffers must refuse: typed, fast, no leak, healthy backend. Returns the message. */
function refused(buffers: CheckpointBuffers, message?: RegExp): string {
  const before = tf.memory().numTensors;
  const start = performance.now();
  let error: unknown;
  try {
    BaseModel.fromBuffers(buffers).dispose();
  } catch (e) {
    error = e;
  }
  const elapsed = performance.now() - start;
  if (!(error instanceof MieError)) throw new Error(`expected a MieError, got ${error === undefined ? 'a loaded model' : String(error)}`);
  expect(error).toBeInstanceOf(MieSerializationError);
  if (message) expect(error.message).toMatch(message);
  expect(error.message.length).toBeLessThan(2000);
  expect(elapsed).toBeLessThan(TIME_LIMIT_MS);
  expect(tf.memory().numTensors).toBe(before);
  expectBackendHealthy();
  return error.message;
}

function withConfig(buffers: CheckpointBuffers, edit: (config: Record<string, unknown>) => void): CheckpointBuffers {
  const header = decode(buffers.config);
  const config = { ...(header.config as Record<string, unknown>) };
  edit(config);
  return { config: encoder.encode(JSON.stringify({ ...header, config })), weights: buffers.weights };
}

describe.each([128, 8])('a saved dModel-%i seq2seq model with a config describing another model', (dModel) => {
  let good: CheckpointBuffers;
  beforeAll(() => {
    const model = new EncoderDecoderTransformer({ srcVocabSize: 30, tgtVocabSize: 40, dModel, numHeads: 4, numEncoderLayers: 2, numDecoderLayers: 2, dFf: 2 * dModel, maxSeqLength: 32, padTokenId: 0 });
    good = model.toBuffers();
    model.dispose();
  });

  const layerCounts: Array<[string, number]> = [
    ['numEncoderLayers', 20_000],
    ['numDecoderLayers', 20_000],
    ['numEncoderLayers', 3],
    ['numDecoderLayers', 1],
  ];
  it.each(layerCounts)('%s: %i is refused before the model is built', (field, value) => {
    refused(withConfig(good, (c) => (c[field] = value)), value > 100 ? /describes a bigger model than the weights hold/ : /do not match the config of EncoderDecoderTransformer: (missing|unexpected) keys/);
  });

  const sizes: Array<[string, unknown]> = [
    ['dFf', 60_000],
    ['dModel', dModel * 2],
    ['srcVocabSize', 65_000],
    ['tgtVocabSize', 31],
    ['numHeads', 2], // same shapes: loads (heads are not state); checked separately below
  ];
  it.each(sizes.slice(0, 4))('%s: %p is refused by the layout comparison', (field, value) => {
    refused(withConfig(good, (c) => (c[field] = value)), /do not match|bigger model|larger than any size/);
  });

  it('a head count that keeps every shape loads, as the same weights do in PyTorch', () => {
    // Configs state their key/value heads (numHeads by default): both change together.
    const model = BaseModel.fromBuffers(withConfig(good, (c) => ((c.numHeads = 2), (c.numKeyValueHeads = 2))));
    expect(model.countParameters()).toBeGreaterThan(0);
    model.dispose();
    expectBackendHealthy();
  });
});

describe('other layer-count fields and huge sizes', () => {
  it('a TransformerEncoder with numLayers 20000, an MLP with 100,000 hidden layers', () => {
    const stack = new TransformerEncoder({ vocabSize: 20, dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, maxSeqLength: 16 });
    refused(withConfig(stack.toBuffers(), (c) => (c.numLayers = 20_000)), /describes a bigger model/);
    stack.dispose();
    const lm = new DecoderOnlyTransformer({ vocabSize: 20, dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, maxSeqLength: 16 });
    refused(withConfig(lm.toBuffers(), (c) => (c.numLayers = 20_000)), /describes a bigger model/);
    refused(withConfig(lm.toBuffers(), (c) => (c.numKeyValueHeads = 1)), /do not match|bigger model|smaller model/);
    lm.dispose();
    const ffnn = new FeedForwardNN({ inputSize: 4, hiddenSizes: [8], outputSize: 2 });
    refused(withConfig(ffnn.toBuffers(), (c) => (c.hiddenSizes = Array.from({ length: 100_000 }, () => 8))), /describes a bigger model/);
    refused(withConfig(ffnn.toBuffers(), (c) => (c.hiddenSizes = [1e9])), /larger than any size/);
    ffnn.dispose();
    const mlp = new MultiLayerPerceptron({ inputDim: 4, hiddenDims: [8, 8], outputDim: 2 });
    refused(withConfig(mlp.toBuffers(), (c) => (c.hiddenDims = [8, 8, 8, 8, 8, 8, 8, 8])), /do not match|bigger model/);
    mlp.dispose();
  });
});

describe('hostile JSON values in every part of a checkpoint', () => {
  let good: CheckpointBuffers;
  beforeAll(() => {
    const model = new EncoderDecoderTransformer({ srcVocabSize: 11, tgtVocabSize: 11, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, maxSeqLength: 16 });
    good = model.toBuffers();
    model.dispose();
  });
  const hostileValues: unknown[] = [
    { constructor: { name: { toString: 1 } } },
    { toString: 1, valueOf: 2 },
    JSON.parse('{"__proto__": {"constructor": {"name": "Evil"}}, "constructor": 1}'),
    { shape: [1, 2], dtype: { toString: 1 } },
    [[[[[[[[{ constructor: { name: { toString: 1 } } }]]]]]]]],
    Array.from({ length: 10_000 }, () => ({ toString: 1 })),
  ];
  const headerFields = ['format', 'formatVersion', 'className', 'config', 'checkpointId', 'versions'];

  it.each(headerFields)('config.json field "%s" holding hostile objects', (field) => {
    for (const value of hostileValues) {
      const header = decode(good.config);
      const text = JSON.stringify({ ...header, [field]: value });
      refused({ config: encoder.encode(text), weights: good.weights });
    }
  });

  it('config fields holding hostile objects', () => {
    for (const key of ['dModel', 'numEncoderLayers', 'positionalEncoding', 'activation', 'padTokenId', 'dropout']) {
      for (const value of hostileValues) refused(withConfig(good, (c) => (c[key] = value)), /is invalid|must be/);
    }
  });

  it("hostile values in the weights' header: dtype, shape, offsets, __metadata__", () => {
    const headerLength = Number(new DataView(good.weights.buffer, good.weights.byteOffset).getBigUint64(0, true));
    const parsed = JSON.parse(new TextDecoder().decode(good.weights.subarray(8, 8 + headerLength))) as Record<string, Record<string, unknown>>;
    const body = good.weights.subarray(8 + headerLength);
    const firstTensor = Object.keys(parsed).find((k) => k !== '__metadata__')!;
    const rewrite = (edit: (h: Record<string, Record<string, unknown>>) => void): Uint8Array => {
      const copy = JSON.parse(JSON.stringify(parsed));
      edit(copy);
      const text = encoder.encode(JSON.stringify(copy));
      const out = new Uint8Array(8 + text.length + body.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      out.set(body, 8 + text.length);
      return out;
    };
    for (const value of hostileValues) {
      for (const field of ['dtype', 'shape', 'data_offsets']) {
        refused({ config: good.config, weights: rewrite((h) => (h[firstTensor][field] = value)) }, /readSafetensors/);
      }
      refused({ config: good.config, weights: rewrite((h) => (h.__metadata__ = value as Record<string, unknown>)) }, /readSafetensors|different checkpoints/);
      refused({ config: good.config, weights: rewrite((h) => (h.__metadata__['mie.config'] = value)) }, /readSafetensors/);
    }
  });

  it('a hostile config embedded in the weights', () => {
    const tensors = tf.tidy(() => ({ weight: tf.zeros([2]) }));
    for (const value of hostileValues) {
      const weights = writeSafetensors(tensors, { 'mie.checkpointId': 'other', 'mie.config': JSON.stringify({ format: 'mie', formatVersion: 1, className: value, config: value, checkpointId: 'other' }) });
      refused({ config: good.config, weights }, /config embedded in model\.safetensors/);
    }
    tf.dispose(Object.values(tensors));
  });
});
