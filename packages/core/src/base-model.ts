/**
 * `BaseModel`: a `Module` that keeps its constructor options as `config` and so can be saved
 * and rebuilt from files (API.md section 4):
 *
 *   dir/config.json        { format: "mie", formatVersion, className, config, checkpointId, versions }
 *   dir/model.safetensors  float32 weights in PyTorch layout, named as in `stateDict()`
 *
 * or, for weights above `maxShardSize` (5 GB by default, as Hugging Face), the sharded layout of
 * the Hugging Face ecosystem: `model-00001-of-0000N.safetensors` files and
 * `model.safetensors.index.json` (`{ metadata: { total_size, ... }, weight_map: { name: file } }`).
 *
 * Every weights file (or the index) carries the same random `checkpointId` as config.json and
 * embeds the whole config.json. Saving writes every file to a temporary name, flushes it, and
 * renames them weights first, config.json last: if a crash falls between two renames, the ids
 * differ and loading uses the config embedded in the (new) weights, so a directory always loads
 * as either the old or the new checkpoint. Shards that a save replaces are kept as backups until
 * the save completes, so an interrupted sharded save still leaves the old checkpoint whole.
 *
 * Loading treats the files as hostile. It validates config.json and every safetensors header,
 * then learns the state dict the config implies without allocating anything (`stateLayout`,
 * bounded by the size of the weights), compares names and shapes with the headers, and only then
 * reads the values and builds the model directly from them (no random initialisation first).
 */
import * as path from 'node:path';
import { writeFilesAtomically, previousVersions, type FileContent, type FileSystem } from './atomic-files';
import { ready } from './backend';
import { MissingFileError, openRegularFile, openSafetensorsFile, readRegularFile, type SafetensorsFile } from './checkpoint-files';
import { buildFromValues, stateLayout, type StateLayout } from './construction';
import { MieConfigError, MieError, MieResourceError, MieSerializationError, describeValue, listForMessage } from './errors';
import { checkAllocation } from './memory';
import { Module } from './module';
import {
  decodeSafetensorsEntry,
  encodeSafetensors,
  parseSafetensorsHeader,
  safetensorsEntryTensor,
  writeSafetensors,
  type SafetensorsEntry,
} from './safetensors';
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
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Largest index accepted (a million tensor names fit). */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;
/** Numbers in a loaded config up to this are always allowed (lengths of small models). */
const MIN_CONFIG_NUMBER_LIMIT = 1 << 16;
/** Tables a config may make the model precompute: this many values, or 4 per weight if more. */
const MIN_BUFFER_LIMIT = 1 << 24;
/** `model-00001-of-00003.safetensors` */
const SHARD_NAME = /^model-(\d{5})-of-(\d{5})\.safetensors$/;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const CORE_VERSION: string = require('../package.json').version;

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

/** Options of {@link BaseModel.save}. */
export interface SaveOptions {
  /**
   * Largest weights file in bytes: bigger weights are written as Hugging Face shards
   * (`model-0000k-of-0000N.safetensors` + `model.safetensors.index.json`). A tensor larger than
   * this gets a shard of its own. Default {@link DEFAULT_MAX_SHARD_SIZE} (5 GB).
   */
  maxShardSize?: number;
  /** File system to write with (tests inject failures). Default: Node's. */
  fs?: FileSystem;
}

/** The files of a checkpoint, ready for `writeFilesAtomically` (see {@link BaseModel.checkpointFiles}). */
export interface CheckpointFiles {
  /** Name -> content, in commit order (config.json last). */
  files: Array<[string, FileContent]>;
  /** Names whose previous version must survive until the group is in place (shards). */
  keepPrevious: string[];
  /** Names of the other layout, removed once the group is in place. */
  remove: (name: string) => boolean;
}

/** A model class that can be rebuilt from its config. */
export type ModelClass<M extends BaseModel = BaseModel> = new (config: never) => M;

const registry = new Map<string, ModelClass>();
const names = new Map<ModelClass, string>();

/**
 * Registers a model class so that `BaseModel.load` can rebuild it from the name stored in
 * `config.json`. Call it once, next to the class definition. `name` defaults to the class name.
 */
export function registerModel(cls: ModelClass, name: string = cls.name): void {
  if (!name) throw new MieConfigError('registerModel: the class needs a name. Received: an anonymous class.');
  const existing = registry.get(name);
  if (existing && existing !== cls) {
    throw new MieConfigError(`registerModel: the name "${name}" is already registered by another class.`);
  }
  registry.set(name, cls);
  names.set(cls, name);
}

