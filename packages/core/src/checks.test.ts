import { setBackend } from './backend';
import {
  checkBoolean,
  checkDropout,
  checkFeatures,
  checkOneOf,
  checkOptions,
  checkPositiveInteger,
  checkPositiveIntegers,
  checkPositiveNumber,
} from './checks';
import { MieConfigError, MieShapeError } from './errors';
import { tf } from './tfjs';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('option checks', () => {
  it('accept valid values and return them', () => {
    const options = { a: 1 };
    expect(checkOptions('M', options, ['a', 'b'])).toBe(options);
    expect(checkPositiveInteger('M', 'n', 3)).toBe(3);
    expect(checkPositiveInteger('M', 'n', 0, 0)).toBe(0);
    const widths = [4, 5];
    expect(checkPositiveIntegers('M', 'w', widths)).not.toBe(widths);
    expect(checkDropout('M', 0)).toBe(0);
    expect(checkBoolean('M', 'f', false)).toBe(false);
    expect(checkPositiveNumber('M', 'eps', 1e-5)).toBe(1e-5);
    expect(checkOneOf('M', 'kind', 'b', ['a', 'b'])).toBe('b');
  });

  it.each([
    [() => checkOptions('M', { a: 1, useLayernorm: true }, ['a', 'useLayerNorm']), 'M: unknown option "useLayernorm"; the options are a, useLayerNorm.'],
    [() => checkOptions('M', null as unknown as object, []), 'M: options must be an object. Received: null.'],
    [() => checkPositiveInteger('M', 'n', 2.5), 'M: option "n" must be a positive integer. Received: 2.5.'],
    [() => checkPositiveInteger('M', 'n', -1, 0), 'M: option "n" must be an integer >= 0. Received: -1.'],
    [() => checkPositiveIntegers('M', 'w', [1, 0]), 'M: option "w" must be an array of positive integers. Received: [1, 0].'],
    [() => checkDropout('M', 1), 'M: option "dropout" must be a probability in [0, 1). Received: 1.'],
    [() => checkBoolean('M', 'f', 'yes'), 'M: option "f" must be a boolean. Received: "yes".'],
    [() => checkPositiveNumber('M', 'eps', 0), 'M: option "eps" must be a finite number > 0. Received: 0.'],
    [() => checkOneOf('M', 'kind', 'c', ['a', 'b']), 'M: option "kind" must be one of "a", "b". Received: "c".'],
  ])('reject bad values with a MieConfigError naming module, option and value (%#)', (check, message) => {
    expect(check).toThrow(MieConfigError);
    expect(check).toThrow(message);
  });
});

describe('checkFeatures', () => {
  it('checks liveness, dtype, rank and the last dimension', () => {
    const x = tf.zeros([2, 3, 4]);
    expect(checkFeatures('M', 'x', x, 4, 'dModel', 3)).toBe(x);
    expect(() => checkFeatures('M', 'x', x, 5, 'dModel')).toThrow('M: x must have shape [..., 5] (last dimension = dModel). Received: tensor float32[2, 3, 4].');
    expect(() => checkFeatures('M', 'x', x, 4, 'dModel', 2)).toThrow(MieShapeError);
    const ints = tf.zeros([2, 4], 'int32');
    expect(() => checkFeatures('M', 'x', ints, 4, 'dModel')).toThrow(/must have dtype float32/);
    x.dispose();
    expect(() => checkFeatures('M', 'x', x, 4, 'dModel')).toThrow(/must be a live tf.Tensor/);
    ints.dispose();
  });
});
