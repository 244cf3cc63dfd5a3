/**
 * The one table of bad inputs to public modules: the tests run every row and docs/reliability.md
 * shows the same rows (a test checks that the doc's table is exactly `renderBadInputTable()`).
 */
import { tf, type Module } from '@mie/core';
import { FeedForwardBlock, FeedForwardClassifier, FeedForwardNN, LayerNorm, LinearLayer, MultiLayerPerceptron, RMSNorm } from '@mie/layers';
import { TokenEmbedding } from '@mie/embeddings';
import { PositionalEncoding, RotaryPositionEncoding } from '@mie/positional';
import { ALiBiAttention, GroupedQueryAttention, MultiHeadAttention, ScaledDotProductAttention, SimpleAttention } from '@mie/attention';
import { EncoderDecoderTransformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer } from '@mie/transformer';

export const D = 8;
export const f = (shape: number[], value = 0.5): tf.Tensor => tf.fill(shape, value, 'float32');
export const ids = (shape: number[], value = 1): tf.Tensor => tf.fill(shape, value, 'int32');

/** A public module, how to build a small one and valid arguments for its forward. */
export interface ModuleFixture {
  name: string;
  make: () => Module & { forward: (...args: never[]) => unknown };
  args: () => unknown[];
}

export const MODULES: ModuleFixture[] = [
  { name: 'LinearLayer', make: () => new LinearLayer({ inFeatures: D, outFeatures: 4 }), args: () => [f([2, 3, D])] },
  { name: 'LayerNorm', make: () => new LayerNorm({ normalizedShape: D }), args: () => [f([2, 3, D])] },
  { name: 'RMSNorm', make: () => new RMSNorm({ normalizedShape: D }), args: () => [f([2, 3, D])] },
  { name: 'FeedForwardBlock', make: () => new FeedForwardBlock({ inputDim: D }), args: () => [f([2, 3, D])] },
  { name: 'FeedForwardNN', make: () => new FeedForwardNN({ inputSize: D, hiddenSizes: [4], outputSize: 2 }), args: () => [f([2, D])] },
  { name: 'FeedForwardClassifier', make: () => new FeedForwardClassifier({ inputSize: D, hiddenSizes: [4], numClasses: 3 }), args: () => [f([2, D])] },
  { name: 'MultiLayerPerceptron', make: () => new MultiLayerPerceptron({ inputDim: D, hiddenDims: [4], outputDim: 2 }), args: () => [f([2, D])] },
  { name: 'TokenEmbedding', make: () => new TokenEmbedding({ vocabSize: 10, dModel: D }), args: () => [ids([2, 3])] },
  { name: 'PositionalEncoding', make: () => new PositionalEncoding({ dModel: D, maxSeqLength: 16 }), args: () => [f([2, 3, D])] },
  { name: 'RotaryPositionEncoding', make: () => new RotaryPositionEncoding({ headDim: 4, maxSeqLength: 16 }), args: () => [f([2, 3, 2, 4]), f([2, 3, 2, 4])] },
  { name: 'ScaledDotProductAttention', make: () => new ScaledDotProductAttention({}), args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D])] },
  { name: 'MultiHeadAttention', make: () => new MultiHeadAttention({ inputDim: D, numHeads: 2 }), args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D])] },
  { name: 'SimpleAttention', make: () => new SimpleAttention({ inputDim: D, attentionDim: 4 }), args: () => [f([2, 3, D])] },
  { name: 'GroupedQueryAttention', make: () => new GroupedQueryAttention({ dModel: D, numHeads: 2, numKeyValueHeads: 1 }), args: () => [f([2, 3, D])] },
  { name: 'ALiBiAttention', make: () => new ALiBiAttention({ hiddenSize: D, numHeads: 2 }), args: () => [f([2, 3, D])] },
  { name: 'TransformerEncoderLayer', make: () => new TransformerEncoderLayer({ dModel: D, numHeads: 2, dFf: 16 }), args: () => [f([2, 3, D])] },
  { name: 'TransformerDecoderLayer', make: () => new TransformerDecoderLayer({ dModel: D, numHeads: 2, dFf: 16 }), args: () => [f([2, 3, D]), f([2, 4, D])] },
  { name: 'TransformerEncoder', make: () => new TransformerEncoder({ vocabSize: 10, dModel: D, numHeads: 2, numLayers: 1, dFf: 16, maxSeqLength: 16 }), args: () => [ids([2, 3])] },
  {
    name: 'TransformerDecoder',
    make: () => new TransformerDecoder({ vocabSize: 10, dModel: D, numHeads: 2, numLayers: 1, dFf: 16, maxSeqLength: 16 }),
    args: () => [ids([2, 3]), f([2, 4, D])],
  },
  {
    name: 'EncoderDecoderTransformer',
    make: () => new EncoderDecoderTransformer({ srcVocabSize: 10, tgtVocabSize: 12, dModel: D, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, maxSeqLength: 16 }),
    args: () => [ids([2, 4]), ids([2, 3])],
  },
];

