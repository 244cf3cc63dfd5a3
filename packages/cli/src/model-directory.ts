/**
 * Reading what a user points the CLI at (`--model DIR`, a run's `train/g2p-config.json`) without
 * hanging or crashing on what is there: a FIFO or a device in place of a file is refused before
 * it is opened for a blocking read, sizes are bounded, and every failure is a typed MIE error
 * naming the path, which `mie` prints as one line.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { BaseModel, CONFIG_FILE, MieConfigError, MieError, MieSerializationError, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, causeMessage } from '@mie/core';


function kindOf(stats: fs.Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Checks that `dir` is a directory holding `config.json` and the weights (`model.safetensors`, or
 * the index of a sharded checkpoint) as regular files: core's loader opens them for a blocking
 * read, and a FIFO there would hang it. Throws a `MieConfigError` naming the path otherwise.
 */
export async function checkModelDirectory(dir: string, command: string): Promise<void> {
  let stats: fs.Stats;
  try {
    stats = await fsp.stat(dir);
  } catch (error) {
    throw new MieConfigError(`${command}: --model ${dir} cannot be read: ${causeMessage(error)}`, { cause: error });
  }
  if (!stats.isDirectory()) throw new MieConfigError(`${command}: --model ${dir} must be a model directory (with ${CONFIG_FILE} and ${WEIGHTS_FILE}); it is ${kindOf(stats)}.`);
  const sharded = !fs.existsSync(path.join(dir, WEIGHTS_FILE)) && fs.existsSync(path.join(dir, WEIGHTS_INDEX_FILE));
  for (const name of [CONFIG_FILE, sharded ? WEIGHTS_INDEX_FILE : WEIGHTS_FILE]) {
    const file = path.join(dir, name);
    let entry: fs.Stats;
    try {
      entry = await fsp.stat(file);
    } catch (error) {
      throw new MieConfigError(`${command}: --model ${dir} holds no model: ${file} is missing or unreadable (${causeMessage(error)}).`, { cause: error });
    }
    if (!entry.isFile()) throw new MieConfigError(`${command}: --model ${dir}: ${file} must be a regular file; it is ${kindOf(entry)}.`);
  }
}

/**
 * Loads the model in `dir` ({@link checkModelDirectory} first). MIE errors pass through; any other
 * failure of the loader on what the directory holds becomes a `MieSerializationError` naming
 * the directory (the original is the `cause`), so no file can make the CLI print a stack.
 */
export async function loadModelDirectory(dir: string, command: string): Promise<BaseModel> {
  await checkModelDirectory(dir, command);
  try {
    return await BaseModel.load(dir);
  } catch (error) {
    if (error instanceof MieError) throw error;
    throw new MieSerializationError(`${command}: cannot load the model in ${dir}: ${causeMessage(error)}`, { cause: error });
  }
}
