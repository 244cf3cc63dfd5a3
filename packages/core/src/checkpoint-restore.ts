/**
 * The checkpoint format, and rebuilding a model from it wherever its bytes come from (files,
 * buffers, a URL, IndexedDB): the config is validated, the state dict it implies is learnt without
 * allocating and compared with the weights' headers, and only then is the model built from the
 * values. No runtime-specific code here: the sources live in checkpoint-directory.ts (Node files),
 * checkpoint-url.ts (fetch) and checkpoint-indexeddb.ts.
 */
import type { BaseModel } from './base-model';
import { buildFromValues, stateLayout, type StateLayout } from './construction';
import { MieError, MieResourceError, MieSerializationError, describeValue, listForMessage } from './errors';
import { checkAllocation } from './memory';
import { registeredClass, registeredModels, type ModelClass } from './model-registry';
import { parseSafetensorsHeader, safetensorsEntryTensor, decodeSafetensorsEntry, type SafetensorsEntry } from './safetensors';
import { parseStrictJson } from './strict-json';
import { tf } from './tfjs';

/** The format written by this version. Readers accept formats up to this one. */
export const FORMAT_VERSION = 1;
/** File names inside a checkpoint directory. */
export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
/** The index of a sharded checkpoint (Hugging Face's name). */
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
/** Largest weights file `save` writes before it shards (Hugging Face's default, 5 GB). */
export const DEFAULT_MAX_SHARD_SIZE = 5_000_000_000;
/** Largest config.json accepted (a config is small; a bigger file is hostile). */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Largest index accepted (a million tensor names fit). */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;
/** Numbers in a loaded config up to this are always allowed (lengths of small models). */
const MIN_CONFIG_NUMBER_LIMIT = 1 << 16;
/** Tables a config may make the model precompute: this many values, or 4 per weight if more. */
const MIN_BUFFER_LIMIT = 1 << 24;
/** `model-00001-of-00003.safetensors` */
export const SHARD_NAME = /^model-(\d{5})-of-(\d{5})\.safetensors$/;

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const CORE_VERSION: string = require('../package.json').version;

/** The parsed content of `config.json`. */
export interface CheckpointHeader {
  format: 'mie';
  formatVersion: number;
  className: string;
  config: Record<string, unknown>;
  checkpointId: string;
  versions: Record<string, string>;
}

/** A checkpoint as bytes, for code without a file system. */
export interface CheckpointBuffers {
  /** The bytes of `config.json`. */
  config: Uint8Array;
  /** The bytes of `model.safetensors`. */
  weights: Uint8Array;
}

export function fail(where: string, message: string): never {
  throw new MieSerializationError(`${where}: ${message}`);
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether `cls` is BaseModel itself (loading through it accepts any registered class). */
let baseModelClass: ModelClass | undefined;
export function setBaseModelClass(cls: ModelClass): void {
  baseModelClass = cls;
}
const isBaseModelClass = (cls: ModelClass) => cls === baseModelClass;

export function decodeJson(bytes: Uint8Array, file: string, where: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail(where, `${file} is not valid UTF-8`);
  }
  try {
    return parseStrictJson(text);
  } catch (error) {
    fail(where, `${file} is not valid JSON (${(error as Error).message})`);
  }
}

export function decodeHeader(bytes: Uint8Array, where: string): CheckpointHeader {
  if (bytes.length > MAX_CONFIG_BYTES) fail(where, `${CONFIG_FILE} is ${bytes.length} bytes, above the ${MAX_CONFIG_BYTES}-byte limit`);
  return validateHeader(decodeJson(bytes, CONFIG_FILE, where), where);
}

function validateHeader(value: unknown, where: string): CheckpointHeader {
  if (!isObject(value)) fail(where, `${CONFIG_FILE} must hold a JSON object. Received: ${describeValue(value)}`);
  if (value.format !== 'mie') fail(where, `${CONFIG_FILE} field "format" must be "mie". Received: ${describeValue(value.format)}`);
  const version = value.formatVersion;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    fail(where, `${CONFIG_FILE} field "formatVersion" must be a positive integer. Received: ${describeValue(version)}`);
  }
  if (version > FORMAT_VERSION) {
    fail(where, `${CONFIG_FILE} has formatVersion ${version}, newer than this @mie/core (${CORE_VERSION}) reads (${FORMAT_VERSION}); upgrade @mie/core`);
  }
  if (typeof value.className !== 'string' || value.className === '') {
    fail(where, `${CONFIG_FILE} field "className" must be a non-empty string. Received: ${describeValue(value.className)}`);
  }
  if (!isObject(value.config)) fail(where, `${CONFIG_FILE} field "config" must be an object. Received: ${describeValue(value.config)}`);
  if (typeof value.checkpointId !== 'string') {
    fail(where, `${CONFIG_FILE} field "checkpointId" must be a string. Received: ${describeValue(value.checkpointId)}`);
  }
  const versions = value.versions ?? {};
  if (!isObject(versions) || Object.values(versions).some((v) => typeof v !== 'string')) {
    fail(where, `${CONFIG_FILE} field "versions" must map package names to strings. Received: ${describeValue(versions)}`);
  }
  return value as unknown as CheckpointHeader;
}