export const fixture = (name: string): ModuleFixture => {
  const found = MODULES.find((m) => m.name === name);
  if (!found) throw new Error(`no fixture ${name}`);
  return found;
};

/** What a row expects: a typed error naming a module and an argument, or a result of a given shape. */
export type Outcome =
  | { error: 'MieShapeError' | 'MieNumericalError' | 'MieConfigError'; names: string; argument: string; checkFinite?: boolean }
  | { returns: number[] };

export interface BadInputCase {
  module: string;
  /** The kind of bad input (the doc's second column). */
  kind: string;
  /** The call, as the doc shows it. */
  call: string;
  /** Arguments to forward. */
  args: () => unknown[];
  outcome: Outcome;
}

const shape = (names: string, argument: string): Outcome => ({ error: 'MieShapeError', names, argument });
const numeric = (names: string, argument: string): Outcome => ({ error: 'MieNumericalError', names, argument, checkFinite: true });
const option = (names: string, argument: string): Outcome => ({ error: 'MieConfigError', names, argument });

const FEATURE_MODULES: Array<[string, string, number[]]> = [
  ['LinearLayer', 'x', [2, 3, 4]],
  ['LayerNorm', 'x', [2, 3, D]],
  ['RMSNorm', 'x', [2, 3, D]],
  ['FeedForwardBlock', 'x', [2, 3, D]],
  ['FeedForwardNN', 'x', [2, 3, 2]],
  ['FeedForwardClassifier', 'x', [2, 3, 3]],
  ['MultiLayerPerceptron', 'x', [2, 3, 2]],
];

const cases: BadInputCase[] = [];
for (const [module, argument, out] of FEATURE_MODULES) {
  cases.push(
    { module, kind: 'wrong width', call: `forward(x [2, 3, ${D + 1}])`, args: () => [f([2, 3, D + 1])], outcome: shape(module, argument) },
    { module, kind: 'wrong rank', call: 'forward(x scalar)', args: () => [tf.scalar(1)], outcome: shape(module, argument) },
    { module, kind: 'wrong dtype', call: `forward(x int32 [2, 3, ${D}])`, args: () => [ids([2, 3, D])], outcome: shape(module, argument) },
    { module, kind: 'not a tensor', call: 'forward([[1, 2]])', args: () => [[[1, 2]]], outcome: shape(module, argument) },
    { module, kind: 'empty batch', call: `forward(x [0, 3, ${D}])`, args: () => [f([0, 3, D])], outcome: { returns: [0, ...out.slice(1)] } },
    { module, kind: 'NaN input', call: 'checkFinite: forward(x with NaN)', args: () => [f([2, 3, D], NaN)], outcome: numeric(module, 'argument "x"') },
  );
}

