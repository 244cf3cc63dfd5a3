import fc from 'fast-check';
import { MieSerializationError } from './errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readRegularFile, readSafetensorsFile } from './checkpoint-files';
import {
  SAFETENSORS_MAX_HEADER_BYTES,
  decodeSafetensorsEntry,
  encodeSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  safetensorsPrefixLength,
  writeSafetensors,
} from './safetensors';
import { STRICT_JSON_MAX_DEPTH, StrictJsonError, parseStrictJson } from './strict-json';
import { tf } from './tfjs';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const utf8 = new TextEncoder();

/** A file with the given header (text or raw bytes) and byte buffer; the length field may lie. */
function buildFile(header: string | Uint8Array, buffer: ArrayLike<number> = [], declaredLength?: bigint): Uint8Array {
  const headerBytes = typeof header === 'string' ? utf8.encode(header) : header;
  const file = new Uint8Array(8 + headerBytes.length + buffer.length);
  new DataView(file.buffer).setBigUint64(0, declaredLength ?? BigInt(headerBytes.length), true);
  file.set(headerBytes, 8);
  file.set(buffer, 8 + headerBytes.length);
  return file;
}

function entry(dtype: string, shape: unknown[], dataOffsets: unknown[]): Record<string, unknown> {
  return { dtype, shape, data_offsets: dataOffsets };
}

function oneTensorFile(dtype: string, shape: number[], buffer: Uint8Array): Uint8Array {
  return buildFile(JSON.stringify({ t: entry(dtype, shape, [0, buffer.length]) }), buffer);
}

function encode<T>(size: number, values: readonly T[], write: (view: DataView, offset: number, value: T) => void): Uint8Array {
  const out = new Uint8Array(size * values.length);
  const view = new DataView(out.buffer);
  values.forEach((value, i) => write(view, i * size, value));
  return out;
}

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function rawBytes(tensor: tf.Tensor): Uint8Array {
  const data = tensor.dataSync();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}

function disposeAll(tensors: Record<string, tf.Tensor>): void {
  for (const name of Object.keys(tensors)) tensors[name].dispose();
}