/** Where a checkpoint's tensors are: validated headers, and the values on demand. */
export interface WeightsSource {
  /** The file whose metadata is the checkpoint's: `model.safetensors` or the index. */
  label: string;
  /** Name -> header entry and the file it lives in (an index into the source's files). */
  entries: Map<string, { entry: SafetensorsEntry; file: number }>;
  /** Checkpoint-level metadata: the single file's, or the index's. */
  metadata: Record<string, string>;
}

/** The files changed while they were read (a concurrent save): read them again. */
export class ChangedWhileReading extends MieSerializationError {}

/** What a sharded checkpoint's index says: its metadata (strings), and the tensors of each shard. */
export interface WeightsIndex {
  metadata: Record<string, string>;
  shards: Map<string, Set<string>>;
}

/** Parses and checks `model.safetensors.index.json` (shard names must be plain `*.safetensors` file names). */
export function parseWeightsIndex(bytes: Uint8Array, where: string): WeightsIndex {
  if (bytes.length > MAX_INDEX_BYTES) fail(where, `${WEIGHTS_INDEX_FILE} is ${bytes.length} bytes, above the ${MAX_INDEX_BYTES}-byte limit`);
  const index = decodeJson(bytes, WEIGHTS_INDEX_FILE, where);
  if (!isObject(index) || !isObject(index.weight_map)) fail(where, `${WEIGHTS_INDEX_FILE} must hold an object with a "weight_map" object. Received: ${describeValue(index)}`);
  const rawMetadata = index.metadata ?? {};
  if (!isObject(rawMetadata)) fail(where, `${WEIGHTS_INDEX_FILE} field "metadata" must be an object. Received: ${describeValue(rawMetadata)}`);
  const metadata: Record<string, string> = Object.create(null);
  for (const [key, value] of Object.entries(rawMetadata)) if (typeof value === 'string') metadata[key] = value;
  const shards = new Map<string, Set<string>>();
  for (const [name, file] of Object.entries(index.weight_map)) {
    if (typeof file !== 'string' || !/^[^/\\]+\.safetensors$/.test(file) || file.startsWith('.')) {
      fail(where, `${WEIGHTS_INDEX_FILE} maps ${describeValue(name)} to ${describeValue(file)}; shard names must be plain file names ending in .safetensors`);
    }
    if (!shards.has(file)) shards.set(file, new Set());
    shards.get(file)!.add(name);
  }
  if (shards.size > 100_000) fail(where, `${WEIGHTS_INDEX_FILE} lists ${shards.size} shards`);
  return { metadata, shards };
}

/** Checks that a shard holds exactly the tensors the index lists for it. */
export function checkShard(shard: string, listed: readonly SafetensorsEntry[], expected: Set<string>, where: string): void {
  const names = new Set(listed.map((entry) => entry.name));
  const missing = [...expected].filter((name) => !names.has(name));
  const extra = [...names].filter((name) => !expected.has(name));
  if (missing.length || extra.length) {
    const problems = [
      missing.length ? `the index lists ${listForMessage(missing.map((n) => describeValue(n)))}, which the shard lacks` : '',
      extra.length ? `the shard holds ${listForMessage(extra.map((n) => describeValue(n)))}, which the index does not list` : '',
    ].filter(Boolean);
    fail(where, `${shard} does not match ${WEIGHTS_INDEX_FILE}: ${problems.join('; ')}`);
  }
}

/**
 * Rebuilds a model from the bytes of `config.json` and one safetensors file (`fromBuffers`,
 * IndexedDB, a URL): synchronous, nothing allocated before the layout check.
 */
export function restoreFromBytes(expected: ModelClass, config: Uint8Array, weights: Uint8Array, where: string): BaseModel {
  let header;
  try {
    header = parseSafetensorsHeader(weights, weights.length);
  } catch (error) {
    fail(where, `${WEIGHTS_FILE}: ${(error as Error).message}`);
  }
  const source: WeightsSource = { label: WEIGHTS_FILE, entries: new Map(header.entries.map((entry) => [entry.name, { entry, file: 0 }])), metadata: header.metadata };
  const plan = planRestore(expected, config, source, where);
  return buildModel(plan, source, (name) => {
    const { entry } = source.entries.get(name)!;
    return decodeSafetensorsEntry(entry, weights.subarray(header.bufferStart + entry.begin, header.bufferStart + entry.end));
  }, where);
}

/**
 * Refuses, before anything is built, a config with a number larger than the checkpoint could
 * describe: every size of a real model (a vocabulary, a width, a length) is at most its number of
 * weights, or small.
 */
function checkConfigSize(config: unknown, elements: number, where: string): void {
  const limit = Math.max(elements, MIN_CONFIG_NUMBER_LIMIT);
  const visit = (value: unknown, key: string, depth: number): void => {
    if (typeof value === 'number' && Math.abs(value) > limit) {
      fail(where, `${CONFIG_FILE} field "config.${key}" is ${value}, larger than any size this ${elements}-weight checkpoint can describe (limit ${limit})`);
    }
    if (depth < 8 && typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) visit(v, key ? `${key}.${k}` : k, depth + 1);
    }
  };
  visit(config, '', 0);
}

