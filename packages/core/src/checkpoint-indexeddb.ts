/**
 * Checkpoints in IndexedDB, for browsers: `model.save('indexeddb://name')` and
 * `BaseModel.load('indexeddb://name')` (the scheme tfjs uses for its own models). One record per
 * name in the database `mie-checkpoints`, holding `config.json` and `model.safetensors` as bytes,
 * written in one transaction (so a save is atomic) and loaded with the same checks as files.
 */
import type { BaseModel, CheckpointBuffers } from './base-model';
import { restoreFromBytes } from './checkpoint-restore';
import { MieBackendError, MieSerializationError, causeMessage } from './errors';
import type { ModelClass } from './model-registry';

/** The URL scheme of checkpoints in IndexedDB. */
export const INDEXEDDB_SCHEME = 'indexeddb://';
const DATABASE = 'mie-checkpoints';
const STORE = 'checkpoints';

// The few IndexedDB types used here (the DOM library is not part of this package's types).
interface Request<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface OpenRequest extends Request<Database> {
  onupgradeneeded: (() => void) | null;
}
interface Database {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: 'readonly' | 'readwrite'): Transaction;
  close(): void;
}
interface Transaction {
  objectStore(name: string): { put(value: unknown, key: string): Request<unknown>; get(key: string): Request<unknown> };
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
}
interface Factory {
  open(name: string, version: number): OpenRequest;
}

function factory(where: string): Factory {
  const indexedDB = (globalThis as { indexedDB?: Factory }).indexedDB;
  if (!indexedDB) throw new MieBackendError(`${where}: this runtime has no IndexedDB (browsers have it; in Node, save to a directory).`);
  return indexedDB;
}

function open(where: string): Promise<Database> {
  return new Promise((resolve, reject) => {
    const request = factory(where).open(DATABASE, 1);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new MieSerializationError(`${where}: cannot open the IndexedDB database "${DATABASE}": ${causeMessage(request.error)}`));
  });
}

/** The checkpoint name of an `indexeddb://name` location. */
export function indexedDbName(location: string, where: string): string {
  const name = location.slice(INDEXEDDB_SCHEME.length);
  if (name === '') throw new MieSerializationError(`${where}: ${INDEXEDDB_SCHEME} needs a checkpoint name (indexeddb://my-model).`);
  return name;
}

/** Stores `buffers` under `name`, in one transaction. */
export async function saveToIndexedDb(name: string, buffers: CheckpointBuffers, where: string): Promise<void> {
  const database = await open(where);
  try {
    await new Promise<void>((resolve, reject) => {
      const transaction = database.transaction(STORE, 'readwrite');
      transaction.objectStore(STORE).put({ format: 'mie', config: buffers.config, weights: buffers.weights }, name);
      transaction.oncomplete = () => resolve();
      const failed = () => reject(new MieSerializationError(`${where}: could not store the checkpoint "${name}" in IndexedDB: ${causeMessage(transaction.error)}`));
      transaction.onerror = failed;
      transaction.onabort = failed;
    });
  } finally {
    database.close();
  }
}

/** Loads the checkpoint stored under `name` as a `expected`. */
export async function loadFromIndexedDb(expected: ModelClass, name: string, where: string): Promise<BaseModel> {
  const database = await open(where);
  let record: unknown;
  try {
    record = await new Promise((resolve, reject) => {
      const request = database.transaction(STORE, 'readonly').objectStore(STORE).get(name);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(new MieSerializationError(`${where}: cannot read the checkpoint "${name}" from IndexedDB: ${causeMessage(request.error)}`));
    });
  } finally {
    database.close();
  }
  const { config, weights } = (record ?? {}) as { config?: unknown; weights?: unknown };
  if (!(config instanceof Uint8Array) || !(weights instanceof Uint8Array)) {
    throw new MieSerializationError(`${where}: IndexedDB holds no checkpoint named "${name}".`);
  }
  return restoreFromBytes(expected, config, weights, where);
}
