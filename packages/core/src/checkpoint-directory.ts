/**
 * Checkpoint directories on disk (Node only; browser bundles get checkpoint-directory-browser.ts
 * through package.json "browser"): loading one written by `save` (one weights file or Hugging Face
 * shards, old or new when a save was cut short) and writing one atomically.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BaseModel } from './base-model';
import { previousVersions, writeFilesAtomically, type FileContent, type FileSystem } from './atomic-files';
import { MissingFileError, openRegularFile, openSafetensorsFile, readRegularFile, type SafetensorsFile } from './checkpoint-files';
import {
  CONFIG_FILE,
  ChangedWhileReading,
  MAX_CONFIG_BYTES,
  MAX_INDEX_BYTES,
  WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
  buildModel,
  checkShard,
  decodeHeader,
  fail,
  parseWeightsIndex,
  planRestore,
  type WeightsSource,
} from './checkpoint-restore';
import { describeValue } from './errors';
import type { ModelClass } from './model-registry';

/** The open weights of one layout, single file or shards. */
interface OpenWeights {
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
    checkpointId: metadata['mie.checkpointId'],
    mtimeMs: file.file.mtimeMs,
    files: [file],
    source: { label: WEIGHTS_FILE, entries: new Map(entries.map((entry) => [entry.name, { entry, file: 0 }])), metadata },
  };
}

async function openSharded(dir: string, where: string): Promise<OpenWeights | undefined> {
  let indexBytes: Uint8Array;
  let mtimeMs: number;
  try {
    const opened = await openRegularFile(path.join(dir, WEIGHTS_INDEX_FILE), where);
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
  const { metadata, shards } = parseWeightsIndex(indexBytes, where);
  const checkpointId = metadata['mie.checkpointId'];
  const files: SafetensorsFile[] = [];
  const entries: WeightsSource['entries'] = new Map();
  try {
    for (const [shard, expected] of shards) {
      const file = await openShard(dir, shard, checkpointId, where);
      files.push(file);
      checkShard(shard, file.header.entries, expected, where);
      for (const entry of file.header.entries) entries.set(entry.name, { entry, file: files.length - 1 });
    }
  } catch (error) {
    await closeAll(files);
    throw error;
  }
  return { checkpointId, mtimeMs, files, source: { label: WEIGHTS_INDEX_FILE, entries, metadata } };
}

/**
 * Opens one shard of the checkpoint `checkpointId`: the file itself, or the backup a save keeps
 * of it while it replaces the shards (a save stopped half-way leaves the old shards there).
 */
async function openShard(dir: string, shard: string, checkpointId: string | undefined, where: string): Promise<SafetensorsFile> {
  const candidates = [path.join(dir, shard), ...(await previousVersions(dir, shard))];
  for (const candidate of candidates) {
    let file: SafetensorsFile;
    try {
      file = await openSafetensorsFile(candidate, where);
    } catch (error) {
      if (error instanceof MissingFileError) continue;
      throw error;
    }
    if (checkpointId === undefined || file.header.metadata['mie.checkpointId'] === checkpointId) return file;
    await file.close().catch(() => undefined);
  }
  throw new ChangedWhileReading(`${where}: shard ${shard} of checkpoint ${describeValue(checkpointId)} is missing or belongs to another save.`);
}

/** Loads the checkpoint directory `dir` (a path, or a `file:` URL) as a `expected`. */
export async function loadDirectory(expected: ModelClass, dir: string, where: string): Promise<BaseModel> {
  if (dir.startsWith('file:')) dir = fileURLToPath(dir);
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

/** Options of {@link saveDirectory}. */
export interface SaveDirectoryOptions {
  fs?: FileSystem;
  keepPrevious: string[];
  remove: (name: string) => boolean;
}

/** Writes a checkpoint's files into `dir` atomically (see atomic-files.ts). */
export async function saveDirectory(dir: string, files: Array<[string, FileContent]>, options: SaveDirectoryOptions): Promise<void> {
  if (dir.startsWith('file:')) dir = fileURLToPath(dir);
  await writeFilesAtomically(dir, files, options);
}