/** The names of every registered model class. */
export function registeredModels(): string[] {
  return [...registry.keys()].sort();
}

function fail(where: string, message: string): never {
  throw new MieSerializationError(`${where}: ${message}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function decodeJson(bytes: Uint8Array, file: string, where: string): unknown {
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

function decodeHeader(bytes: Uint8Array, where: string): CheckpointHeader {
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

/** Checks that `config` survives JSON unchanged (no functions, tensors, NaN, cycles...). */
function serializableConfig(model: BaseModel, className: string): Record<string, unknown> {
  let text: string;
  try {
    text = JSON.stringify(model.config);
  } catch (error) {
    throw new MieSerializationError(`${className}.save: config is not JSON-serialisable (${(error as Error).message}).`);
  }
  const copy = JSON.parse(text) as unknown;
  if (typeof copy !== 'object' || copy === null || Array.isArray(copy) || !deepEqual(copy, model.config)) {
    throw new MieSerializationError(`${className}.save: config must be a plain object that survives JSON unchanged (no functions, tensors, NaN or undefined in arrays).`);
  }
  return copy as Record<string, unknown>;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Where a checkpoint's tensors are: validated headers, and the values on demand. */
interface WeightsSource {
  /** The file whose metadata is the checkpoint's: `model.safetensors` or the index. */
  label: string;
  /** Name -> header entry and the file it lives in (an index into `files`). */
  entries: Map<string, { entry: SafetensorsEntry; file: number }>;
  /** Checkpoint-level metadata: the single file's, or the index's. */
  metadata: Record<string, string>;
}

/** Base class of every model that saves and loads (the design's `BaseModel`). */
export abstract class BaseModel<Config extends object = object> extends Module {
  /** The constructor options: `new (this.constructor)(this.config)` rebuilds the architecture. */
  abstract readonly config: Config;

  /** The registered name of this model's class. */
  get className(): string {
    const name = names.get(this.constructor as ModelClass);
    if (!name) {
      throw new MieSerializationError(
        `${this.constructor.name}: the class is not registered; call registerModel(${this.constructor.name}) once next to its definition so that it can be saved and loaded.`,
      );
    }
    return name;
  }

  #header(): { header: CheckpointHeader; headerText: string } {
    if (this.isDisposed) throw new MieSerializationError(`${this.constructor.name}.save: the model was disposed.`);
    const className = this.className;
    const header: CheckpointHeader = {
      format: 'mie',
      formatVersion: FORMAT_VERSION,
      className,
      config: serializableConfig(this, className),
      checkpointId: crypto.randomUUID(),
      versions: { '@mie/core': CORE_VERSION, '@tensorflow/tfjs-core': tf.version_core },
    };
    return { header, headerText: JSON.stringify(header, null, 2) + '\n' };
  }

  /** The checkpoint as bytes: `config.json` and `model.safetensors` (one file, whatever its size). */
  toBuffers(): CheckpointBuffers {
    const { header, headerText } = this.#header();
    const weights = writeSafetensors(this.stateDict(), {
      format: 'mie',
      'mie.checkpointId': header.checkpointId,
      'mie.config': headerText,
    });
    return { config: new TextEncoder().encode(headerText), weights };
  }

  /**
   * The files of this model's checkpoint, streamed (values are read from the backend as they are
   * written), for `writeFilesAtomically(dir, files, { keepPrevious, remove })`: what `save` writes.
   * Callers may append files of their own (they are renamed after config.json).
   */
  checkpointFiles({ maxShardSize = DEFAULT_MAX_SHARD_SIZE }: Pick<SaveOptions, 'maxShardSize'> = {}): CheckpointFiles {
    if (typeof maxShardSize !== 'number' || !(maxShardSize > 0)) {
      throw new MieConfigError(`${this.constructor.name}.save: option "maxShardSize" must be a positive number of bytes. Received: ${describeValue(maxShardSize)}.`);
    }
    const { header, headerText } = this.#header();
    const config = new TextEncoder().encode(headerText);
    const state = this.stateDict();
    const single = encodeSafetensors(state, { format: 'mie', 'mie.checkpointId': header.checkpointId, 'mie.config': headerText });
    if (single.byteLength <= maxShardSize) {
      return {
        files: [[WEIGHTS_FILE, single], [CONFIG_FILE, config]],
        keepPrevious: [],
        remove: (name) => name === WEIGHTS_INDEX_FILE || SHARD_NAME.test(name),
      };
    }
    // Hugging Face's grouping: tensors in order, a new shard when the next would not fit.
    const groups: Array<Array<[string, tf.Tensor]>> = [];
    let size = 0;
    for (const [name, tensor] of Object.entries(state)) {
      const bytes = tensor.size * (tensor.dtype === 'bool' ? 1 : 4);
      if (groups.length === 0 || (size + bytes > maxShardSize && size > 0)) {
        groups.push([]);
        size = 0;
      }
      groups[groups.length - 1].push([name, tensor]);
      size += bytes;
    }
    const count = String(groups.length).padStart(5, '0');
    const shardNames = groups.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${count}.safetensors`);
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    const shards = groups.map((group, i): [string, FileContent] => {
      for (const [name, tensor] of group) {
        weightMap[name] = shardNames[i];
        totalSize += tensor.size * (tensor.dtype === 'bool' ? 1 : 4);
      }
      return [shardNames[i], encodeSafetensors(Object.fromEntries(group), { format: 'mie', 'mie.checkpointId': header.checkpointId })];
    });
    const index = {
      metadata: { total_size: totalSize, format: 'mie', 'mie.checkpointId': header.checkpointId, 'mie.config': headerText },
      weight_map: weightMap,
    };
    const kept = new Set(shardNames);
    return {
      files: [...shards, [WEIGHTS_INDEX_FILE, new TextEncoder().encode(JSON.stringify(index, null, 2) + '\n')], [CONFIG_FILE, config]],
      keepPrevious: shardNames,
      remove: (name) => name === WEIGHTS_FILE || (SHARD_NAME.test(name) && !kept.has(name)),
    };
  }

  /**
   * Writes the checkpoint into `dir` atomically (see the file comment): a failure or a crash in
   * the middle leaves the previous checkpoint in `dir` loadable, and two processes saving into one
   * directory both succeed, one after the other. Weights above `maxShardSize` are sharded.
   */
  async save(dir: string, options: SaveOptions | FileSystem = {}): Promise<void> {
    const { maxShardSize, fs } = 'open' in options ? { maxShardSize: undefined, fs: options as FileSystem } : (options as SaveOptions);
    const name = this.isDisposed ? this.constructor.name : this.className;
    if (typeof dir !== 'string' || dir === '') {
      throw new MieSerializationError(`${name}.save: the directory must be a non-empty string. Received: ${describeValue(dir)}.`);
    }
    const { files, keepPrevious, remove } = this.checkpointFiles({ maxShardSize });
    try {
      await writeFilesAtomically(dir, files, { fs, keepPrevious, remove });
    } catch (error) {
      if (error instanceof MieError) throw error;
      throw new MieSerializationError(`${name}.save: could not write the checkpoint to ${dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Rebuilds a model from `config.json` and `model.safetensors` bytes. Called on a subclass,
   * checks that the stored class is that class or one of its subclasses.
   */
  static fromBuffers<M extends BaseModel>(this: abstract new (config: never) => M, buffers: CheckpointBuffers): M {
    const where = `${(this as { name: string }).name}.fromBuffers`;
    if (!isObject(buffers) || !(buffers.config instanceof Uint8Array) || !(buffers.weights instanceof Uint8Array)) {
      fail(where, `expected { config: Uint8Array, weights: Uint8Array }. Received: ${describeValue(buffers)}`);
    }
    const bytes = buffers.weights;
    let header;
    try {
      header = parseSafetensorsHeader(bytes, bytes.length);
    } catch (error) {
      fail(where, `${WEIGHTS_FILE}: ${(error as Error).message}`);
    }
    const source: WeightsSource = { label: WEIGHTS_FILE, entries: new Map(header.entries.map((entry) => [entry.name, { entry, file: 0 }])), metadata: header.metadata };
    const plan = planRestore(this as unknown as ModelClass<M>, buffers.config, source, where);
    const values = (name: string) => {
      const { entry } = source.entries.get(name)!;
      return decodeSafetensorsEntry(entry, bytes.subarray(header.bufferStart + entry.begin, header.bufferStart + entry.end));
    };
    return buildModel(plan, source, values, where) as M;
  }

  /**
   * Loads a checkpoint directory written by `save` (one weights file or Hugging Face shards),
   * selecting the default backend first if none is active. The model comes back in evaluation
   * mode; call `train()` to train it further.
   */
  static async load<M extends BaseModel>(this: abstract new (config: never) => M, dir: string): Promise<M> {
    const className = (this as { name: string }).name;
    if (typeof dir !== 'string' || dir === '') {
      throw new MieSerializationError(`${className}.load: the directory must be a non-empty string path. Received: ${describeValue(dir)}.`);
    }
    await ready();
    const where = `${className}.load(${JSON.stringify(dir)})`;
    // A save may run concurrently: what changed between two reads is read again.
    for (let attempt = 0; ; attempt++) {
      try {
        return (await loadDirectory(this as unknown as ModelClass<M>, dir, where)) as M;
      } catch (error) {
        if (!(error instanceof ChangedWhileReading) || attempt >= 4) {
          if (error instanceof MieError) throw error;
          throw new MieSerializationError(`${where}: ${(error as Error).message}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
      }
    }
  }
}