/** Reads the file and asserts a MieSerializationError containing `fragment`, with no tensor leaked. */
function expectRejected(file: Uint8Array, fragment: string | RegExp): string {
  const before = tf.memory().numTensors;
  let caught: unknown;
  try {
    disposeAll(readSafetensors(file).tensors);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(MieSerializationError);
  const message = (caught as Error).message;
  expect(message.startsWith('readSafetensors: ')).toBe(true);
  if (typeof fragment === 'string') expect(message).toContain(fragment);
  else expect(message).toMatch(fragment);
  expect(tf.memory().numTensors).toBe(before);
  return message;
}

/** Reads the file: 'ok' (tensors disposed again) or 'rejected'; any other exception propagates. */
function readOutcome(file: Uint8Array): 'ok' | 'rejected' {
  try {
    disposeAll(readSafetensors(file).tensors);
    return 'ok';
  } catch (error) {
    if (error instanceof MieSerializationError && error.message.startsWith('readSafetensors: ')) return 'rejected';
    throw error;
  }
}

const KNOWN_HEADER = '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
// 1.5 is 0x3FC00000 and -2 is 0xC0000000, stored little-endian.
const KNOWN_DATA = [0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0];
const KNOWN_FILE = new Uint8Array([85, 0, 0, 0, 0, 0, 0, 0, ...utf8.encode(KNOWN_HEADER), ...KNOWN_DATA]);

describe('readSafetensors and writeSafetensors on known files', () => {
  it('parses a hand-built file to the right values and metadata', () => {
    const { tensors, metadata } = readSafetensors(KNOWN_FILE);
    expect(Object.keys(tensors)).toEqual(['w']);
    expect(tensors.w.dtype).toBe('float32');
    expect(tensors.w.shape).toEqual([2]);
    expect(Array.from(tensors.w.dataSync())).toEqual([1.5, -2]);
    expect(metadata).toEqual({ format: 'pt' });
    disposeAll(tensors);
  });

  it('writes the known tensor with the reference byte layout', () => {
    const w = tf.tensor([1.5, -2], [2], 'float32');
    const file = writeSafetensors({ w }, { format: 'pt' });
    w.dispose();
    const headerLength = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect(headerLength).toBe(88);
    expect((8 + headerLength) % 8).toBe(0);
    const headerText = new TextDecoder().decode(file.subarray(8, 8 + headerLength));
    expect(headerText).toBe(`${KNOWN_HEADER}   `);
    expect(Array.from(file.subarray(8 + headerLength))).toEqual(KNOWN_DATA);
    expect(file.length).toBe(8 + 88 + 8);

    const { tensors, metadata } = readSafetensors(file);
    expect(Array.from(tensors.w.dataSync())).toEqual([1.5, -2]);
    expect(metadata).toEqual({ format: 'pt' });
    disposeAll(tensors);
  });

  it('lays out several tensors contiguously in insertion order, with an aligned byte buffer', () => {
    const input = {
      a: tf.tensor([1, 2, 3], [3], 'float32'),
      b: tf.tensor([true, false, true, true, false], [5], 'bool'),
      c: tf.tensor([[1, -2], [2147483647, -2147483648]], [2, 2], 'int32'),
      d: tf.zeros([0, 3], 'float32'),
      e: tf.scalar(7, 'int32'),
    };
    const file = writeSafetensors(input);
    const headerLength = Number(new DataView(file.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const headerText = new TextDecoder().decode(file.subarray(8, 8 + headerLength));
    const json = headerText.trimEnd();
    expect(headerText.slice(json.length)).toMatch(/^ {0,7}$/);
    const header = JSON.parse(json);
    expect(Object.keys(header)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(header.a).toEqual({ dtype: 'F32', shape: [3], data_offsets: [0, 12] });
    expect(header.b).toEqual({ dtype: 'BOOL', shape: [5], data_offsets: [12, 17] });
    expect(header.c).toEqual({ dtype: 'I32', shape: [2, 2], data_offsets: [17, 33] });
    expect(header.d).toEqual({ dtype: 'F32', shape: [0, 3], data_offsets: [33, 33] });
    expect(header.e).toEqual({ dtype: 'I32', shape: [], data_offsets: [33, 37] });
    expect(file.length).toBe(8 + headerLength + 37);
    expect(Array.from(file.subarray(8 + headerLength + 12, 8 + headerLength + 17))).toEqual([1, 0, 1, 1, 0]);

    // An odd byteOffset into a larger buffer, and "c" at the unaligned offset 17.
    const shifted = new Uint8Array(file.length + 3);
    shifted.set(file, 3);
    const { tensors, metadata } = readSafetensors(shifted.subarray(3));
    expect(Object.keys(metadata)).toEqual([]);
    expect(tensors.b.dtype).toBe('bool');
    expect(Array.from(tensors.b.dataSync())).toEqual([1, 0, 1, 1, 0]);
    expect(tensors.c.dtype).toBe('int32');
    expect(Array.from(tensors.c.dataSync())).toEqual([1, -2, 2147483647, -2147483648]);
    expect(tensors.d.shape).toEqual([0, 3]);
    expect(tensors.e.shape).toEqual([]);
    expect(Array.from(tensors.e.dataSync())).toEqual([7]);
    disposeAll(tensors);
    disposeAll(input);
  });

  it('writes an empty file as "{}" padded to 8 bytes and omits empty metadata', () => {
    const file = writeSafetensors({}, {});
    expect(Array.from(file)).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...utf8.encode('{}      ')]);
    const { tensors, metadata } = readSafetensors(file);
    expect(Object.keys(tensors)).toEqual([]);
    expect(Object.keys(metadata)).toEqual([]);
  });

  it('accepts a header padded with spaces and tensors stored out of key order', () => {
    const header = JSON.stringify({ x: entry('F32', [1], [4, 8]), y: entry('F32', [1], [0, 4]) });
    const file = buildFile(`${header}     `, encode(4, [3, 4], (v, o, x) => v.setFloat32(o, x, true)));
    const { tensors } = readSafetensors(file);
    expect(Array.from(tensors.x.dataSync())).toEqual([4]);
    expect(Array.from(tensors.y.dataSync())).toEqual([3]);
    disposeAll(tensors);
  });

  it('keeps names like __proto__ as plain entries without polluting any prototype', () => {
    const header =
      '{"__metadata__":{"__proto__":"meta","constructor":"c"},' +
      '"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
      '"constructor":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
    const file = buildFile(header, encode(4, [1, 2], (v, o, x) => v.setFloat32(o, x, true)));
    const { tensors, metadata } = readSafetensors(file);
    expect(Object.getPrototypeOf(tensors)).toBeNull();
    expect(Object.getPrototypeOf(metadata)).toBeNull();
    expect(Object.keys(tensors).sort()).toEqual(['__proto__', 'constructor']);
    expect(Array.from(tensors['__proto__'].dataSync())).toEqual([1]);
    expect(Array.from(tensors['constructor'].dataSync())).toEqual([2]);
    expect(metadata['__proto__']).toBe('meta');
    expect(metadata['constructor']).toBe('c');
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();
    disposeAll(tensors);
  });
});

describe('writeSafetensors rejections', () => {
  it.each<[string, () => [Record<string, tf.Tensor>, Record<string, string>?], string]>([
    ['an empty name', () => [{ '': tf.scalar(1) }], 'tensor name must be non-empty'],
    ['the reserved name', () => [{ __metadata__: tf.scalar(1) }], '"__metadata__"'],
    ['a non-tensor value', () => [{ w: [1, 2] as unknown as tf.Tensor }], 'tensor "w" must be a tf.Tensor'],
    ['a complex64 tensor', () => [{ z: tf.complex([1], [2]) }], 'tensor "z" dtype must be float32, int32 or bool'],
    ['a string tensor', () => [{ s: tf.tensor(['a'], [1], 'string') }], 'tensor "s" dtype'],
    ['a non-string metadata value', () => [{}, { epoch: 3 as unknown as string }], 'metadata "epoch" must be a string'],
  ])('rejects %s', (_label, make, fragment) => {
    const [tensors, metadata] = make();
    expect(() => writeSafetensors(tensors, metadata)).toThrow(MieSerializationError);
    expect(() => writeSafetensors(tensors, metadata)).toThrow(fragment);
    for (const value of Object.values(tensors)) if (value instanceof tf.Tensor) value.dispose();
  });

  it('rejects a disposed tensor', () => {
    const w = tf.scalar(1);
    w.dispose();
    expect(() => writeSafetensors({ w })).toThrow('tensor "w" must not be disposed');
  });
});

describe('round trip property', () => {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const float32Bits = fc.oneof(
    fc.float().map((value) => {
      f32[0] = value;
      return u32[0];
    }),
    fc.integer({ min: 0, max: 0xffffffff }),
    // Quiet and signalling NaNs with payloads, -0, subnormals, infinities, the largest finite.
    fc.constantFrom(0x7fc00000, 0x7f800001, 0xffc00123, 0x7fbfffff, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x7f7fffff),
  );
  const int32 = fc.oneof(fc.integer({ min: -2147483648, max: 2147483647 }), fc.constantFrom(-2147483648, 2147483647, 0, -1));
  const shape = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 4 });

  type Spec = { dtype: 'float32' | 'int32' | 'bool'; shape: number[]; bytes: Uint8Array; make: () => tf.Tensor };
  const spec: fc.Arbitrary<Spec> = shape.chain((dims) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const sized = { minLength: n, maxLength: n };
    return fc.oneof(
      fc.array(float32Bits, sized).map((bits): Spec => {
        const values = new Float32Array(new Uint32Array(bits).buffer);
        return { dtype: 'float32', shape: dims, bytes: new Uint8Array(values.buffer), make: () => tf.tensor(values, dims, 'float32') };
      }),
      fc.array(int32, sized).map((ints): Spec => {
        const values = new Int32Array(ints);
        return { dtype: 'int32', shape: dims, bytes: new Uint8Array(values.buffer), make: () => tf.tensor(values, dims, 'int32') };
      }),
      fc.array(fc.boolean(), sized).map((bools): Spec => ({
        dtype: 'bool',
        shape: dims,
        bytes: Uint8Array.from(bools, Number),
        make: () => tf.tensor(bools, dims, 'bool'),
      })),
    );
  });
  const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.string({ unit: fc.oneof(loneSurrogate, fc.constantFrom('"', '\\', '\n', '\u0000', ' ')), maxLength: 4 }),
    fc.constantFrom('__proto__', 'constructor', 'toString', '0', '17', 'Ωμέγα.weight', '🙂'),
  );
  const name = text.filter((n) => n !== '' && n !== '__metadata__');

  it('round-trips random tensors and metadata bit-exactly', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(name, spec), { selector: ([n]) => n, maxLength: 5 }),
        fc.dictionary(text, text, { maxKeys: 4 }),
        (pairs, metadata) => {
          const before = tf.memory().numTensors;
          const input: Record<string, tf.Tensor> = Object.create(null);
          for (const [n, s] of pairs) input[n] = s.make();
          const file = writeSafetensors(input, metadata);
          disposeAll(input);

          const headerLength = Number(new DataView(file.buffer).getBigUint64(0, true));
          expect((8 + headerLength) % 8).toBe(0);
          const { tensors, metadata: readMetadata } = readSafetensors(file);
          expect(Object.keys(tensors).sort()).toEqual(pairs.map(([n]) => n).sort());
          for (const [n, s] of pairs) {
            expect(tensors[n].dtype).toBe(s.dtype);
            expect(tensors[n].shape).toEqual(s.shape);
            expect(rawBytes(tensors[n])).toEqual(s.bytes);
          }
          expect({ ...readMetadata }).toEqual({ ...metadata });
          // Writing what was read reproduces the file byte for byte.
          expect(writeSafetensors(tensors, readMetadata)).toEqual(file);
          disposeAll(tensors);
          expect(tf.memory().numTensors).toBe(before);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('readSafetensors rejections', () => {
  const f32x2 = encode(4, [1, 2], (v, o, x) => v.setFloat32(o, x, true));

  it('rejects a non-Uint8Array argument', () => {
    expectRejected([1, 2, 3] as unknown as Uint8Array, 'must be a Uint8Array');
  });

  it('rejects files shorter than 8 bytes', () => {
    expectRejected(new Uint8Array(0), 'at least 8 bytes');
    expectRejected(new Uint8Array(7), 'at least 8 bytes');
  });

  it('rejects a header length of 2^63 or 100 MB + 1 quickly, without allocating it', () => {
    const started = Date.now();
    expectRejected(buildFile('{}', [], 2n ** 63n), `at most ${SAFETENSORS_MAX_HEADER_BYTES} bytes`);
    expectRejected(buildFile('{}', [], 2n ** 64n - 1n), 'Received: 18446744073709551615');
    expectRejected(buildFile('{}', [], BigInt(SAFETENSORS_MAX_HEADER_BYTES + 1)), 'at most 100000000 bytes. Received: 100000001');
    expect(Date.now() - started).toBeLessThan(200);
  });

  it('rejects a header length beyond the end of the file', () => {
    expectRejected(buildFile('{}', [], 3n), 'must fit in the 2 bytes that follow the length field. Received: 3');
  });

  it('rejects a header that is not valid UTF-8', () => {
    expectRejected(buildFile(concat(utf8.encode('{"'), [0xc3, 0x28], utf8.encode('":1}'))), 'must be valid UTF-8');
  });

  it('rejects a header that is not JSON', () => {
    expectRejected(buildFile('{"t":'), 'header must be strict JSON');
    expectRejected(buildFile("{'t':1}"), 'expected a string key');
    expectRejected(buildFile('{} x'), 'after the JSON value');
    expectRejected(buildFile(''), "header must be a JSON object starting with '{'. Received: an empty header");
  });

  it('rejects a header that is not a JSON object', () => {
    expectRejected(buildFile('[]'), "header must be a JSON object starting with '{'. Received: first byte 0x5b");
    expectRejected(buildFile('"x"'), "starting with '{'");
  });

  it('rejects duplicate tensor names', () => {
    const e = JSON.stringify(entry('F32', [2], [0, 8]));
    expectRejected(buildFile(`{"t":${e},"t":${e}}`, f32x2), 'duplicate key "t"');
  });

  it('rejects duplicate metadata keys, also when written with escapes', () => {
    expectRejected(buildFile('{"__metadata__":{"a":"1","a":"2"}}'), 'duplicate key "a"');
    expectRejected(buildFile('{"__metadata__":{"a":"1","\\u0061":"2"}}'), 'duplicate key "a"');
    expectRejected(buildFile('{"__metadata__":{},"__metadata__":{}}'), 'duplicate key "__metadata__"');
  });

  it('rejects a tensor entry that is not an object, or with extra or missing fields', () => {
    expectRejected(buildFile('{"t":5}'), 'tensor "t" must be an object with "dtype", "shape" and "data_offsets"');
    expectRejected(buildFile('{"t":[1]}'), 'tensor "t" must be an object');
    const extra = { ...entry('F32', [2], [0, 8]), extra: 1 };
    expectRejected(buildFile(JSON.stringify({ t: extra }), f32x2), 'tensor "t" field "extra" is not allowed');
    expectRejected(buildFile(JSON.stringify({ t: { dtype: 'F32', data_offsets: [0, 8] } }), f32x2), 'tensor "t" is missing the field "shape"');
  });

  it('rejects an empty tensor name', () => {
    expectRejected(buildFile(JSON.stringify({ '': entry('F32', [2], [0, 8]) }), f32x2), 'tensor name must be a non-empty string');
  });

  it('rejects unknown dtypes', () => {
    for (const dtype of ['F9', 'f32', 'constructor', '__proto__']) {
      expectRejected(oneTensorFile(dtype, [2], f32x2), `tensor "t" dtype must be one of the safetensors dtypes`);
    }
    expectRejected(buildFile(JSON.stringify({ t: entry(7 as unknown as string, [2], [0, 8]) }), f32x2), 'Received: 7');
  });

  it('rejects the F8 dtypes as unsupported', () => {
    expectRejected(oneTensorFile('F8_E4M3', [2], new Uint8Array(2)), 'tensor "t" dtype is an unsupported dtype');
    expectRejected(oneTensorFile('F8_E5M2', [2], new Uint8Array(2)), 'Received: "F8_E5M2"');
  });

  it('rejects a shape that is not an array of non-negative safe integers', () => {
    const message = 'tensor "t" shape must be an array of non-negative safe integers';
    for (const shape of [[1.5], [-1], ['2'], [2 ** 53], [null]]) {
      expectRejected(buildFile(JSON.stringify({ t: entry('F32', shape, [0, 8]) }), f32x2), message);
    }
    expectRejected(buildFile(JSON.stringify({ t: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }), f32x2), message);
  });

  it('rejects negative, non-integer, malformed or reversed data_offsets', () => {
    const malformed = 'data_offsets must be [begin, end], two non-negative safe integers';
    expectRejected(buildFile(JSON.stringify({ t: entry('F32', [2], [-1, 7]) }), f32x2), `${malformed}. Received: [-1, 7]`);
    expectRejected(buildFile(JSON.stringify({ t: entry('F32', [2], [0, 8.5]) }), f32x2), malformed);
    expectRejected(buildFile(JSON.stringify({ t: entry('F32', [2], [0, 4, 8]) }), f32x2), malformed);
    expectRejected(buildFile(JSON.stringify({ t: entry('F32', [2], [8, 0]) }), f32x2), 'must have begin <= end');
  });

  it('rejects offsets beyond the byte buffer', () => {
    expectRejected(buildFile(JSON.stringify({ t: entry('F32', [4], [0, 16]) }), f32x2), 'must lie within the 8-byte buffer. Received: [0, 16]');
  });

  it('rejects a byte size that does not match the shape and dtype', () => {
    expectRejected(oneTensorFile('F32', [3], f32x2), 'tensor "t" byte size (data_offsets end - begin) must match shape [3]: expected 12');
    expectRejected(oneTensorFile('F64', [2], f32x2), 'expected 16 (2 F64 elements of 8 bytes). Received: 8');
    // A product that would overflow is cut off as soon as it exceeds the buffer.
    const huge = 2 ** 52;
    expectRejected(oneTensorFile('F32', [huge, huge, huge, huge], f32x2), 'more than the whole 8-byte buffer');
  });

  it('accepts a zero-sized tensor with huge dims and empty offsets', () => {
    const { tensors } = readSafetensors(buildFile(JSON.stringify({ t: entry('F32', [2 ** 40, 0], [0, 0]) })));
    expect(tensors.t.size).toBe(0);
    disposeAll(tensors);
  });

  it('rejects overlapping offsets', () => {
    const header = JSON.stringify({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) });
    expectRejected(buildFile(header, new Uint8Array(12)), 'tensor "b" data_offsets overlap tensor "a", which ends at byte 8');
  });

  it('rejects a hole between tensors and a buffer not starting at offset 0', () => {
    const header = JSON.stringify({ a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [12, 20]) });
    expectRejected(buildFile(header, new Uint8Array(20)), 'tensor "b" data_offsets must begin at byte 8, leaving no hole');
    expectRejected(buildFile(JSON.stringify({ a: entry('F32', [2], [4, 12]) }), new Uint8Array(12)), 'must begin at byte 0');
  });

  it('rejects trailing bytes after the last tensor', () => {
    expectRejected(buildFile(JSON.stringify({ a: entry('F32', [2], [0, 8]) }), new Uint8Array(12)), /must be exactly 8 .*trailing bytes. Received: 12/);
  });

  it('rejects a non-empty byte buffer in a file without tensors', () => {
    expectRejected(buildFile('{}', [0]), 'must be exactly 0');
    expectRejected(buildFile('{"__metadata__":{"a":"b"}}', [1, 2]), 'trailing bytes');
  });

  it('rejects __metadata__ that is not an object of strings', () => {
    expectRejected(buildFile('{"__metadata__":"pt"}'), 'field "__metadata__" must be an object of string values. Received: "pt"');
    expectRejected(buildFile('{"__metadata__":["pt"]}'), 'field "__metadata__" must be an object');
    expectRejected(buildFile('{"__metadata__":{"epoch":3}}'), '__metadata__ entry "epoch" must be a string. Received: 3');
    expectRejected(buildFile('{"__metadata__":{"x":null}}'), 'Received: null');
  });

  it('rejects an I64 value outside int32 and leaks no tensor created before it', () => {
    const header = JSON.stringify({ ok: entry('F32', [2], [0, 8]), big: entry('I64', [2], [8, 24]) });
    const data = concat(f32x2, encode(8, [1n, 2n ** 40n], (v, o, x) => v.setBigInt64(o, x, true)));
    expectRejected(buildFile(header, data), 'tensor "big" (I64) element 1 must fit in int32 [-2147483648, 2147483647]. Received: 1099511627776');
  });

  it('rejects U64 and U32 values above int32', () => {
    expectRejected(oneTensorFile('U64', [1], encode(8, [2n ** 64n - 1n], (v, o, x) => v.setBigUint64(o, x, true))), 'must fit in int32');
    expectRejected(oneTensorFile('U32', [2], encode(4, [5, 2 ** 31], (v, o, x) => v.setUint32(o, x, true))), '(U32) element 1 must fit in int32');
    expectRejected(oneTensorFile('I64', [1], encode(8, [-(2n ** 31n) - 1n], (v, o, x) => v.setBigInt64(o, x, true))), 'Received: -2147483649');
  });

  it('rejects a BOOL byte other than 0 or 1', () => {
    expectRejected(oneTensorFile('BOOL', [3], new Uint8Array([0, 1, 2])), 'tensor "t" (BOOL) element 2 must be the byte 0 or 1. Received: 2');
  });
});