const SEQUENCE_MODULES: Array<[string, string, (x: tf.Tensor) => unknown[], number[]]> = [
  ['PositionalEncoding', 'x', (x) => [x], [2, 0, D]],
  ['SimpleAttention', 'x', (x) => [x], [2, 0, 4]],
  ['GroupedQueryAttention', 'x', (x) => [x], [2, 0, D]],
  ['ALiBiAttention', 'x', (x) => [x], [2, 0, D]],
  ['TransformerEncoderLayer', 'x', (x) => [x], [2, 0, D]],
  ['MultiHeadAttention', 'query', (x) => [x, f([2, 4, D]), f([2, 4, D])], [2, 0, D]],
];
for (const [module, argument, call, emptyOut] of SEQUENCE_MODULES) {
  const rest = module === 'MultiHeadAttention' ? ', key, value' : '';
  cases.push(
    { module, kind: 'wrong rank', call: `forward(x [2, ${D}]${rest})`, args: () => call(f([2, D])), outcome: shape(module, argument) },
    { module, kind: 'wrong width', call: `forward(x [2, 3, ${D + 1}]${rest})`, args: () => call(f([2, 3, D + 1])), outcome: shape(module, argument) },
    { module, kind: 'wrong dtype', call: `forward(x int32 [2, 3, ${D}]${rest})`, args: () => call(ids([2, 3, D])), outcome: shape(module, argument) },
    { module, kind: 'zero-length sequence', call: `forward(x [2, 0, ${D}]${rest})`, args: () => call(f([2, 0, D])), outcome: { returns: emptyOut } },
    { module, kind: 'empty batch', call: `forward(x [0, 3, ${D}]${rest.replace(/key, value/, 'key [0, 4], value [0, 4]')})`, args: () => (module === 'MultiHeadAttention' ? [f([0, 3, D]), f([0, 4, D]), f([0, 4, D])] : call(f([0, 3, D]))), outcome: { returns: [0, 3, emptyOut[2]] } },
    { module, kind: 'NaN input', call: `checkFinite: forward(x with Infinity${rest})`, args: () => call(f([2, 3, D], Infinity)), outcome: numeric(module, `argument "${argument}"`) },
  );
}
for (const module of ['GroupedQueryAttention', 'ALiBiAttention', 'TransformerEncoderLayer']) {
  cases.push(
    { module, kind: 'key padding mask of the wrong shape', call: `forward(x [2, 3, ${D}], { keyPaddingMask: [2, 5] })`, args: () => [f([2, 3, D]), { keyPaddingMask: ids([2, 5]) }], outcome: shape(module === 'TransformerEncoderLayer' ? 'MultiHeadAttention' : module, 'keyPaddingMask') },
    { module, kind: 'mask of the wrong shape', call: `forward(x [2, 3, ${D}], { mask: [4, 4] })`, args: () => [f([2, 3, D]), { mask: ids([4, 4]) }], outcome: shape(module === 'TransformerEncoderLayer' ? 'MultiHeadAttention' : module, 'mask') },
  );
}