/** The files of a directory changed while it was read (a concurrent save): read it again. */
class ChangedWhileReading extends MieSerializationError {}

/** The open weights of one layout, single file or shards. */
interface OpenWeights {
  kind: 'single' | 'sharded';
  checkpointId: string | undefined;
  mtimeMs: number;
  files: SafetensorsFile[];
  source: WeightsSource;
}

async function closeAll(files: SafetensorsFile[]): Promise<void> {
  await Promise.all(files.map((file) => file.close().catch(() => undefined)));
}

async function openSingle(dir: string, where: string): Promise<OpenWeights | undefined> {
  let file: SafetensorsFile;
  try {
    file = await openSafetensorsFile(path.join(dir, WEIGHTS_FILE), where);
  } catch (error) {
    if (error instanceof MissingFileError) return undefined;
    throw error;
  }
  const { metadata, entries } = file.header;
  return {
    kind: 'single',
    checkpointId: metadata['mie.checkpointId'],
    mtimeMs: file.file.mtimeMs,
    files: [file],
    source: { label: WEIGHTS_FILE, entries: new Map(entries.map((entry) => [entry.name, { entry, file: 0 }])), metadata },
  };
}

async function openSharded(dir: string, where: string): Promise<OpenWeights | undefined> {
  const indexPath = path.join(dir, WEIGHTS_INDEX_FILE);
  let indexBytes: Uint8Array;
  let mtimeMs: number;
  try {
    const opened = await openRegularFile(indexPath, where);
    try {
      if (opened.size > MAX_INDEX_BYTES) fail(where, `${WEIGHTS_INDEX_FILE} is ${opened.size} bytes, above the ${MAX_INDEX_BYTES}-byte limit`);
      indexBytes = await opened.read(0, opened.size);
      mtimeMs = opened.mtimeMs;
    } finally {
      await opened.close().catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof MissingFileError) return undefined;
    throw error;
  }
  const index = decodeJson(indexBytes, WEIGHTS_INDEX_FILE, where);
  if (!isObject(index) || !isObject(index.weight_map)) fail(where, `${WEIGHTS_INDEX_FILE} must hold an object with a "weight_map" object. Received: ${describeValue(index)}`);
  const rawMetadata = index.metadata ?? {};
  if (!isObject(rawMetadata)) fail(where, `${WEIGHTS_INDEX_FILE} field "metadata" must be an object. Received: ${describeValue(rawMetadata)}`);
  const metadata: Record<string, string> = Object.create(null);
  for (const [key, value] of Object.entries(rawMetadata)) if (typeof value === 'string') metadata[key] = value;
  const weightMap = index.weight_map;
  const byFile = new Map<string, Set<string>>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file !== path.basename(file) || !file.endsWith('.safetensors') || file.startsWith('.')) {
      fail(where, `${WEIGHTS_INDEX_FILE} maps ${describeValue(name)} to ${describeValue(file)}; shard names must be plain file names ending in .safetensors`);
    }
    if (!byFile.has(file)) byFile.set(file, new Set());
    byFile.get(file)!.add(name);
  }
  if (byFile.size > 100_000) fail(where, `${WEIGHTS_INDEX_FILE} lists ${byFile.size} shards`);
  const checkpointId = metadata['mie.checkpointId'];
  const files: SafetensorsFile[] = [];
  const entries: WeightsSource['entries'] = new Map();
  try {
    for (const [shard, expected] of byFile) {
      const file = await openShard(dir, shard, checkpointId, where);
      files.push(file);
      const listed = new Set(file.header.entries.map((entry) => entry.name));
      const missing = [...expected].filter((name) => !listed.has(name));
      const extra = [...listed].filter((name) => !expected.has(name));
      if (missing.length || extra.length) {
        const problems = [
          missing.length ? `the index lists ${listForMessage(missing.map((n) => describeValue(n)))}, which the shard lacks` : '',
          extra.length ? `the shard holds ${listForMessage(extra.map((n) => describeValue(n)))}, which the index does not list` : '',
        ].filter(Boolean);
        fail(where, `${shard} does not match ${WEIGHTS_INDEX_FILE}: ${problems.join('; ')}`);
      }
      for (const entry of file.header.entries) entries.set(entry.name, { entry, file: files.length - 1 });
    }
  } catch (error) {
    await closeAll(files);
    throw error;
  }
  return { kind: 'sharded', checkpointId, mtimeMs: mtimeMs!, files, source: { label: WEIGHTS_INDEX_FILE, entries, metadata } };
}