describe('dtype conversions', () => {
  function readOne(file: Uint8Array): tf.Tensor {
    const { tensors } = readSafetensors(file);
    return tensors.t;
  }

  function expectValues(tensor: tf.Tensor, dtype: string, shape: number[], values: number[]): void {
    expect(tensor.dtype).toBe(dtype);
    expect(tensor.shape).toEqual(shape);
    expect(Array.from(tensor.dataSync())).toEqual(values);
    tensor.dispose();
  }

  it('decodes F16 exactly, including subnormals, infinities, NaN and -0', () => {
    const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555];
    const file = oneTensorFile('F16', [11], encode(2, halves, (v, o, x) => v.setUint16(o, x, true)));
    const expected = [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, Infinity, -Infinity, NaN, -0, 0.333251953125];
    expectValues(readOne(file), 'float32', [11], expected);
  });

  it('decodes BF16 exactly', () => {
    const halves = [0x3f80, 0xc000, 0x4049, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8000];
    const file = oneTensorFile('BF16', [2, 4], encode(2, halves, (v, o, x) => v.setUint16(o, x, true)));
    expectValues(readOne(file), 'float32', [2, 4], [1, -2, 3.140625, Infinity, -Infinity, NaN, 2 ** -133, -0]);
  });

  it('rounds F64 to float32', () => {
    const file = oneTensorFile('F64', [6], encode(8, [0.1, -2.5, 1e300, 1e-50, NaN, -0], (v, o, x) => v.setFloat64(o, x, true)));
    expectValues(readOne(file), 'float32', [6], [Math.fround(0.1), -2.5, Infinity, 0, NaN, -0]);
  });

  it('converts the integer dtypes to int32', () => {
    const cases: [string, number, number[], (v: DataView, o: number, x: number) => void][] = [
      ['U8', 1, [0, 1, 255], (v, o, x) => v.setUint8(o, x)],
      ['I8', 1, [-128, 0, 127], (v, o, x) => v.setInt8(o, x)],
      ['I16', 2, [-32768, -1, 32767], (v, o, x) => v.setInt16(o, x, true)],
      ['U16', 2, [0, 65535, 258], (v, o, x) => v.setUint16(o, x, true)],
      ['I32', 4, [-2147483648, 2147483647, -7], (v, o, x) => v.setInt32(o, x, true)],
      ['U32', 4, [0, 2147483647, 65536], (v, o, x) => v.setUint32(o, x, true)],
      ['I64', 8, [-2147483648, 2147483647, -5], (v, o, x) => v.setBigInt64(o, BigInt(x), true)],
      ['U64', 8, [0, 2147483647, 4294967], (v, o, x) => v.setBigUint64(o, BigInt(x), true)],
    ];
    for (const [dtype, size, values, write] of cases) {
      expectValues(readOne(oneTensorFile(dtype, [3], encode(size, values, write))), 'int32', [3], values);
    }
  });

  it('converts BOOL to bool', () => {
    expectValues(readOne(oneTensorFile('BOOL', [2, 2], new Uint8Array([0, 1, 1, 0]))), 'bool', [2, 2], [0, 1, 1, 0]);
  });

  it('reads every multi-byte dtype at an odd offset', () => {
    const cases: [string, number, Uint8Array, number][] = [
      ['F32', 4, encode(4, [-1.25], (v, o, x) => v.setFloat32(o, x, true)), -1.25],
      ['F64', 8, encode(8, [3.5], (v, o, x) => v.setFloat64(o, x, true)), 3.5],
      ['F16', 2, encode(2, [0xc000], (v, o, x) => v.setUint16(o, x, true)), -2],
      ['I32', 4, encode(4, [-9], (v, o, x) => v.setInt32(o, x, true)), -9],
      ['I64', 8, encode(8, [-9n], (v, o, x) => v.setBigInt64(o, x, true)), -9],
    ];
    for (const [dtype, size, data, value] of cases) {
      const header = JSON.stringify({ pad: entry('U8', [1], [0, 1]), t: entry(dtype, [], [1, 1 + size]) });
      const { tensors } = readSafetensors(buildFile(header, concat([42], data)));
      expect(Array.from(tensors.pad.dataSync())).toEqual([42]);
      expect(tensors.t.shape).toEqual([]);
      expect(Array.from(tensors.t.dataSync())).toEqual([value]);
      disposeAll(tensors);
    }
  });
});

