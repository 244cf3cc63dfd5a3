/**
 * Grouped-query attention, rotary and ALiBi positions inside the stacks: they train (every
 * parameter gets a gradient) and cached decoding equals the full pass.
 */
import { MieConfigError, setBackend, setSeed, tf } from '@mie/core';
import { KeyValueCache } from '@mie/attention';
import { TransformerEncoder } from './transformer-encoder';
import { TransformerDecoder } from './transformer-decoder';
import { TransformerEncoderLayer } from './transformer-encoder-layer';
import type { TransformerStackOptions } from './stack-options';

beforeAll(async () => {
  await setBackend('cpu');
  setSeed(11);
});

const IDS = [
  [3, 4, 5, 6, 7, 8],
  [9, 2, 4, 4, 1, 3],
];

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

const VARIANTS: Array<[string, Partial<TransformerStackOptions>]> = [
  ['GQA (2 key/value heads) with rotary', { numKeyValueHeads: 2, positionalEncoding: 'rotary' }],
  ['ALiBi', { positionalEncoding: 'alibi' }],
  ['multi-query ALiBi, pre-norm', { numKeyValueHeads: 1, positionalEncoding: 'alibi', normFirst: true }],
  ["T5's relative position bias, GQA", { numKeyValueHeads: 2, positionalEncoding: 't5', normFirst: true }],
  ['rotary with linear scaling (position interpolation)', { positionalEncoding: 'rotary', rotaryScaling: { type: 'linear', factor: 4 } }],
  ['rotary with YaRN scaling', { positionalEncoding: 'rotary', rotaryScaling: { type: 'yarn', factor: 4, originalMaxSeqLength: 8 } }],
];

const stack = (extra: Partial<TransformerStackOptions>): TransformerStackOptions => ({
  vocabSize: 10,
  dModel: 16,
  numHeads: 4,
  numLayers: 2,
  dFf: 24,
  dropout: 0,
  maxSeqLength: 32,
  ...extra,
});

describe.each(VARIANTS)('TransformerEncoder, %s', (_label, extra) => {
  it('trains: every parameter gets a non-zero gradient', () => {
    const encoder = new TransformerEncoder(stack(extra));
    const ids = tf.tensor2d(IDS, [2, 6], 'int32');
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(encoder.forward(ids, { causal: true }))) as tf.Scalar, encoder.trainableParameters());
    const names = encoder.namedParameters().map(([name]) => name);
    const zero = encoder.namedParameters().filter(([, v]) => !(tf.max(tf.abs(grads[v.name])).dataSync()[0] > 0)).map(([name]) => name);
    expect(names.length).toBeGreaterThan(10);
    expect(zero).toEqual([]);
    tf.dispose([ids, value, ...Object.values(grads)]);
    encoder.dispose();
  });

  it('cached causal decoding, one token at a time, equals the full pass', () => {
    const encoder = new TransformerEncoder(stack(extra)).eval();
    const ids = tf.tensor2d(IDS, [2, 6], 'int32');
    const before = tf.memory().numTensors;
    const full = encoder.forward(ids, { causal: true });
    const caches = encoder.layers.map(() => new KeyValueCache());
    const steps: tf.Tensor[] = [];
    for (let t = 0; t < 6; t++) {
      const step = tf.slice(ids, [0, t], [2, 1]);
      steps.push(encoder.forward(step, { causal: true, caches }));
      step.dispose();
    }
    expect(caches[0].length).toBe(6);
    const cached = tf.concat(steps, 1);
    expect(maxDiff(cached, full)).toBeLessThan(1e-5);
    tf.dispose([full, cached, ...steps]);
    caches.forEach((cache) => cache.dispose());
    expect(tf.memory().numTensors).toBe(before);
    ids.dispose();
    encoder.dispose();
  });
});

describe.each(VARIANTS)('TransformerDecoder, %s', (_label, extra) => {
  it('cached decoding equals the full pass, with grouped cross-attention', () => {
    const decoder = new TransformerDecoder(stack(extra)).eval();
    expect(decoder.layers[0].crossAttn!.kProj.weight.shape[0]).toBe(4 * (extra.numKeyValueHeads ?? 4));
    const ids = tf.tensor2d(IDS, [2, 6], 'int32');
    const memory = tf.randomNormal([2, 5, 16]);
    const full = decoder.forward(ids, memory, { causal: true });
    const caches = decoder.layers.map(() => new KeyValueCache());
    const memoryKeyValues = decoder.projectMemory(memory);
    const steps: tf.Tensor[] = [];
    for (let t = 0; t < 6; t++) {
      const step = tf.slice(ids, [0, t], [2, 1]);
      steps.push(decoder.forward(step, memory, { causal: true, caches, memoryKeyValues }));
      step.dispose();
    }
    const cached = tf.concat(steps, 1);
    expect(maxDiff(cached, full)).toBeLessThan(1e-5);
    tf.dispose([ids, memory, full, cached, ...steps, ...memoryKeyValues.flatMap(({ keys, values }) => [keys, values])]);
    caches.forEach((cache) => cache.dispose());
    decoder.dispose();
  });
});