/**
 * Opens one shard of the checkpoint `checkpointId`: the file itself, or the backup a save keeps
 * of it while it replaces the shards (a save stopped half-way leaves the old shards there).
 */
async function openShard(dir: string, shard: string, checkpointId: string | undefined, where: string): Promise<SafetensorsFile> {
  const candidates = [path.join(dir, shard), ...(await previousVersions(dir, shard))];
  let found: SafetensorsFile | undefined;
  for (const candidate of candidates) {
    let file: SafetensorsFile;
    try {
      file = await openSafetensorsFile(candidate, where);
    } catch (error) {
      if (error instanceof MissingFileError) continue;
      throw error;
    }
    if (checkpointId === undefined || file.header.metadata['mie.checkpointId'] === checkpointId) {
      found = file;
      break;
    }
    await file.close().catch(() => undefined);
  }
  if (found === undefined) {
    throw new ChangedWhileReading(`${where}: shard ${shard} of checkpoint ${describeValue(checkpointId)} is missing or belongs to another save.`);
  }
  return found;
}

async function loadDirectory(expected: ModelClass, dir: string, where: string): Promise<BaseModel> {
  const config = await readRegularFile(path.join(dir, CONFIG_FILE), MAX_CONFIG_BYTES, where);
  const header = decodeHeader(config, where);
  const layouts: OpenWeights[] = [];
  try {
    for (const open of [openSingle, openSharded]) {
      const weights = await open(dir, where);
      if (weights) layouts.push(weights);
    }
    if (layouts.length === 0) fail(where, `cannot read ${path.join(dir, WEIGHTS_FILE)}: the directory holds neither ${WEIGHTS_FILE} nor ${WEIGHTS_INDEX_FILE}`);
    // The layout of config.json's save; else (a save stopped between its renames) the newest,
    // which embeds its own config.
    const chosen = layouts.find((weights) => weights.checkpointId === header.checkpointId) ?? layouts.sort((a, b) => b.mtimeMs - a.mtimeMs)[0];
    const plan = planRestore(expected, config, chosen.source, where);
    // Read and decode every tensor before building (the build is synchronous).
    const decoded = new Map<string, Float32Array | Int32Array | Uint8Array>();
    for (const [name, { entry, file }] of chosen.source.entries) decoded.set(name, await chosen.files[file].values(entry));
    return buildModel(plan, chosen.source, (name) => {
      const values = decoded.get(name)!;
      decoded.delete(name);
      return values;
    }, where);
  } finally {
    for (const weights of layouts) await closeAll(weights.files);
  }
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

interface RestorePlan {
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
function planRestore(expected: ModelClass, configBytes: Uint8Array, source: WeightsSource, where: string): RestorePlan {
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
  const cls = registry.get(header.className);
  if (!cls) {
    fail(where, `class "${header.className}" is not registered (registered: ${registeredModels().join(', ') || 'none'}); import the package that defines it`);
  }
  if (expected !== (BaseModel as unknown) && !(cls === expected || cls.prototype instanceof expected)) {
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
function buildModel(
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
