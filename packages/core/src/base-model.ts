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
 * Loading treats the files as hostile (checkpoint-restore.ts): it validates config.json and every
 * safetensors header, learns the state dict the config implies without allocating anything,
 * compares names and shapes with the headers, and only then reads the values and builds the model
 * directly from them (no random initialisation first). Checkpoints also live at URLs (fetch, any
 * runtime) and in IndexedDB (browsers); directories are Node's (checkpoint-directory.ts).
 */
import type { FileContent, FileSystem } from './atomic-files';
import { ready } from './backend';
import { loadDirectory, saveDirectory } from './checkpoint-directory';
import { INDEXEDDB_SCHEME, indexedDbName, loadFromIndexedDb, saveToIndexedDb } from './checkpoint-indexeddb';
import {
  CONFIG_FILE,
  CORE_VERSION,
  ChangedWhileReading,
  DEFAULT_MAX_SHARD_SIZE,
  FORMAT_VERSION,
  SHARD_NAME,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  fail,
  isObject,
  restoreFromBytes,
  setBaseModelClass,
  type CheckpointBuffers,
  type CheckpointHeader,
} from './checkpoint-restore';
import { loadFromUrl } from './checkpoint-url';
import { MieBackendError, MieConfigError, MieError, MieSerializationError, causeMessage, describeValue } from './errors';
import { registeredName, type ModelClass } from './model-registry';
import { Module } from './module';
import { hostValues, synchronousReadsAvailable } from './readback';
import { encodeSafetensors, writeSafetensors, writeSafetensorsAsync } from './safetensors';
import { tf } from './tfjs';

export {
  CONFIG_FILE,
  DEFAULT_MAX_SHARD_SIZE,
  FORMAT_VERSION,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  type CheckpointBuffers,
  type CheckpointHeader,
} from './checkpoint-restore';
export { registerModel, registeredModels, type ModelClass } from './model-registry';

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
    const name = registeredName(this.constructor as ModelClass);
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

  /**
   * The checkpoint as bytes: `config.json` and `model.safetensors` (one file, whatever its size).
   * Reads the weights synchronously; on a backend that cannot (webgpu in Node), use
   * {@link toBuffersAsync}.
   */
  toBuffers(): CheckpointBuffers {
    const { header, headerText } = this.#header();
    const state = this.stateDict();
    if (!synchronousReadsAvailable() && Object.values(state).some((tensor) => hostValues(tensor) === null)) {
      throw new MieBackendError(
        `${this.className}.toBuffers: the weights are on the GPU, which the webgpu backend cannot read synchronously outside a browser; use await model.toBuffersAsync() (or save()).`,
      );
    }
    const weights = writeSafetensors(state, {
      format: 'mie',
      'mie.checkpointId': header.checkpointId,
      'mie.config': headerText,
    });
    return { config: new TextEncoder().encode(headerText), weights };
  }

  /** {@link toBuffers}, reading the weights asynchronously (what GPU backends prefer). */
  async toBuffersAsync(): Promise<CheckpointBuffers> {
    const { header, headerText } = this.#header();
    const weights = await writeSafetensorsAsync(this.stateDict(), {
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
   * Saves the checkpoint to `target`: a directory (Node; written atomically, see the file comment:
   * a failure or a crash in the middle leaves the previous checkpoint loadable, and two processes
   * saving into one directory both succeed, one after the other; weights above `maxShardSize` are
   * sharded), or `indexeddb://name` (browsers; one transaction).
   */
  async save(target: string, options: SaveOptions | FileSystem = {}): Promise<void> {
    const { maxShardSize, fs } = 'open' in options ? { maxShardSize: undefined, fs: options as FileSystem } : (options as SaveOptions);
    const name = this.isDisposed ? this.constructor.name : this.className;
    if (typeof target !== 'string' || target === '') {
      throw new MieSerializationError(`${name}.save: the directory must be a non-empty string. Received: ${describeValue(target)}.`);
    }
    const where = `${name}.save(${JSON.stringify(target)})`;
    if (target.startsWith(INDEXEDDB_SCHEME)) {
      await saveToIndexedDb(indexedDbName(target, where), await this.toBuffersAsync(), where);
      return;
    }
    const { files, keepPrevious, remove } = this.checkpointFiles({ maxShardSize });
    try {
      await saveDirectory(target, files, { fs, keepPrevious, remove });
    } catch (error) {
      if (error instanceof MieError) throw error;
      throw new MieSerializationError(`${name}.save: could not write the checkpoint to ${target}: ${causeMessage(error)}`, { cause: error });
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
    return restoreFromBytes(this as unknown as ModelClass<M>, buffers.config, buffers.weights, where) as M;
  }

  /**
   * Loads a checkpoint written by `save` (one weights file or Hugging Face shards), selecting the
   * default backend first if none is active: from a directory (Node; in a browser, a path is a URL
   * relative to the page), a URL (`https://...`, or a `URL`; fetched, in any runtime), or
   * `indexeddb://name` (browsers). The model comes back in evaluation mode; call `train()` to train
   * it further.
   */
  static async load<M extends BaseModel>(this: abstract new (config: never) => M, source: string | URL): Promise<M> {
    const className = (this as { name: string }).name;
    if (!(source instanceof URL) && (typeof source !== 'string' || source === '')) {
      throw new MieSerializationError(`${className}.load: the directory must be a non-empty string path or a URL. Received: ${describeValue(source)}.`);
    }
    await ready();
    const location = source instanceof URL ? source.href : source;
    const where = `${className}.load(${JSON.stringify(location)})`;
    const expected = this as unknown as ModelClass<M>;
    if (location.startsWith(INDEXEDDB_SCHEME)) return (await loadFromIndexedDb(expected, indexedDbName(location, where), where)) as M;
    if (/^(https?|blob):/i.test(location)) return (await loadFromUrl(expected, new URL(location), where)) as M;
    // A save may run concurrently: what changed between two reads is read again.
    for (let attempt = 0; ; attempt++) {
      try {
        return (await loadDirectory(expected, location, where)) as M;
      } catch (error) {
        if (!(error instanceof ChangedWhileReading) || attempt >= 4) {
          if (error instanceof MieError) throw error;
          throw new MieSerializationError(`${where}: ${causeMessage(error)}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, 20 * (attempt + 1)));
      }
    }
  }
}

setBaseModelClass(BaseModel as unknown as ModelClass);
