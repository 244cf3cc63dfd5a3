/**
 * `BaseModel`: a `Module` that keeps its constructor options as `config` and so can be saved
 * and rebuilt from files (API.md section 4):
 *
 *   dir/config.json        { format: "mie", formatVersion, className, config, checkpointId, versions }
 *   dir/model.safetensors  float32 weights in PyTorch layout, named as in `stateDict()`
 *
 * Both files carry the same random `checkpointId`, and the weights file also embeds the whole
 * config.json. Saving writes both to temporary files, flushes them, and renames the weights first:
 * if a crash falls between the two renames, the ids differ and loading uses the config embedded
 * in the (new) weights file, so a directory always loads as either the old or the new checkpoint.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { writeFilesAtomically, type FileSystem } from './atomic-files';
import { ready } from './backend';
import { MieConfigError, MieError, MieSerializationError, describeValue } from './errors';
import { Module, type NamedTensors } from './module';
import { readSafetensors, writeSafetensors } from './safetensors';
import { parseStrictJson } from './strict-json';
import { tf } from './tfjs';

/** The format written by this version. Readers accept formats up to this one. */
export const FORMAT_VERSION = 1;
/** File names inside a checkpoint directory. */
export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
/** Largest config.json accepted (a config is small; a bigger file is hostile). */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Numbers in a loaded config up to this are always allowed (lengths of small models). */
const MIN_CONFIG_NUMBER_LIMIT = 1 << 16;

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

