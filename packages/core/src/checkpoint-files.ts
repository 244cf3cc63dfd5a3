/**
 * Reading checkpoint files from disk (Node only), as hostile input: only regular files are
 * opened (a FIFO or a device in place of a checkpoint file would block a read forever), sizes are
 * checked before anything is allocated, and reads are bounded (Node aborts the process on one read
 * of 2 GiB or more), so files of any size load tensor by tensor.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { MieSerializationError, describeValue } from './errors';
import {
  decodeSafetensorsEntry,
  parseSafetensorsHeader,
  safetensorsEntryTensor,
  safetensorsPrefixLength,
  type SafetensorsContents,
  type SafetensorsEntry,
  type SafetensorsHeader,
} from './safetensors';
import type { tf } from './tfjs';

/** Largest single read: Node refuses (or aborts on) one read of 2 GiB or more. */
const READ_CHUNK = 1 << 30;
/** Opening for reading never waits for a writer (FIFOs); O_NONBLOCK does not exist on Windows. */
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** An open regular file. */
export interface RegularFile {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** Reads `length` bytes at `position` into a new array, in bounded chunks. */
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Thrown (as a MieSerializationError) for a missing file, so that callers can tell it from a bad one. */
export class MissingFileError extends MieSerializationError {}

/**
 * Opens `file` for reading if it is a regular file. A missing file is a `MissingFileError` (a `MieSerializationError`);
 * a directory, FIFO, socket or device is a `MieSerializationError` (`where` starts the message).
 */
export async function openRegularFile(file: string, where: string, { chunkBytes = READ_CHUNK }: { chunkBytes?: number } = {}): Promise<RegularFile> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, OPEN_FLAGS);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ENOENT') throw new MissingFileError(`${where}: cannot read ${file}: it does not exist.`);
    throw new MieSerializationError(`${where}: cannot open ${file}: ${(error as Error).message}`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      const kind = stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO' : stats.isSocket() ? 'a socket' : 'a device or other special file';
      throw new MieSerializationError(`${where}: ${file} must be a regular file. Received: ${kind}.`);
    }
    const size = stats.size;
    return {
      path: file,
      size,
      mtimeMs: stats.mtimeMs,
      async read(position: number, length: number): Promise<Uint8Array> {
        if (position < 0 || length < 0 || position + length > size) {
          throw new MieSerializationError(`${where}: ${file} is ${size} bytes; cannot read ${length} bytes at ${position}.`);
        }
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(length);
        } catch {
          throw new MieSerializationError(`${where}: ${file}: ${length} bytes do not fit in one buffer in this runtime.`);
        }
        let offset = 0;
        while (offset < length) {
          const { bytesRead } = await handle.read(bytes, offset, Math.min(chunkBytes, length - offset), position + offset);
          if (bytesRead === 0) throw new MieSerializationError(`${where}: ${file} ended after ${position + offset} bytes while reading (it changed while being read).`);
          offset += bytesRead;
        }
        return bytes;
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

/** Reads a whole regular file of at most `maxBytes` bytes (`chunkBytes` per read: tests use small ones). */
export async function readRegularFile(file: string, maxBytes: number, where: string, options: { chunkBytes?: number } = {}): Promise<Uint8Array> {
  const opened = await openRegularFile(file, where, options);
  try {
    if (opened.size > maxBytes) throw new MieSerializationError(`${where}: ${file} is ${opened.size} bytes, above the ${maxBytes}-byte limit.`);
    return await opened.read(0, opened.size);
  } catch (error) {
    if (error instanceof MieSerializationError) throw error;
    throw new MieSerializationError(`${where}: cannot read ${file}: ${(error as Error).message}`);
  } finally {
    await opened.close().catch(() => undefined);
  }
}

/** An open safetensors file: its validated header, and its tensors' bytes on demand. */
export interface SafetensorsFile {
  readonly file: RegularFile;
  readonly header: SafetensorsHeader;
  /** Reads and decodes one entry's values. */
  values(entry: SafetensorsEntry): Promise<Float32Array | Int32Array | Uint8Array>;
  close(): Promise<void>;
}

/** Opens a safetensors file (of at most `maxBytes`) and validates its header (reading only the header). */
export async function openSafetensorsFile(path: string, where: string, maxBytes = Infinity): Promise<SafetensorsFile> {
  const file = await openRegularFile(path, where);
  try {
    if (file.size > maxBytes) throw new MieSerializationError(`${where}: ${path} is ${file.size} bytes, above the ${maxBytes}-byte limit.`);
    const first8 = await file.read(0, Math.min(8, file.size));
    const prefixLength = safetensorsPrefixLength(first8, file.size);
    const header = parseSafetensorsHeader(await file.read(0, prefixLength), file.size);
    return {
      file,
      header,
      // The bytes are read into a fresh buffer that nothing else holds: F32 values need no copy.
      values: async (entry) => decodeSafetensorsEntry(entry, await file.read(header.bufferStart + entry.begin, entry.end - entry.begin), { reuse: true }),
      close: () => file.close(),
    };
  } catch (error) {
    await file.close().catch(() => undefined);
    if (error instanceof MieSerializationError && !error.message.startsWith(where)) {
      throw new MieSerializationError(`${where}: ${path}: ${error.message}`);
    }
    throw error;
  }
}

/** Options of {@link readSafetensorsFile}. */
export interface ReadSafetensorsFileOptions {
  /** Starts every error message. Default `readSafetensorsFile("<path>")`. */
  where?: string;
  /** Largest file accepted, in bytes (refused before anything is read). Default: no limit. */
  maxBytes?: number;
}

/**
 * Reads a safetensors file from disk as `readSafetensors` reads bytes, but tensor by tensor, so a
 * file of any size (more than 2 GiB, more than one buffer can hold) loads. Only a regular file is
 * opened (a FIFO or device is refused, not waited on). The caller owns the tensors.
 */
export async function readSafetensorsFile(path: string, options: ReadSafetensorsFileOptions = {}): Promise<SafetensorsContents> {
  const where = options.where ?? `readSafetensorsFile(${describeValue(path)})`;
  if (typeof path !== 'string' || path === '') throw new MieSerializationError(`${where}: the path must be a non-empty string.`);
  const opened = await openSafetensorsFile(path, where, options.maxBytes);
  const tensors: Record<string, tf.Tensor> = Object.create(null);
  try {
    for (const entry of opened.header.entries) tensors[entry.name] = safetensorsEntryTensor(entry, await opened.values(entry));
    return { tensors, metadata: opened.header.metadata };
  } catch (error) {
    for (const tensor of Object.values(tensors)) tensor.dispose();
    throw error;
  } finally {
    await opened.close().catch(() => undefined);
  }
}