export interface RestorePlan {
  cls: ModelClass;
  header: CheckpointHeader;
  layout: StateLayout;
}

/**
 * Everything about a checkpoint that can be checked without its values: config.json (or the
 * config the weights embed, when the two come from different saves), the class, the config's
 * numbers, and the state dict the config implies against the weights' headers (names and
 * shapes), learnt without allocating. Throws a MieSerializationError naming what differs.
 */
export function planRestore(expected: ModelClass, configBytes: Uint8Array, source: WeightsSource, where: string): RestorePlan {
  let header = decodeHeader(configBytes, where);
  if (source.metadata['mie.checkpointId'] !== header.checkpointId) {
    // The weights are from another save than config.json (a crash between the two renames,
    // or files copied by hand): the config embedded in the weights describes them exactly.
    const embedded = source.metadata['mie.config'];
    if (embedded === undefined) {
      fail(where, `${CONFIG_FILE} and ${source.label} come from different checkpoints, and ${source.label} embeds no config`);
    }
    header = decodeHeader(new TextEncoder().encode(embedded), `${where} (config embedded in ${source.label})`);
  }
  const cls = registeredClass(header.className);
  if (!cls) {
    fail(where, `class "${header.className}" is not registered (registered: ${registeredModels().join(', ') || 'none'}); import the package that defines it`);
  }
  if (!isBaseModelClass(expected) && !(cls === expected || cls.prototype instanceof expected)) {
    fail(where, `the checkpoint holds a ${header.className}, which is not a ${expected.name}`);
  }
  const entries = [...source.entries.values()].map(({ entry }) => entry);
  const elements = entries.reduce((total, entry) => total + entry.elements, 0);
  checkConfigSize(header.config, elements, where);
  let layout: StateLayout;
  try {
    layout = stateLayout(() => new cls(header.config as never), {
      // Placeholders cost no tensor memory: the bounds only keep a hostile config from building
      // millions of modules; a config slightly off is reported by the comparison below.
      maxTensors: 2 * entries.length + 64,
      maxElements: 4 * elements + (1 << 20),
      maxBufferElements: Math.max(MIN_BUFFER_LIMIT, 4 * elements),
    });
  } catch (error) {
    if (error instanceof MieResourceError) {
      fail(where, `config for ${header.className} describes a bigger model than the weights hold (${entries.length} tensors, ${elements} values): ${error.message.replace(/^stateLayout: /, '')}`);
    }
    return fail(where, `config for ${header.className} is invalid: ${(error as Error).message}`);
  }
  compareLayout(layout, source, `${where}: the weights do not match the config of ${header.className}`);
  return { cls, header, layout };
}

/** Names and shapes of the state dict a config implies against the weights' headers. */
function compareLayout(layout: StateLayout, source: WeightsSource, prefix: string): void {
  const implied = new Map(layout.entries.map((entry) => [entry.name, entry]));
  const quoted = (keys: string[]) => listForMessage(keys.map((key) => describeValue(key)));
  const missing = layout.entries.map((entry) => entry.name).filter((name) => !source.entries.has(name));
  const unexpected = [...source.entries.keys()].filter((name) => !implied.has(name));
  const problems: string[] = [];
  for (const [name, { entry }] of source.entries) {
    const wanted = implied.get(name);
    if (wanted === undefined) continue;
    if (!tf.util.arraysEqual([...entry.shape], wanted.shape)) {
      problems.push(`${describeValue(name)} has shape [${entry.shape.join(', ')}], expected [${wanted.shape.join(', ')}]`);
    }
  }
  if (missing.length) problems.push(`missing keys: ${quoted(missing)}`);
  if (unexpected.length) problems.push(`unexpected keys: ${quoted(unexpected)}`);
  if (problems.length) {
    const shown = problems.length > 10 ? [...problems.slice(0, 10), `${problems.length - 10} more problems`] : problems;
    throw new MieSerializationError(`${prefix}: ${shown.join('; ')}.`);
  }
}

/** Builds the planned model from the values (taken by name, each once), in evaluation mode. */
export function buildModel(
  plan: RestorePlan,
  source: WeightsSource,
  values: (name: string) => Float32Array | Int32Array | Uint8Array,
  where: string,
): BaseModel {
  const { cls, header, layout } = plan;
  checkAllocation(`${where}`, 'the model', 4 * (layout.parameterElements + layout.bufferElements));
  let model: BaseModel;
  try {
    model = buildFromValues(
      () => new cls(header.config as never),
      layout,
      (name) => {
        const { entry } = source.entries.get(name)!;
        return safetensorsEntryTensor(entry, values(name));
      },
      where,
    );
  } catch (error) {
    if (error instanceof MieError) throw error;
    return fail(where, `config for ${header.className} is invalid: ${(error as Error).message}`);
  }
  return model.eval();
}