function decodeHeader(bytes: Uint8Array, where: string): CheckpointHeader {
  if (bytes.length > MAX_CONFIG_BYTES) fail(where, `${CONFIG_FILE} is ${bytes.length} bytes, above the ${MAX_CONFIG_BYTES}-byte limit`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail(where, `${CONFIG_FILE} is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = parseStrictJson(text);
  } catch (error) {
    fail(where, `${CONFIG_FILE} is not valid JSON (${(error as Error).message})`);
  }
  return validateHeader(value, where);
}

function validateHeader(value: unknown, where: string): CheckpointHeader {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
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

  /** The checkpoint as bytes: `config.json` and `model.safetensors`. */
  toBuffers(): CheckpointBuffers {
    const className = this.className;
    const header: CheckpointHeader = {
      format: 'mie',
      formatVersion: FORMAT_VERSION,
      className,
      config: serializableConfig(this, className),
      checkpointId: randomUUID(),
      versions: { '@mie/core': CORE_VERSION, '@tensorflow/tfjs-core': tf.version_core },
    };
    const headerText = JSON.stringify(header, null, 2) + '\n';
    const weights = writeSafetensors(this.stateDict(), {
      format: 'mie',
      'mie.checkpointId': header.checkpointId,
      'mie.config': headerText,
    });
    return { config: new TextEncoder().encode(headerText), weights };
  }

  /**
   * Writes `dir/config.json` and `dir/model.safetensors` atomically (see the file comment):
   * a failure or a crash in the middle leaves the previous checkpoint in `dir` loadable.
   */
  async save(dir: string, fileSystem?: FileSystem): Promise<void> {
    const { config, weights } = this.toBuffers();
    try {
      await writeFilesAtomically(dir, [[WEIGHTS_FILE, weights], [CONFIG_FILE, config]], fileSystem);
    } catch (error) {
      throw new MieSerializationError(`${this.className}.save: could not write the checkpoint to ${dir}: ${(error as Error).message}`);
    }
  }

  /**
   * Rebuilds a model from `config.json` and `model.safetensors` bytes. Called on a subclass,
   * checks that the stored class is that class or one of its subclasses.
   */
  static fromBuffers<M extends BaseModel>(this: abstract new (config: never) => M, buffers: CheckpointBuffers): M {
    return restore(this as unknown as ModelClass<M>, buffers, 'fromBuffers') as M;
  }

  /**
   * Loads a checkpoint directory written by `save`, selecting the default backend first if none
   * is active. The model comes back in evaluation mode; call `train()` to train it further.
   */
  static async load<M extends BaseModel>(this: abstract new (config: never) => M, dir: string): Promise<M> {
    await ready();
    const where = `${(this as { name: string }).name}.load(${JSON.stringify(dir)})`;
    const read = async (name: string, limit: number): Promise<Uint8Array> => {
      const file = path.join(dir, name);
      let handle: fsp.FileHandle | undefined;
      try {
        handle = await fsp.open(file, 'r');
        const { size } = await handle.stat();
        if (size > limit) fail(where, `${name} is ${size} bytes, above the ${limit}-byte limit`);
        const bytes = new Uint8Array(size);
        let offset = 0;
        while (offset < size) {
          const { bytesRead } = await handle.read(bytes, offset, size - offset, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
        }
        return offset === size ? bytes : bytes.subarray(0, offset);
      } catch (error) {
        if (error instanceof MieError) throw error;
        return fail(where, `cannot read ${file}: ${(error as Error).message}`);
      } finally {
        await handle?.close();
      }
    };
    const config = await read(CONFIG_FILE, MAX_CONFIG_BYTES);
    const weights = await read(WEIGHTS_FILE, Number.MAX_SAFE_INTEGER);
    return restore(this as unknown as ModelClass<M>, { config, weights }, where) as M;
  }
}

/**
 * Refuses, before anything is built, a config with a number larger than the checkpoint could
 * describe: every size of a real model (a vocabulary, a width, a length) is at most its number of
 * weights, or small. Without this a hostile config.json (`dModel: 1e9`) would allocate its model
 * before the weights are found not to match.
 */
function checkConfigSize(config: unknown, tensors: NamedTensors, where: string): void {
  const elements = Object.values(tensors).reduce((total, t) => total + t.size, 0);
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

function restore(expected: ModelClass, buffers: CheckpointBuffers, where: string): BaseModel {
  if (!(buffers?.config instanceof Uint8Array) || !(buffers?.weights instanceof Uint8Array)) {
    fail(where, 'expected { config: Uint8Array, weights: Uint8Array }');
  }
  let header = decodeHeader(buffers.config, where);
  let tensors: NamedTensors;
  let metadata: Record<string, string>;
  try {
    ({ tensors, metadata } = readSafetensors(buffers.weights));
  } catch (error) {
    fail(where, `${WEIGHTS_FILE}: ${(error as Error).message}`);
  }
  try {
    if (metadata['mie.checkpointId'] !== header.checkpointId) {
      // The weights are from another save than config.json (a crash between the two renames,
      // or files copied by hand): the config embedded in the weights describes them exactly.
      const embedded = metadata['mie.config'];
      if (embedded === undefined) {
        fail(where, `${CONFIG_FILE} and ${WEIGHTS_FILE} come from different checkpoints, and the weights embed no config`);
      }
      header = decodeHeader(new TextEncoder().encode(embedded), `${where} (config embedded in ${WEIGHTS_FILE})`);
    }
    const cls = registry.get(header.className);
    if (!cls) {
      fail(where, `class "${header.className}" is not registered (registered: ${registeredModels().join(', ') || 'none'}); import the package that defines it`);
    }
    if (expected !== (BaseModel as unknown) && !(cls === expected || cls.prototype instanceof expected)) {
      fail(where, `the checkpoint holds a ${header.className}, which is not a ${expected.name}`);
    }
    checkConfigSize(header.config, tensors, where);
    let model: BaseModel;
    try {
      model = new cls(header.config as never);
    } catch (error) {
      return fail(where, `config for ${header.className} is invalid: ${(error as Error).message}`);
    }
    try {
      model.loadStateDict(tensors, { strict: true });
    } catch (error) {
      model.dispose();
      return fail(where, (error as Error).message);
    }
    return model.eval();
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
