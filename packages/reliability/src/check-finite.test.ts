/**
 * The opt-in `checkFinite` / `enableFiniteChecks` of @mie/core: the first module that turns finite
 * inputs into NaN or infinities is named by its path, also deep inside a model and during
 * generation; non-finite inputs are named where they enter; the checks remove themselves.
 */
import { MieNumericalError, checkFinite, enableFiniteChecks, setBackend, setSeed, tf } from '@mie/core';
import { EncoderDecoderTransformer, TransformerEncoderLayer } from '@mie/transformer';
import { rejected, thrown, testBackend } from './helpers';

const make = () =>
  new EncoderDecoderTransformer({ srcVocabSize: 10, tgtVocabSize: 10, dModel: 8, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 1, dFf: 16, maxSeqLength: 8 }).eval();
const src = () => tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32');

beforeAll(async () => {
  await setBackend(testBackend());
  setSeed(4);
});

it('names the first module producing NaN, by path, class and output', () => {
  const model = make();
  const [s, t] = [src(), src()];
  const weight = model.stateDict()['encoder.layers.1.linear2.bias'];
  weight.assign(tf.fill(weight.shape, NaN));
  const before = tf.memory().numTensors;
  const error = thrown(() => checkFinite(model, () => model.forward(s, t)));
  expect(error).toBeInstanceOf(MieNumericalError);
  expect(error.message).toContain('module "encoder.layers.1.linear2" (LinearLayer) produced non-finite values');
  expect(error.message).toMatch(/\d+ NaN of \d+ values in output \[2, 3, 8\]/);
  expect(tf.memory().numTensors).toBe(before);
  // Without the check the NaN flows silently to the logits; with it removed, forward is untouched.
  const logits = model.forward(s, t);
  expect(Number.isNaN(logits.dataSync()[0])).toBe(true);
  expect(model.modules().every((m) => !Object.prototype.hasOwnProperty.call(m, 'forward'))).toBe(true);
  tf.dispose([logits, s, t]);
  model.dispose();
});

it('names overflow to infinity inside attention', () => {
  const model = make();
  const [s, t] = [src(), src()];
  // A huge but finite query bias: the projection is finite, the scores q.k overflow inside attention.
  const bias = model.stateDict()['decoder.layers.0.crossAttn.qProj.bias'];
  bias.assign(tf.fill(bias.shape, 3e38));
  const error = thrown(() => checkFinite(model, () => model.forward(s, t)));
  expect(error.message).toContain('module "decoder.layers.0.crossAttn" (MultiHeadAttention) produced non-finite values');
  expect(error.message).toMatch(/in output\[0\]/);
  tf.dispose([s, t]);
  model.dispose();
});

it('names the argument when the input itself holds NaN or infinity', () => {
  const layer = new TransformerEncoderLayer({ dModel: 8, numHeads: 2, dFf: 16 }).eval();
  const x = tf.tensor3d([[[1, 2, 3, NaN, 5, 6, 7, 8]]]);
  const mask = tf.tensor2d([[1]]);
  const error = thrown(() => checkFinite(layer, () => layer.forward(x, { keyPaddingMask: mask })));
  expect(error.message).toBe(
    'checkFinite: TransformerEncoderLayer received non-finite values (1 NaN of 8 values in argument "x" [1, 1, 8]); ' +
      'they come from the caller or from computation between modules, not from a checked module.',
  );
  const infiniteMask = tf.tensor2d([[Infinity]]);
  const clean = tf.ones([1, 1, 8]);
  expect(thrown(() => checkFinite(layer, () => layer.forward(clean, { keyPaddingMask: infiniteMask }))).message).toContain('options.keyPaddingMask');
  // checkInputs: false checks outputs only, so a NaN input is blamed on the first module it passes.
  expect(thrown(() => checkFinite(layer, () => layer.forward(x), { checkInputs: false })).message).toContain('produced non-finite values');
  tf.dispose([x, mask, infiniteMask, clean]);
  layer.dispose();
});

it('checks asynchronous generation and frees its tensors', async () => {
  const model = make();
  const s = src();
  const bias = model.stateDict()['decoder.layers.0.norm3.bias'];
  bias.assign(tf.fill(bias.shape, Infinity));
  const before = tf.memory().numTensors;
  const error = await rejected(() => checkFinite(model, () => model.generate(s, { bosTokenId: 1, maxNewTokens: 3 })));
  expect(error).toBeInstanceOf(MieNumericalError);
  expect(error.message).toContain('module "decoder.layers.0.norm3" (LayerNorm)');
  expect(tf.memory().numTensors).toBe(before);
  s.dispose();
  model.dispose();
});

it('enableFiniteChecks returns a remover and leaves finite models alone', () => {
  const model = make();
  const [s, t] = [src(), src()];
  const expected = model.forward(s, t);
  const remove = enableFiniteChecks(model);
  const checked = model.forward(s, t);
  expect(checked.dataSync()).toEqual(expected.dataSync());
  remove();
  remove();
  expect(model.modules().every((m) => !Object.prototype.hasOwnProperty.call(m, 'forward'))).toBe(true);
  tf.dispose([expected, checked, s, t]);
  model.dispose();
});