cases.push(
  { module: 'MultiHeadAttention', kind: 'key and value lengths differ', call: `forward(q [2, 3, ${D}], k [2, 4, ${D}], v [2, 5, ${D}])`, args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 5, D])], outcome: shape('MultiHeadAttention', 'key and value') },
  { module: 'MultiHeadAttention', kind: 'batch sizes differ', call: `forward(q [2, 3, ${D}], k [3, 4, ${D}], v [3, 4, ${D}])`, args: () => [f([2, 3, D]), f([3, 4, D]), f([3, 4, D])], outcome: shape('MultiHeadAttention', 'batch size') },
  { module: 'MultiHeadAttention', kind: 'key padding mask of the wrong shape', call: 'forward(q, k, v, { keyPaddingMask: [2, 5] })', args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D]), { keyPaddingMask: ids([2, 5]) }], outcome: shape('MultiHeadAttention', 'keyPaddingMask') },
  { module: 'MultiHeadAttention', kind: 'mask of the wrong shape', call: 'forward(q, k, v, { mask: [3, 5] })', args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D]), { mask: ids([3, 5]) }], outcome: shape('MultiHeadAttention', 'mask') },
  { module: 'MultiHeadAttention', kind: 'mask not a tensor', call: 'forward(q, k, v, { mask: [[1]] })', args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D]), { mask: [[1]] }], outcome: shape('MultiHeadAttention', 'mask') },
  { module: 'ScaledDotProductAttention', kind: 'wrong dtype', call: `forward(q int32 [2, 3, ${D}], k, v)`, args: () => [ids([2, 3, D]), f([2, 4, D]), f([2, 4, D])], outcome: shape('ScaledDotProductAttention', 'query') },
  { module: 'ScaledDotProductAttention', kind: 'query and key widths differ', call: `forward(q [2, 3, ${D}], k [2, 4, ${D + 1}], v)`, args: () => [f([2, 3, D]), f([2, 4, D + 1]), f([2, 4, D])], outcome: shape('ScaledDotProductAttention', 'query and key') },
  { module: 'ScaledDotProductAttention', kind: 'mask of the wrong shape', call: 'forward(q, k, v, { mask: [5, 5] })', args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D]), { mask: ids([5, 5]) }], outcome: shape('ScaledDotProductAttention', 'mask') },
  { module: 'ScaledDotProductAttention', kind: 'NaN input', call: 'checkFinite: forward(q with NaN, k, v)', args: () => [f([2, 3, D], NaN), f([2, 4, D]), f([2, 4, D])], outcome: numeric('ScaledDotProductAttention', 'argument "q"') },
  { module: 'RotaryPositionEncoding', kind: 'wrong rank', call: 'forward(q [2, 3, 4], k [2, 3, 4])', args: () => [f([2, 3, 4]), f([2, 3, 4])], outcome: shape('RotaryPositionEncoding', 'q') },
  { module: 'RotaryPositionEncoding', kind: 'wrong width', call: 'forward(q [2, 3, 2, 5], k)', args: () => [f([2, 3, 2, 5]), f([2, 3, 2, 5])], outcome: shape('RotaryPositionEncoding', 'q') },
  { module: 'RotaryPositionEncoding', kind: 'wrong dtype', call: 'forward(q int32, k int32)', args: () => [ids([2, 3, 2, 4]), ids([2, 3, 2, 4])], outcome: shape('RotaryPositionEncoding', 'q') },
  { module: 'RotaryPositionEncoding', kind: 'sequence longer than maxSeqLength', call: 'forward(q [2, 30, 2, 4], k) with maxSeqLength 16', args: () => [f([2, 30, 2, 4]), f([2, 30, 2, 4])], outcome: shape('RotaryPositionEncoding', 'maxSeqLength') },
  { module: 'PositionalEncoding', kind: 'sequence longer than maxSeqLength', call: `forward(x [2, 20, ${D}]) with maxSeqLength 16`, args: () => [f([2, 20, D])], outcome: shape('PositionalEncoding', 'maxSeqLength') },
  { module: 'TokenEmbedding', kind: 'id out of range', call: 'forward(ids = 10) with vocabSize 10', args: () => [ids([2, 3], 10)], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'TokenEmbedding', kind: 'negative id', call: 'forward(ids = -1)', args: () => [ids([2, 3], -1)], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'TokenEmbedding', kind: 'wrong dtype', call: 'forward(ids float32 [2, 3])', args: () => [f([2, 3])], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'TokenEmbedding', kind: 'wrong rank', call: 'forward(ids [2, 3, 1])', args: () => [ids([2, 3, 1])], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'TokenEmbedding', kind: 'empty batch', call: 'forward(ids [0, 3])', args: () => [ids([0, 3])], outcome: { returns: [0, 3, D] } },
  { module: 'TransformerEncoder', kind: 'id out of range', call: 'forward(ids = 10) with vocabSize 10', args: () => [ids([2, 3], 10)], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'TransformerEncoder', kind: 'sequence longer than maxSeqLength', call: 'forward(ids [2, 20]) with maxSeqLength 16', args: () => [ids([2, 20])], outcome: shape('PositionalEncoding', 'maxSeqLength') },
  { module: 'TransformerEncoder', kind: 'key padding mask of the wrong shape', call: 'forward(ids [2, 3], { keyPaddingMask: [2, 4] })', args: () => [ids([2, 3]), { keyPaddingMask: ids([2, 4]) }], outcome: shape('MultiHeadAttention', 'keyPaddingMask') },
  { module: 'TransformerDecoderLayer', kind: 'memory of the wrong width', call: `forward(x [2, 3, ${D}], memory [2, 4, ${D + 1}])`, args: () => [f([2, 3, D]), f([2, 4, D + 1])], outcome: shape('TransformerDecoderLayer', 'memory') },
  { module: 'TransformerDecoderLayer', kind: 'memory batch differs', call: `forward(x [2, 3, ${D}], memory [3, 4, ${D}])`, args: () => [f([2, 3, D]), f([3, 4, D])], outcome: shape('TransformerDecoderLayer', 'memory') },
  { module: 'TransformerDecoderLayer', kind: 'memory key padding mask of the wrong shape', call: 'forward(x, memory [2, 4, 8], { memoryKeyPaddingMask: [2, 5] })', args: () => [f([2, 3, D]), f([2, 4, D]), { memoryKeyPaddingMask: ids([2, 5]) }], outcome: shape('MultiHeadAttention', 'keyPaddingMask') },
  { module: 'TransformerDecoderLayer', kind: 'NaN in memory', call: 'checkFinite: forward(x, memory with NaN)', args: () => [f([2, 3, D]), f([2, 4, D], NaN)], outcome: numeric('TransformerDecoderLayer', 'argument "memory"') },
  { module: 'TransformerDecoder', kind: 'memory batch differs', call: `forward(ids [2, 3], memory [3, 4, ${D}])`, args: () => [ids([2, 3]), f([3, 4, D])], outcome: shape('TransformerDecoderLayer', 'memory') },
  { module: 'TransformerDecoder', kind: 'id out of range', call: 'forward(ids = 10, memory) with vocabSize 10', args: () => [ids([2, 3], 10), f([2, 4, D])], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'EncoderDecoderTransformer', kind: 'source id out of range', call: 'forward(src = 10, tgt) with srcVocabSize 10', args: () => [ids([2, 4], 10), ids([2, 3])], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'EncoderDecoderTransformer', kind: 'target id out of range', call: 'forward(src, tgt = 12) with tgtVocabSize 12', args: () => [ids([2, 4]), ids([2, 3], 12)], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'EncoderDecoderTransformer', kind: 'wrong dtype', call: 'forward(src, tgt float32)', args: () => [ids([2, 4]), f([2, 3])], outcome: shape('TokenEmbedding', 'ids') },
  { module: 'EncoderDecoderTransformer', kind: 'batch sizes differ', call: 'forward(src [2, 4], tgt [3, 3])', args: () => [ids([2, 4]), ids([3, 3])], outcome: shape('EncoderDecoderTransformer', 'tgt') },
  { module: 'EncoderDecoderTransformer', kind: 'zero-length source', call: 'forward(src [2, 0], tgt [2, 3])', args: () => [ids([2, 0]), ids([2, 3])], outcome: shape('EncoderDecoderTransformer', 'src') },
  { module: 'EncoderDecoderTransformer', kind: 'zero-length target', call: 'forward(src [2, 4], tgt [2, 0])', args: () => [ids([2, 4]), ids([2, 0])], outcome: { returns: [2, 0, 12] } },
  { module: 'EncoderDecoderTransformer', kind: 'empty batch', call: 'forward(src [0, 4], tgt [0, 3])', args: () => [ids([0, 4]), ids([0, 3])], outcome: { returns: [0, 3, 12] } },
  { module: 'EncoderDecoderTransformer', kind: 'key padding mask of the wrong shape', call: 'forward(src [2, 4], tgt, { srcKeyPaddingMask: [2, 3] })', args: () => [ids([2, 4]), ids([2, 3]), { srcKeyPaddingMask: ids([2, 3]) }], outcome: shape('EncoderDecoderTransformer', 'srcKeyPaddingMask') },
);

