/**
 * Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON header (possibly padded at
 * its end with spaces), then the byte buffer that the header's `data_offsets` index into.
 * The reader treats its input as hostile: every claim of the header is checked against the real
 * byte length before anything is allocated for it.
 */

import { MieSerializationError, describeValue, errorMessage } from './errors';
import { StrictJsonError, parseStrictJson } from './strict-json';
import { readSync } from './readback';
import { tf } from './tfjs';

/** Largest header {@link readSafetensors} accepts, in bytes (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** What {@link readSafetensors} returns. */
export interface SafetensorsContents {
  /** The tensors by name, in header order, on an object without a prototype. */
  tensors: Record<string, tf.Tensor>;
  /** The `__metadata__` strings, on an object without a prototype (empty when the file has none). */
  metadata: Record<string, string>;
}

type DecodedValues = Float32Array | Int32Array | Uint8Array;

interface DtypeSpec {
  /** Bytes per element in the file. */
  readonly size: number;
  /** The tfjs dtype the values become. */
  readonly tfDtype: 'float32' | 'int32' | 'bool';
  /** Decodes `count` elements starting at absolute offset `start` of `bytes`. */
  readonly decode: (bytes: Uint8Array, view: DataView, start: number, count: number, name: string) => DecodedValues;
}

const MODULE = 'readSafetensors';
const WRITER = 'writeSafetensors';
const METADATA_KEY = '__metadata__';
const ENTRY_FIELDS = ['dtype', 'shape', 'data_offsets'] as const;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Spec dtypes that tfjs has no type for; named so that the error says "unsupported", not "unknown". */
const UNSUPPORTED_DTYPES: ReadonlySet<string> = new Set(['F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

// A Map, not an object literal, so that names like "constructor" cannot hit Object.prototype.
const DTYPES: ReadonlyMap<string, DtypeSpec> = new Map<string, DtypeSpec>([
  ['BOOL', { size: 1, tfDtype: 'bool', decode: decodeBool }],
  ['U8', { size: 1, tfDtype: 'int32', decode: integerDecoder('U8', 1, (v, o) => v.getUint8(o)) }],
  ['I8', { size: 1, tfDtype: 'int32', decode: integerDecoder('I8', 1, (v, o) => v.getInt8(o)) }],
  ['U16', { size: 2, tfDtype: 'int32', decode: integerDecoder('U16', 2, (v, o) => v.getUint16(o, true)) }],
  ['I16', { size: 2, tfDtype: 'int32', decode: integerDecoder('I16', 2, (v, o) => v.getInt16(o, true)) }],
  ['U32', { size: 4, tfDtype: 'int32', decode: integerDecoder('U32', 4, (v, o) => v.getUint32(o, true)) }],
  ['I32', { size: 4, tfDtype: 'int32', decode: (bytes, _v, start, count) => copyLittleEndian(bytes, start, new Int32Array(count)) }],
  ['U64', { size: 8, tfDtype: 'int32', decode: integerDecoder('U64', 8, (v, o) => v.getBigUint64(o, true)) }],
  ['I64', { size: 8, tfDtype: 'int32', decode: integerDecoder('I64', 8, (v, o) => v.getBigInt64(o, true)) }],
  ['F16', { size: 2, tfDtype: 'float32', decode: decodeF16 }],
  ['BF16', { size: 2, tfDtype: 'float32', decode: decodeBF16 }],
  ['F32', { size: 4, tfDtype: 'float32', decode: (bytes, _v, start, count) => copyLittleEndian(bytes, start, new Float32Array(count)) }],
  ['F64', { size: 8, tfDtype: 'float32', decode: decodeF64 }],
]);

const WRITE_DTYPES: ReadonlyMap<string, { name: string; size: number }> = new Map([
  ['float32', { name: 'F32', size: 4 }],
  ['int32', { name: 'I32', size: 4 }],
  ['bool', { name: 'BOOL', size: 1 }],
]);

interface HeaderEntry {
  readonly name: string;
  readonly dtype: string;
  readonly spec: DtypeSpec;
  readonly shape: number[];
  readonly elements: number;
  readonly begin: number;
  readonly end: number;
}

/** One tensor of a safetensors header, validated: where its bytes lie and what they become. */
export interface SafetensorsEntry {
  /** The tensor's name. */
  readonly name: string;
  /** The dtype in the file (`F32`, `F16`, `I64`, ...). */
  readonly dtype: string;
  /** The tfjs dtype the values become (`float32`, `int32` or `bool`). */
  readonly tfDtype: 'float32' | 'int32' | 'bool';
  readonly shape: readonly number[];
  /** Number of elements (the product of `shape`). */
  readonly elements: number;
  /** Byte offsets of the values, relative to the start of the byte buffer (`bufferStart`). */
  readonly begin: number;
  readonly end: number;
}

/** A validated safetensors header: everything but the values. */
export interface SafetensorsHeader {
  /** Byte offset of the byte buffer in the file: 8 + the header length. */
  readonly bufferStart: number;
  /** The whole file's length in bytes. */
  readonly byteLength: number;
  /** The tensors in header order. */
  readonly entries: readonly SafetensorsEntry[];
  /** The `__metadata__` strings, on an object without a prototype (empty when the file has none). */
  readonly metadata: Record<string, string>;
}

const ENTRY_SPECS = new WeakMap<SafetensorsEntry, DtypeSpec>();

/**
 * Reads the header length from the first 8 bytes of a safetensors file of `fileLength` bytes and
 * checks it against the limit and the file: how many bytes {@link parseSafetensorsHeader} needs
 * (8 + the header length).
 */
export function safetensorsPrefixLength(first8: Uint8Array, fileLength: number): number {
  checkUint8Array(first8);
  if (!Number.isSafeInteger(fileLength) || fileLength < 8 || first8.length < 8) {
    throw fail('file length', 'must be at least 8 bytes (the u64 header length field)', Math.min(fileLength, first8.length));
  }
  const declaredLength = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (declaredLength > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw fail('header length', `must be at most ${SAFETENSORS_MAX_HEADER_BYTES} bytes`, declaredLength);
  }
  const headerLength = Number(declaredLength);
  if (headerLength > fileLength - 8) {
    throw fail('header length', `must fit in the ${fileLength - 8} bytes that follow the length field`, headerLength);
  }
  return 8 + headerLength;
}

/**
 * Parses and validates the header of a safetensors file of `fileLength` bytes from its first
 * bytes (`prefix`, at least {@link safetensorsPrefixLength} of them), without touching the values:
 * UTF-8, strict JSON without duplicate keys, entry fields, dtypes, shapes, offsets tiling the byte
 * buffer exactly, metadata strings. Lets a reader check names and shapes, and refuse a file,
 * before reading (or allocating for) gigabytes of values.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileLength: number): SafetensorsHeader {
  const prefixLength = safetensorsPrefixLength(prefix, fileLength);
  if (prefix.length < prefixLength) {
    throw fail('header', `must be given whole (${prefixLength} bytes)`, prefix.length);
  }
  const headerLength = prefixLength - 8;
  const header = parseHeader(prefix, headerLength);
  const bufferLength = fileLength - prefixLength;
  const metadata: Record<string, string> = Object.create(null);
  const entries: HeaderEntry[] = [];
  for (const key of Object.keys(header)) {
    if (key === METADATA_KEY) readMetadata(header[key], metadata);
    else entries.push(readEntry(key, header[key], bufferLength));
  }
  checkTiling(entries, bufferLength);
  const publicEntries = entries.map((entry) => {
    const { name, dtype, spec, shape, elements, begin, end } = entry;
    const info: SafetensorsEntry = Object.freeze({ name, dtype, tfDtype: spec.tfDtype, shape: Object.freeze([...shape]), elements, begin, end });
    ENTRY_SPECS.set(info, spec);
    return info;
  });
  return Object.freeze({ bufferStart: prefixLength, byteLength: fileLength, entries: Object.freeze(publicEntries), metadata });
}

/**
 * Decodes the values of one entry of a {@link parseSafetensorsHeader} result from `bytes`, which
 * hold the entry's `end - begin` bytes (and nothing else). Returns a new typed array (float32,
 * int32, or 0/1 bytes for bool); a value outside int32 or a BOOL byte other than 0 or 1 is a
 * {@link MieSerializationError}. With `{ reuse: true }` the caller hands `bytes` over: F32 and I32
 * values aligned on 4 bytes are then returned as a view of them, without a copy.
 */
export function decodeSafetensorsEntry(
  entry: SafetensorsEntry,
  bytes: Uint8Array,
  { reuse = false }: { reuse?: boolean } = {},
): Float32Array | Int32Array | Uint8Array {
  const spec = ENTRY_SPECS.get(entry);
  if (spec === undefined) throw fail('entry', 'must come from parseSafetensorsHeader', entry);
  checkUint8Array(bytes);
  if (bytes.length !== entry.end - entry.begin) {
    throw fail(`tensor ${describeValue(entry.name)} bytes`, `must be exactly ${entry.end - entry.begin} bytes`, bytes.length);
  }
  if (reuse && LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0 && (entry.dtype === 'F32' || entry.dtype === 'I32')) {
    return entry.dtype === 'F32' ? new Float32Array(bytes.buffer, bytes.byteOffset, entry.elements) : new Int32Array(bytes.buffer, bytes.byteOffset, entry.elements);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return spec.decode(bytes, view, 0, entry.elements, entry.name);
}

/** Creates the tensor of one decoded entry (the caller owns it). */
export function safetensorsEntryTensor(entry: SafetensorsEntry, values: Float32Array | Int32Array | Uint8Array): tf.Tensor {
  try {
    return tf.tensor(values, [...entry.shape], entry.tfDtype);
  } catch (error) {
    throw fail(`tensor ${describeValue(entry.name)}`, `could not be created (${error instanceof Error ? error.message : String(error)})`, entry.shape);
  }
}

/**
 * Parses a safetensors file. F32 stays float32; F16, BF16 (exactly) and F64 (rounded to nearest)
 * become float32; I32 stays int32; U8, I8, U16, I16, U32, I64 and U64 become int32 (a value
 * outside the int32 range is an error); BOOL becomes bool. The whole format is validated (header
 * length, UTF-8, strict JSON without duplicate keys, entry fields, dtypes, shapes, offsets tiling
 * the byte buffer exactly, metadata strings) and any violation throws a
 * {@link MieSerializationError} whose message starts with `readSafetensors: `. No tensor is left
 * allocated when reading fails. The caller owns (and disposes) the returned tensors.
 */
export function readSafetensors(bytes: Uint8Array): SafetensorsContents {
  checkUint8Array(bytes);
  const header = parseSafetensorsHeader(bytes, bytes.length);
  // Decode everything before creating any tensor, so a bad value leaves nothing to dispose.
  const decoded = header.entries.map((entry) =>
    decodeSafetensorsEntry(entry, bytes.subarray(header.bufferStart + entry.begin, header.bufferStart + entry.end)),
  );
  const tensors: Record<string, tf.Tensor> = Object.create(null);
  const created: tf.Tensor[] = [];
  try {
    header.entries.forEach((entry, i) => {
      const tensor = safetensorsEntryTensor(entry, decoded[i]);
      created.push(tensor);
      tensors[entry.name] = tensor;
    });
  } catch (error) {
    for (const tensor of created) tensor.dispose();
    throw error;
  }
  return { tensors, metadata: header.metadata };
}

function checkUint8Array(bytes: unknown): asserts bytes is Uint8Array {
  // Buffers from another realm (Jest, worker threads) fail instanceof but carry the tag.
  if (Object.prototype.toString.call(bytes) !== '[object Uint8Array]') {
    throw fail('argument "bytes"', 'must be a Uint8Array', bytes);
  }
}

/**
 * A safetensors file not yet materialised: its length and its bytes as a sequence of chunks
 * (the header, then each tensor's values, read from the backend when the chunk is reached), so
 * that a file of any size can be written with bounded memory. {@link encodeSafetensors} makes one.
 */
export interface SafetensorsEncoding {
  /** Total length of the file in bytes. */
  readonly byteLength: number;
  /** The file's bytes in order; each call starts again from the beginning. Reads the values synchronously. */
  chunks(): Iterable<Uint8Array>;
  /** The same bytes, reading each tensor's values asynchronously (`await tensor.data()`): what GPU backends need. */
  chunksAsync(): AsyncIterable<Uint8Array>;
}

/** Largest chunk {@link encodeSafetensors} yields: file writes are bounded (Node refuses one write of 2 GiB or more). */
const CHUNK_BYTES = 1 << 30;

/**
 * Plans the safetensors file of `tensors` (float32 as F32, int32 as I32, bool as BOOL) in key
 * insertion order, with `metadata` as `__metadata__` when given and non-empty; the header is
 * padded with spaces so that the byte buffer starts 8-byte aligned, as the reference implementation
 * does. Everything is validated here; the values are read only when {@link SafetensorsEncoding.chunks}
 * reaches them, so the tensors must stay alive until then. Throws a {@link MieSerializationError}
 * for an empty or reserved name, a value that is not a live tensor, any other dtype, or a
 * non-string metadata value.
 */
export function encodeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): SafetensorsEncoding {
  if (!isJsonObjectLike(tensors)) {
    throw new MieSerializationError(errorMessage(WRITER, 'argument "tensors"', 'must be an object mapping names to tensors', tensors));
  }
  const headerParts: string[] = [];
  if (metadata !== undefined) {
    if (!isJsonObjectLike(metadata)) {
      throw new MieSerializationError(errorMessage(WRITER, 'argument "metadata"', 'must be an object of string values', metadata));
    }
    const metadataParts = Object.keys(metadata).map((key) => {
      const value = metadata[key];
      if (typeof value !== 'string') {
        throw new MieSerializationError(errorMessage(WRITER, `metadata ${describeValue(key)}`, 'must be a string', value));
      }
      return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    });
    if (metadataParts.length > 0) headerParts.push(`${JSON.stringify(METADATA_KEY)}:{${metadataParts.join(',')}}`);
  }

  const plans: tf.Tensor[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors)) {
    const label = `tensor ${describeValue(name)}`;
    if (name === '' || name === METADATA_KEY) {
      throw new MieSerializationError(errorMessage(WRITER, 'tensor name', `must be non-empty and not ${JSON.stringify(METADATA_KEY)}`, name));
    }
    const tensor = tensors[name];
    if (!(tensor instanceof tf.Tensor)) throw new MieSerializationError(errorMessage(WRITER, label, 'must be a tf.Tensor', tensor));
    if (tensor.isDisposed) throw new MieSerializationError(errorMessage(WRITER, label, 'must not be disposed'));
    const dtype = WRITE_DTYPES.get(tensor.dtype);
    if (dtype === undefined) {
      throw new MieSerializationError(errorMessage(WRITER, `${label} dtype`, 'must be float32, int32 or bool', tensor.dtype));
    }
    const end = offset + tensor.size * dtype.size;
    headerParts.push(
      `${JSON.stringify(name)}:{"dtype":"${dtype.name}","shape":[${tensor.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    plans.push(tensor);
    offset = end;
  }

  const headerBytes = new TextEncoder().encode(`{${headerParts.join(',')}}`);
  const paddedLength = Math.ceil(headerBytes.length / 8) * 8;
  if (paddedLength > SAFETENSORS_MAX_HEADER_BYTES) {
    throw new MieSerializationError(
      errorMessage(WRITER, 'header length', `must be at most ${SAFETENSORS_MAX_HEADER_BYTES} bytes for readers to accept it`, paddedLength),
    );
  }
  const prefix = new Uint8Array(8 + paddedLength);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(paddedLength), true);
  prefix.set(headerBytes, 8);
  prefix.fill(0x20, 8 + headerBytes.length);
  return {
    byteLength: prefix.length + offset,
    *chunks() {
      yield prefix;
      for (const tensor of plans) {
        if (tensor.isDisposed) throw new MieSerializationError(errorMessage(WRITER, 'tensor', 'was disposed before its values were written'));
        yield* valueChunks(tensor, readSync(tensor, WRITER, 'the asynchronous writers (encoding.chunksAsync(), model.toBuffersAsync(), model.save())') as tf.DataTypeMap[tf.NumericDataType]);
      }
    },
    async *chunksAsync() {
      yield prefix;
      for (const tensor of plans) {
        if (tensor.isDisposed) throw new MieSerializationError(errorMessage(WRITER, 'tensor', 'was disposed before its values were written'));
        yield* valueChunks(tensor, await tensor.data());
      }
    },
  };
}

/**
 * Serialises `tensors` as one safetensors file in memory: {@link encodeSafetensors}, materialised.
 * A file too large for one buffer is a {@link MieSerializationError}: write it to disk with
 * `writeFilesAtomically(dir, [[name, encodeSafetensors(...)]])` instead, which streams it.
 */
export function writeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const encoding = encodeSafetensors(tensors, metadata);
  let out: Uint8Array;
  try {
    out = new Uint8Array(encoding.byteLength);
  } catch {
    throw new MieSerializationError(
      errorMessage(WRITER, 'file', 'is too large for one buffer in this runtime; stream it to disk with writeFilesAtomically(dir, [[name, encodeSafetensors(tensors)]]) (model.save does)', `${encoding.byteLength} bytes`),
    );
  }
  let offset = 0;
  for (const chunk of encoding.chunks()) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** {@link writeSafetensors}, reading the values asynchronously (GPU backends). */
export async function writeSafetensorsAsync(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Promise<Uint8Array> {
  const encoding = encodeSafetensors(tensors, metadata);
  let out: Uint8Array;
  try {
    out = new Uint8Array(encoding.byteLength);
  } catch {
    throw new MieSerializationError(errorMessage(WRITER, 'file', 'is too large for one buffer in this runtime; stream it to disk with writeFilesAtomically', `${encoding.byteLength} bytes`));
  }
  let offset = 0;
  for await (const chunk of encoding.chunksAsync()) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** The little-endian bytes of a tensor's values (`data`), in chunks of at most {@link CHUNK_BYTES}. */
function* valueChunks(tensor: tf.Tensor, data: tf.DataTypeMap[tf.NumericDataType]): Generator<Uint8Array> {
  if (tensor.dtype === 'bool') {
    for (let start = 0; start < data.length; start += CHUNK_BYTES) {
      const count = Math.min(CHUNK_BYTES, data.length - start);
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = data[start + i] ? 1 : 0;
      yield out;
    }
    return;
  }
  // Byte views rather than element copies keep NaN payloads bit-exact (and copy nothing).
  const typed = tensor.dtype === 'float32' ? asTyped(data, Float32Array) : asTyped(data, Int32Array);
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  for (let start = 0; start < bytes.length; start += CHUNK_BYTES) {
    const chunk = bytes.subarray(start, Math.min(bytes.length, start + CHUNK_BYTES));
    if (LITTLE_ENDIAN_HOST) {
      yield chunk;
    } else {
      const swapped = chunk.slice();
      swapBytes(swapped, 4);
      yield swapped;
    }
  }
}

function asTyped<T extends Float32Array | Int32Array>(data: ArrayLike<unknown>, ctor: { new (n: number): T; from(a: ArrayLike<number>): T }): T {
  return data instanceof ctor ? (data as T) : ctor.from(data as ArrayLike<number>);
}

function parseHeader(bytes: Uint8Array, headerLength: number): Record<string, unknown> {
  // The spec requires the header to open with '{'; checking it first gives the clearest message.
  if (headerLength === 0 || bytes[8] !== 0x7b) {
    const received = headerLength === 0 ? 'an empty header' : `first byte 0x${bytes[8].toString(16).padStart(2, '0')}`;
    throw new MieSerializationError(`${MODULE}: header must be a JSON object starting with '{'. Received: ${received}.`);
  }
  const raw = bytes.subarray(8, 8 + headerLength);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw new MieSerializationError(`${MODULE}: header must be valid UTF-8. Received: ${headerLength} bytes that are not.`);
  }
  let parsed: unknown;
  try {
    parsed = parseStrictJson(text);
  } catch (error) {
    if (!(error instanceof StrictJsonError)) throw error;
    const byte = 8 + new TextEncoder().encode(text.slice(0, error.position)).length;
    throw new MieSerializationError(
      `${MODULE}: header must be strict JSON (RFC 8259, no duplicate keys). Received: ${error.reason} at byte ${byte} of the file.`,
    );
  }
  if (!isJsonObjectLike(parsed)) throw fail('header', 'must be a JSON object', parsed);
  return parsed;
}

function readMetadata(value: unknown, into: Record<string, string>): void {
  if (!isJsonObjectLike(value)) throw fail(`field "${METADATA_KEY}"`, 'must be an object of string values', value);
  for (const key of Object.keys(value)) {
    const item = value[key];
    if (typeof item !== 'string') throw fail(`${METADATA_KEY} entry ${describeValue(key)}`, 'must be a string', item);
    into[key] = item;
  }
}

function readEntry(name: string, value: unknown, bufferLength: number): HeaderEntry {
  if (name === '') throw fail('tensor name', 'must be a non-empty string', name);
  const label = `tensor ${describeValue(name)}`;
  if (!isJsonObjectLike(value)) throw fail(label, 'must be an object with "dtype", "shape" and "data_offsets"', value);
  for (const key of Object.keys(value)) {
    if (!(ENTRY_FIELDS as readonly string[]).includes(key)) {
      throw fail(`${label} field ${describeValue(key)}`, 'is not allowed (expected only "dtype", "shape" and "data_offsets")', value[key]);
    }
  }
  for (const field of ENTRY_FIELDS) {
    if (!Object.prototype.hasOwnProperty.call(value, field)) {
      throw new MieSerializationError(`${MODULE}: ${label} is missing the field "${field}".`);
    }
  }

  const dtype = value.dtype;
  if (typeof dtype === 'string' && UNSUPPORTED_DTYPES.has(dtype)) {
    throw fail(`${label} dtype`, `is an unsupported dtype (tfjs has no such type; supported: ${[...DTYPES.keys()].join(', ')})`, dtype);
  }
  const spec = typeof dtype === 'string' ? DTYPES.get(dtype) : undefined;
  if (typeof dtype !== 'string' || spec === undefined) {
    throw fail(`${label} dtype`, `must be one of the safetensors dtypes ${[...DTYPES.keys(), ...UNSUPPORTED_DTYPES].join(', ')}`, dtype);
  }

  const shape = value.shape;
  if (!Array.isArray(shape) || !shape.every(isNonNegativeSafeInteger)) {
    throw fail(`${label} shape`, 'must be an array of non-negative safe integers', shape);
  }
  const offsets = value.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeSafeInteger)) {
    throw fail(`${label} data_offsets`, 'must be [begin, end], two non-negative safe integers', offsets);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw fail(`${label} data_offsets`, 'must have begin <= end', offsets);
  if (end > bufferLength) throw fail(`${label} data_offsets`, `must lie within the ${bufferLength}-byte buffer`, offsets);

  const elements = elementCountUpTo(shape, bufferLength);
  const byteSize = end - begin;
  if (elements === undefined || elements * spec.size !== byteSize) {
    const expected =
      elements === undefined
        ? `more than the whole ${bufferLength}-byte buffer`
        : `${elements * spec.size} (${elements} ${dtype} elements of ${spec.size} bytes)`;
    throw fail(`${label} byte size (data_offsets end - begin)`, `must match shape ${describeValue(shape)}: expected ${expected}`, byteSize);
  }
  return { name, dtype, spec, shape, elements, begin, end };
}

/** Product of the dims, or undefined as soon as it exceeds `limit` (so it never overflows). */
function elementCountUpTo(shape: number[], limit: number): number | undefined {
  if (shape.includes(0)) return 0;
  let count = 1;
  for (const dim of shape) {
    count *= dim;
    if (count > limit) return undefined;
  }
  return count;
}

function checkTiling(entries: HeaderEntry[], bufferLength: number): void {
  // Sorting by end as well puts an empty tensor before a non-empty one that begins at the same byte.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: HeaderEntry | undefined;
  for (const entry of sorted) {
    const label = `tensor ${describeValue(entry.name)} data_offsets`;
    if (entry.begin < cursor) {
      throw fail(label, `overlap tensor ${describeValue(previous?.name)}, which ends at byte ${cursor}`, [entry.begin, entry.end]);
    }
    if (entry.begin > cursor) {
      throw fail(label, `must begin at byte ${cursor}, leaving no hole in the buffer (tensors must be contiguous)`, [entry.begin, entry.end]);
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor !== bufferLength) {
    throw fail('byte buffer length', `must be exactly ${cursor} (the end of the last tensor), so there are trailing bytes`, bufferLength);
  }
}

function decodeBool(bytes: Uint8Array, _view: DataView, start: number, count: number, name: string): Uint8Array {
  const out = bytes.slice(start, start + count);
  const bad = out.findIndex((byte) => byte > 1);
  if (bad >= 0) throw fail(`tensor ${describeValue(name)} (BOOL) element ${bad}`, 'must be the byte 0 or 1', out[bad]);
  return out;
}

function integerDecoder(
  dtype: string,
  size: number,
  read: (view: DataView, offset: number) => number | bigint,
): DtypeSpec['decode'] {
  return (_bytes, view, start, count, name) => {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const value = read(view, start + i * size);
      if (value < INT32_MIN || value > INT32_MAX) {
        throw fail(`tensor ${describeValue(name)} (${dtype}) element ${i}`, `must fit in int32 [${INT32_MIN}, ${INT32_MAX}]`, value);
      }
      out[i] = Number(value);
    }
    return out;
  };
}

/** Exact IEEE half to float: every half value, subnormals included, is representable in float32. */
function halfToNumber(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (0x400 + fraction) * 2 ** (exponent - 25);
}

function decodeF16(_bytes: Uint8Array, view: DataView, start: number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = halfToNumber(view.getUint16(start + 2 * i, true));
  return out;
}

function decodeBF16(_bytes: Uint8Array, view: DataView, start: number, count: number): Float32Array {
  const out = new Float32Array(count);
  // bfloat16 is the top half of a float32, so shifting the bits is exact (NaN payloads included).
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) bits[i] = view.getUint16(start + 2 * i, true) << 16;
  return out;
}

function decodeF64(_bytes: Uint8Array, view: DataView, start: number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + 8 * i, true);
  return out;
}

function copyLittleEndian<T extends Float32Array | Int32Array>(bytes: Uint8Array, start: number, out: T): T {
  // Copying bytes (not reading through an aligned view) works at any offset and keeps NaN payloads.
  const outBytes = new Uint8Array(out.buffer);
  outBytes.set(bytes.subarray(start, start + out.byteLength));
  if (!LITTLE_ENDIAN_HOST) swapBytes(outBytes, out.BYTES_PER_ELEMENT);
  return out;
}

function swapBytes(bytes: Uint8Array, elementSize: number): void {
  for (let i = 0; i < bytes.length; i += elementSize) bytes.subarray(i, i + elementSize).reverse();
}

function isJsonObjectLike(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeSafeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function fail(subject: string, expected: string, received: unknown): MieSerializationError {
  return new MieSerializationError(errorMessage(MODULE, subject, expected, received));
}