describe('mutation fuzzing', () => {
  let valid: Uint8Array;
  beforeAll(() => {
    const input = {
      weight: tf.tensor([[1, -2, 3.5], [NaN, 0, -0]], [2, 3], 'float32'),
      steps: tf.tensor([1, 2, 3], [3], 'int32'),
      mask: tf.tensor([true, false], [2], 'bool'),
      empty: tf.zeros([0], 'float32'),
    };
    valid = writeSafetensors(input, { format: 'pt', note: 'ünïcode' });
    disposeAll(input);
  });

  it('every single-byte flip is parsed or rejected with MieSerializationError', () => {
    const before = tf.memory().numTensors;
    const seen = new Set<string>();
    for (let i = 0; i < valid.length; i++) {
      for (const mask of [0x01, 0x20, 0x80, 0xff]) {
        const file = valid.slice();
        file[i] ^= mask;
        seen.add(readOutcome(file));
      }
    }
    expect(seen).toEqual(new Set(['ok', 'rejected']));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('random multi-byte flips are parsed or rejected', () => {
    const before = tf.memory().numTensors;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }),
        (flips) => {
          const file = valid.slice();
          for (const [index, mask] of flips) file[index] ^= mask;
          expect(['ok', 'rejected']).toContain(readOutcome(file));
        },
      ),
      { numRuns: 400 },
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('every truncation is rejected', () => {
    const before = tf.memory().numTensors;
    for (let length = 0; length < valid.length; length++) {
      expect(readOutcome(valid.slice(0, length))).toBe('rejected');
    }
    expect(readOutcome(valid)).toBe('ok');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('arbitrary bytes are parsed or rejected', () => {
    const before = tf.memory().numTensors;
    const jsonish = fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '0', '8', '-', 'a', 'F32', 'dtype', 'shape', 'data_offsets', ' '), maxLength: 30 });
    const arbitraryFile = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.tuple(jsonish, fc.uint8Array({ maxLength: 16 })).map(([header, data]) => buildFile(header, data)),
      fc.tuple(fc.json(), fc.uint8Array({ maxLength: 16 })).map(([header, data]) => buildFile(header, data)),
    );
    fc.assert(
      fc.property(arbitraryFile, (file) => {
        expect(['ok', 'rejected']).toContain(readOutcome(file));
      }),
      { numRuns: 500 },
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('near-valid generated headers are parsed or rejected', () => {
    const before = tf.memory().numTensors;
    const dtypes = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'U64', 'U32', 'I16', 'U16', 'I8', 'U8', 'BOOL'];
    const sizes: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8, U64: 8, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1 };
    const tensorArb = fc.record({
      dtype: fc.constantFrom(...dtypes),
      shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
    });
    const tweakArb = fc.option(
      fc.record({ index: fc.nat(), field: fc.constantFrom('begin', 'end', 'dim', 'buffer'), delta: fc.constantFrom(-2, -1, 1, 2) }),
    );
    const outcomes = new Set<string>();
    fc.assert(
      fc.property(fc.array(tensorArb, { maxLength: 4 }), tweakArb, fc.nat(), (specs, tweak, seed) => {
        const header: Record<string, unknown> = {};
        let offset = 0;
        specs.forEach((s, i) => {
          const size = s.shape.reduce((a, b) => a * b, 1) * sizes[s.dtype];
          header[`t${i}`] = { dtype: s.dtype, shape: [...s.shape], data_offsets: [offset, offset + size] };
          offset += size;
        });
        let bufferLength = offset;
        if (tweak && specs.length > 0) {
          const target = header[`t${tweak.index % specs.length}`] as { shape: number[]; data_offsets: number[] };
          if (tweak.field === 'begin') target.data_offsets[0] += tweak.delta;
          else if (tweak.field === 'end') target.data_offsets[1] += tweak.delta;
          else if (tweak.field === 'dim') target.shape.push(Math.abs(tweak.delta));
          else bufferLength = Math.max(0, bufferLength + tweak.delta);
        }
        const data = Uint8Array.from({ length: bufferLength }, (_, i) => ((seed + i * 37) % 3 === 0 ? (seed + i) & 0xff : (seed >> (i % 8)) & 1));
        outcomes.add(readOutcome(buildFile(JSON.stringify(header), data)));
      }),
      { numRuns: 400 },
    );
    expect(outcomes).toEqual(new Set(['ok', 'rejected']));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('parseStrictJson', () => {
  function expectJsonError(text: string, fragment: string, position?: number): void {
    let caught: unknown;
    try {
      parseStrictJson(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StrictJsonError);
    expect(caught).toBeInstanceOf(MieSerializationError);
    expect((caught as StrictJsonError).message).toContain(fragment);
    if (position !== undefined) expect((caught as StrictJsonError).position).toBe(position);
  }

  it('rejects duplicate keys at any depth, comparing unescaped keys', () => {
    expectJsonError('{"a":1,"a":2}', 'duplicate key "a"', 7);
    expectJsonError('{"a":1,"\\u0061":2}', 'duplicate key "a"', 7);
    expectJsonError('[{"x":{"b":[{"c":1, "c" :1}]}}]', 'duplicate key "c"', 20);
    expectJsonError('{"a":{"b":1},"b":{"a":1,"a":{}}}', 'duplicate key "a"', 24);
    expectJsonError('{"__proto__":1,"__proto__":2}', 'duplicate key "__proto__"');
  });

  it('allows equal keys in different objects', () => {
    expect(parseStrictJson('[{"a":1},{"a":2,"b":{"a":3}}]')).toEqual([{ a: 1 }, { a: 2, b: { a: 3 } }]);
  });

  it('keeps "__proto__" as an own key, like JSON.parse', () => {
    const text = '{"__proto__":{"polluted":true},"x":[1]}';
    const parsed = parseStrictJson(text) as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed)).toEqual(['__proto__', 'x']);
    expect(parsed).toEqual(JSON.parse(text));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it(`limits nesting to ${STRICT_JSON_MAX_DEPTH} levels`, () => {
    const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    expect(() => parseStrictJson(nested(STRICT_JSON_MAX_DEPTH))).not.toThrow();
    expectJsonError(nested(STRICT_JSON_MAX_DEPTH + 1), 'nested deeper than 64', STRICT_JSON_MAX_DEPTH);
    expectJsonError('{"a":'.repeat(STRICT_JSON_MAX_DEPTH + 1) + '1' + '}'.repeat(STRICT_JSON_MAX_DEPTH + 1), 'nested deeper');
  });

  it('rejects text outside the RFC 8259 grammar, with a position', () => {
    const invalid = [
      '', ' ', '{', '[1,]', '{"a":1,}', '01', '-', '1.', '.5', '1e', '1e+', '+1', 'NaN', 'Infinity', "'a'", '"\u0001"',
      '"\\x"', '"\\u12G4"', '"\\u12"', 'tru', 'nul', 'True', '[1 2]', '{"a" 1}', '{1:2}', '"abc', '\uFEFF1', '1 2', '\u00a01', '[', ']', '{"a":}',
    ];
    for (const text of invalid) {
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
      expect(() => parseStrictJson(text)).toThrow(StrictJsonError);
    }
    expectJsonError('[1,]', "expected a JSON value, found \"]\"", 3);
    expectJsonError('"ab', 'unterminated string', 0);
    expectJsonError('[1] x', 'after the JSON value', 4);
  });

  it('finds the end, an escape or a control character after a long plain run of a string, at its position', () => {
    const run = 'a\u00e9\u4e2d\ud83d\ude00'.repeat(50_000);
    expect(parseStrictJson(`{"k":"${run}\\n${run}"}`)).toEqual({ k: `${run}\n${run}` });
    expectJsonError(`"${run}\u001f"`, 'unescaped control character U+001f', run.length + 1);
    expectJsonError(`"${run}\\q"`, "invalid escape sequence '\\q'", run.length + 1);
    expectJsonError(`["${run}`, 'unterminated string', 1);
  });

  it('parses what JSON.parse parses, identically', () => {
    const documents = fc.oneof(
      fc.json(),
      fc.jsonValue().map((value) => JSON.stringify(value, null, '\t')),
      fc.jsonValue().map((value) => ` \r\n${JSON.stringify(value, null, 1)}\n `),
    );
    fc.assert(
      fc.property(documents, (text) => {
        expect(parseStrictJson(text)).toEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with JSON.parse on random JSON-like text, except for duplicate keys', () => {
    const unit = fc.constantFrom('{', '}', '[', ']', '"', ':', ',', ' ', '\n', '0', '1', '-', '.', 'e', '+', 'a', '\\', 'u', 'true', 'null', '\u0001');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 16 }), (text) => {
        let expected: unknown;
        let jsonFailed = false;
        try {
          expected = JSON.parse(text);
        } catch {
          jsonFailed = true;
        }
        let actual: unknown;
        try {
          actual = parseStrictJson(text);
        } catch (error) {
          expect(error).toBeInstanceOf(StrictJsonError);
          if (!jsonFailed) expect((error as StrictJsonError).reason).toMatch(/^duplicate key/);
          return;
        }
        expect(jsonFailed).toBe(false);
        expect(actual).toEqual(expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('streaming: encodeSafetensors, parseSafetensorsHeader, readSafetensorsFile', () => {
  it('encodes the same bytes as writeSafetensors, chunk by chunk, and parses headers without the values', async () => {
    const tensors = {
      a: tf.tensor2d([[1, 2], [3, NaN]]),
      b: tf.tensor1d([7, -8], 'int32'),
      c: tf.tensor1d([true, false, true], 'bool'),
    };
    const metadata = { format: 'mie', note: 'x' };
    const whole = writeSafetensors(tensors, metadata);
    const encoding = encodeSafetensors(tensors, metadata);
    expect(encoding.byteLength).toBe(whole.length);
    const chunks = [...encoding.chunks()];
    expect(chunks.length).toBe(4); // header, then one chunk per tensor
    const joined = new Uint8Array(encoding.byteLength);
    let offset = 0;
    for (const chunk of chunks) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    expect(Buffer.from(joined).equals(Buffer.from(whole))).toBe(true);
    // Only the first bytes are needed to learn names, dtypes, shapes and offsets.
    const prefixLength = safetensorsPrefixLength(whole.subarray(0, 8), whole.length);
    const header = parseSafetensorsHeader(whole.subarray(0, prefixLength), whole.length);
    expect(header.entries.map((e) => [e.name, e.dtype, e.tfDtype, e.shape])).toEqual([
      ['a', 'F32', 'float32', [2, 2]],
      ['b', 'I32', 'int32', [2]],
      ['c', 'BOOL', 'bool', [3]],
    ]);
    expect({ ...header.metadata }).toEqual(metadata);
    const b = header.entries[1];
    expect(Array.from(decodeSafetensorsEntry(b, whole.subarray(header.bufferStart + b.begin, header.bufferStart + b.end)))).toEqual([7, -8]);
    expect(() => decodeSafetensorsEntry(b, new Uint8Array(3))).toThrow(/must be exactly 8 bytes/);
    expect(() => parseSafetensorsHeader(whole.subarray(0, prefixLength - 1), whole.length)).toThrow(MieSerializationError);
    // A header that claims more than the file holds is refused from the header alone.
    expect(() => parseSafetensorsHeader(whole.subarray(0, prefixLength), whole.length - 1)).toThrow(/trailing bytes|within the/);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-st-'));
    const file = path.join(dir, 'x.safetensors');
    fs.writeFileSync(file, whole);
    const read = await readSafetensorsFile(file);
    expect(Object.keys(read.tensors)).toEqual(['a', 'b', 'c']);
    expect(Array.from(read.tensors.a.dataSync())).toEqual([1, 2, 3, NaN]);
    expect(Array.from(read.tensors.c.dataSync())).toEqual([1, 0, 1]);
    tf.dispose(Object.values(read.tensors));
    fs.writeFileSync(file, whole.subarray(0, whole.length - 2));
    const before = tf.memory().numTensors;
    await expect(readSafetensorsFile(file)).rejects.toThrow(MieSerializationError);
    expect(tf.memory().numTensors).toBe(before);
    fs.rmSync(dir, { recursive: true, force: true });
    tf.dispose(Object.values(tensors));
  });
});

describe('readRegularFile', () => {
  it('reads regular files whole in bounded chunks, within a size limit, and refuses the rest', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-read-'));
    const file = path.join(dir, 'chunks.bin');
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 256);
    fs.writeFileSync(file, bytes);
    expect(Buffer.from(await readRegularFile(file, 1000, 'test', { chunkBytes: 7 })).equals(Buffer.from(bytes))).toBe(true);
    await expect(readRegularFile(file, 999, 'test')).rejects.toThrow(`test: ${file} is 1000 bytes, above the 999-byte limit.`);
    await expect(readRegularFile(path.join(dir, 'absent'), 1, 'test')).rejects.toThrow(/^test: cannot read .*absent: it does not exist/);
    await expect(readRegularFile(dir, 1, 'test')).rejects.toThrow(/must be a regular file\. Received: a directory/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