// Misspelt and null call options: silently ignored before, now a MieConfigError naming the call.
const OPTION_CASES: Array<[string, string, () => unknown[], string]> = [
  ['ScaledDotProductAttention', 'forward(q, k, v, { masks })', () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D]), { masks: ids([2, 3, 4]) }], 'masks'],
  ['MultiHeadAttention', 'forward(q, k, v, { causl: true })', () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D]), { causl: true }], 'causl'],
  ['SimpleAttention', 'forward(x, { maks })', () => [f([2, 3, D]), { maks: ids([2, 3, 3]) }], 'maks'],
  ['GroupedQueryAttention', 'forward(x, { keyPaddingMsk })', () => [f([2, 3, D]), { keyPaddingMsk: ids([2, 3]) }], 'keyPaddingMsk'],
  ['ALiBiAttention', 'forward(x, { casual: true })', () => [f([2, 3, D]), { casual: true }], 'casual'],
  ['TransformerEncoderLayer', 'forward(x, { keyPaddingMsk })', () => [f([2, 3, D]), { keyPaddingMsk: ids([2, 3]) }], 'keyPaddingMsk'],
  ['TransformerDecoderLayer', 'forward(x, memory, { memoryKeyPaddingMsk })', () => [f([2, 3, D]), f([2, 4, D]), { memoryKeyPaddingMsk: ids([2, 4]) }], 'memoryKeyPaddingMsk'],
  ['TransformerEncoder', 'forward(ids, { causl: true })', () => [ids([2, 3]), { causl: true }], 'causl'],
  ['TransformerDecoder', 'forward(ids, memory, { cache })', () => [ids([2, 3]), f([2, 4, D]), { cache: [] }], 'cache'],
  ['EncoderDecoderTransformer', 'forward(src, tgt, { srcKeyPaddingMsk })', () => [ids([2, 4]), ids([2, 3]), { srcKeyPaddingMsk: ids([2, 4]) }], 'srcKeyPaddingMsk'],
  ['PositionalEncoding', 'forward(x, { ofset: 1 })', () => [f([2, 3, D]), { ofset: 1 }], 'ofset'],
  ['RotaryPositionEncoding', 'forward(q, k, { ofset: 1 })', () => [f([2, 3, 2, 4]), f([2, 3, 2, 4]), { ofset: 1 }], 'ofset'],
];
for (const [module, call, args, key] of OPTION_CASES) {
  cases.push({ module, kind: 'misspelt option', call, args, outcome: option(`${module}.forward`, `"${key}"`) });
}
cases.push(
  { module: 'EncoderDecoderTransformer', kind: 'null options', call: 'forward(src, tgt, null)', args: () => [ids([2, 4]), ids([2, 3]), null], outcome: option('EncoderDecoderTransformer.forward', 'options') },
  { module: 'MultiHeadAttention', kind: 'null options', call: 'forward(q, k, v, null)', args: () => [f([2, 3, D]), f([2, 4, D]), f([2, 4, D]), null], outcome: option('MultiHeadAttention.forward', 'options') },
);

export const BAD_INPUTS: readonly BadInputCase[] = cases;

/** The markdown table of docs/reliability.md. */
export function renderBadInputTable(): string {
  const rows = BAD_INPUTS.map((c) => {
    const result =
      'returns' in c.outcome
        ? `returns an empty tensor [${c.outcome.returns.join(', ')}]`
        : `\`${c.outcome.error}\` naming \`${c.outcome.names}\` and \`${c.outcome.argument}\``;
    return `| \`${c.module}\` | ${c.kind} | \`${c.call}\` | ${result} |`;
  });
  return ['| module | bad input | call | result |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
