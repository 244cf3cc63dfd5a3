import fc from 'fast-check';
import { MieError, MieResourceError, MieSerializationError, describeValue, errorMessage, listForMessage } from './errors';
import { parseStrictJson } from './strict-json';
import { tf } from './tfjs';
import { setBackend } from './backend';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('describeValue', () => {
  it('describes plain values, arrays and tensors briefly', () => {
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue('x'.repeat(100))).toBe(JSON.stringify(`${'x'.repeat(77)}...`));
    expect(describeValue(3.5)).toBe('3.5');
    expect(describeValue(10n ** 60n)).toBe('a 61-character integer');
    expect(describeValue([1, 2, 3])).toBe('[1, 2, 3]');
    expect(describeValue(Array.from({ length: 20 }, (_, i) => i))).toBe('[0, 1, 2, 3, 4, 5, 6, 7, ... (20 items)]');
    expect(describeValue([[[[1]]]])).toBe('[[an array of 1 items]]');
    expect(describeValue(new Map())).toBe('a Map');
    expect(describeValue({ a: 1 })).toBe('an object');
    expect(describeValue(Object.create(null))).toBe('an object');
    expect(describeValue(new Float32Array(3))).toBe('a Float32Array of 12 bytes');
    expect(describeValue(() => 1)).toBe('a function');
    const t = tf.zeros([2, 3], 'int32');
    expect(describeValue(t)).toBe('tensor int32[2, 3]');
    t.dispose();
  });

  it('runs no code of the value: hostile JSON objects, getters and proxies are described safely', () => {
    const hostile = parseStrictJson('{"constructor":{"name":{"toString":1}},"toString":1,"valueOf":2,"shape":[1],"dtype":"float32"}');
    expect(describeValue(hostile)).toBe('an object');
    expect(describeValue(parseStrictJson('{"__proto__":{"constructor":{"name":"Evil"}}}'))).toBe('an object');
    expect(describeValue([hostile, hostile])).toBe('[an object, an object]');
    let ran = false;
    const getter = Object.defineProperty({}, 'constructor', { get: () => ((ran = true), { name: 'X' }) });
    expect(describeValue(getter)).toBe('an object');
    expect(ran).toBe(false);
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    expect(describeValue(revocable.proxy)).toBe('a value that cannot be described');
    const trap = new Proxy({}, { getPrototypeOf: () => { throw new Error('trap'); } });
    expect(describeValue(trap)).toBe('a value that cannot be described');
    class Named {}
    Object.defineProperty(Named, 'name', { get: () => ((ran = true), 'Evil') });
    expect(describeValue(new Named())).toBe('an object');
    expect(ran).toBe(false);
  });

  it('never throws and stays short on any JSON value (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = describeValue(value);
        return typeof text === 'string' && text.length < 1200;
      }),
      { seed: 13, numRuns: 300 },
    );
  });
});

describe('messages', () => {
  it('lists at most `limit` items and counts the rest', () => {
    expect(listForMessage(['"a"', '"b"'])).toBe('"a", "b"');
    const many = Array.from({ length: 12000 }, (_, i) => `"layers.${i}"`);
    const text = listForMessage(many);
    expect(text).toMatch(/^"layers.0", .*"layers.9" and 11990 more$/);
    expect(text.length).toBeLessThan(200);
  });

  it('builds the standard message and keeps the cause', () => {
    expect(errorMessage('LinearLayer', 'option "inFeatures"', 'must be a positive integer', -3)).toBe(
      'LinearLayer: option "inFeatures" must be a positive integer. Received: -3.',
    );
    const cause = new Error('ENOSPC');
    const error = new MieSerializationError('Model.save: could not write', { cause });
    expect(error.cause).toBe(cause);
    expect(error.name).toBe('MieSerializationError');
    expect(new MieResourceError('x')).toBeInstanceOf(MieError);
  });
});
