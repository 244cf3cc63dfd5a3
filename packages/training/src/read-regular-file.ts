/**
 * A bounded, chunked, non-blocking read of one regular file, for checkpoints that may be hostile:
 * a FIFO or a device in place of the file is refused instead of blocking the process, a size
 * above what the caller can use is refused before anything is allocated, and the file is read in
 * chunks of at most 1 GiB (a single read of 2^31 bytes or more aborts Node).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { constants as bufferConstants } from 'node:buffer';
import { MieSerializationError, describeValue } from '@mie/core';

/** Largest single `read` call: 1 GiB, well below the 2^31 - 1 bytes one read can take. */
export const READ_CHUNK_BYTES = 2 ** 30;

/** Options of {@link readRegularFile}. */
export interface ReadRegularFileOptions {
  /** Starts every message and names the file: `Trainer.fit: cannot resume from dir/last/checkpoint.safetensors`. */
  subject: string;
  /** Largest accepted size in bytes. */
  maxBytes: number;
  /** Says what `maxBytes` is, for the message ("a checkpoint of this model and optimizer"). */
  limitReason: string;
  /** Bytes per read call (tests use small chunks). Default {@link READ_CHUNK_BYTES}. */
  chunkBytes?: number;
}

/** The kind of a non-regular file, for messages. */
function kindOf(stats: fs.Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'a special file';
}

function serializationError(message: string, cause?: unknown): MieSerializationError {
  const error = new MieSerializationError(message);
  if (cause !== undefined) Object.defineProperty(error, 'cause', { value: cause, writable: true, configurable: true, enumerable: false });
  return error;
}

/**
 * The message of a caught value, without running code of it: the own `message` string of an
 * error (Node's system errors fail `instanceof Error` across realms, under Jest for one), else a
 * description.
 */
export function causeMessage(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    try {
      const message: unknown = Object.getOwnPropertyDescriptor(error, 'message')?.value;
      if (typeof message === 'string') return message.length > 500 ? `${message.slice(0, 497)}...` : message;
    } catch {
      // A Proxy's trap may throw.
    }
  }
  return describeValue(error);
}

/**
 * Reads `file` whole. Throws a `MieSerializationError` starting with `subject` when the file
 * cannot be opened or read (the system error is the `cause`), is not a regular file, is larger
 * than `maxBytes`, or changes size while it is read.
 */
export async function readRegularFile(file: string, { subject, maxBytes, limitReason, chunkBytes = READ_CHUNK_BYTES }: ReadRegularFileOptions): Promise<Uint8Array> {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  const flags = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, flags);
  } catch (error) {
    throw serializationError(`${subject}: cannot read it: ${causeMessage(error)}`, error);
  }
  try {
    let stats: fs.Stats;
    try {
      stats = await handle.stat();
    } catch (error) {
      throw serializationError(`${subject}: cannot read it: ${causeMessage(error)}`, error);
    }
    if (!stats.isFile()) throw serializationError(`${subject}: it is ${kindOf(stats)}, not a regular file.`);
    const size = stats.size;
    if (size > maxBytes) {
      throw serializationError(`${subject}: it is ${size} bytes, more than the ${maxBytes} bytes that ${limitReason} can take, so it is not one.`);
    }
    if (size > bufferConstants.MAX_LENGTH) {
      throw serializationError(`${subject}: it is ${size} bytes, more than the ${bufferConstants.MAX_LENGTH} bytes this Node.js can hold in one buffer.`);
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    try {
      while (offset < size) {
        const { bytesRead } = await handle.read(bytes, offset, Math.min(chunkBytes, size - offset), offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
      }
    } catch (error) {
      throw serializationError(`${subject}: cannot read it: ${causeMessage(error)}`, error);
    }
    if (offset !== size) throw serializationError(`${subject}: it shrank from ${size} to ${offset} bytes while it was read.`);
    return bytes;
  } finally {
    await handle.close().catch(() => undefined);
  }
}