describe('dynamic (NTK-aware) rotary scaling in a stack', () => {
  const dynamic: Partial<TransformerStackOptions> = { positionalEncoding: 'rotary', rotaryScaling: { type: 'dynamic', factor: 2, originalMaxSeqLength: 4 } };

  it('trains, and its angles change once the sequence passes originalMaxSeqLength', () => {
    const encoder = new TransformerEncoder(stack(dynamic));
    expect(encoder.layers[0].selfAttn.rotary!.config.scaling).toEqual({ type: 'dynamic', factor: 2, originalMaxSeqLength: 4 });
    const ids = tf.tensor2d(IDS, [2, 6], 'int32');
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(encoder.forward(ids, { causal: true }))) as tf.Scalar, encoder.trainableParameters());
    expect(encoder.namedParameters().filter(([, v]) => !(tf.max(tf.abs(grads[v.name])).dataSync()[0] > 0))).toEqual([]);
    tf.dispose([value, ...Object.values(grads)]);
    // Within the original context, dynamic scaling changes nothing.
    const plain = new TransformerEncoder(stack({ positionalEncoding: 'rotary' }));
    plain.loadStateDict(encoder.stateDict());
    encoder.eval();
    plain.eval();
    const short = tf.slice(ids, [0, 0], [2, 4]);
    const [a, b] = [encoder.forward(short, { causal: true }), plain.forward(short, { causal: true })];
    expect(maxDiff(a, b)).toBeLessThan(1e-6);
    const [c, d] = [encoder.forward(ids, { causal: true }), plain.forward(ids, { causal: true })];
    expect(maxDiff(c, d)).toBeGreaterThan(1e-4);
    tf.dispose([ids, short, a, b, c, d]);
    encoder.dispose();
    plain.dispose();
  });

  it('refuses scaling without rotary positions, or a dynamic context that cannot grow', () => {
    expect(() => new TransformerEncoder(stack({ rotaryScaling: { type: 'linear', factor: 2 } }))).toThrow(/TransformerEncoder: option "rotaryScaling" needs rotary positions/);
    expect(() => new TransformerEncoder(stack({ positionalEncoding: 'rotary', rotaryScaling: { type: 'dynamic', factor: 2 } }))).toThrow(MieConfigError);
  });
});

describe('layer and stack options for the attention variants', () => {
  it('layers accept numKeyValueHeads and positionalEncoding, and name what is wrong', () => {
    const layer = new TransformerEncoderLayer({ dModel: 16, numHeads: 4, numKeyValueHeads: 2, positionalEncoding: 'alibi', dFf: 8 });
    expect(layer.selfAttn.config.positionalEncoding).toBe('alibi');
    expect(layer.selfAttn.vProj.weight.shape).toEqual([8, 16]);
    layer.dispose();
    expect(() => new TransformerEncoderLayer({ dModel: 16, numHeads: 4, numKeyValueHeads: 3 })).toThrow(/TransformerEncoderLayer: option "numKeyValueHeads" must divide numHeads \(4\)/);
    expect(() => new TransformerEncoderLayer({ dModel: 16, numHeads: 4, positionalEncoding: 'learned' as never })).toThrow(MieConfigError);
    expect(() => new TransformerEncoder(stack({ positionalEncoding: 'relative' as never }))).toThrow(/option "positionalEncoding" must be one of "sinusoidal", "learned", "rotary", "alibi", "t5", "none"/);
    const t5 = new TransformerEncoder(stack({ positionalEncoding: 't5' }));
    expect(t5.namedParameters().map(([name]) => name).filter((name) => name.includes('relative'))).toEqual(['relativePositionBias.weight']);
    expect(t5.relativePositionBias!.config.bidirectional).toBe(true);
    t5.dispose();
    expect(() => new TransformerEncoder(stack({ numHeads: 5 }))).toThrow(/option "dModel" must be divisible by numHeads \(5\)/);
  });
});
