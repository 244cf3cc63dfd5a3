/**
 * The browser's version of checkpoint-files.ts (package.json "browser"): a page has no file
 * system; safetensors bytes are read with `readSafetensors(bytes)`, and checkpoints load from URLs.
 */
import type * as NodeFiles from './checkpoint-files';
import { MieSerializationError } from './errors';
import { nodeOnly } from './node-only';

export type { ReadSafetensorsFileOptions, RegularFile, SafetensorsFile } from './checkpoint-files';

export class MissingFileError extends MieSerializationError {}

const instead = 'fetch the bytes and use readSafetensors(bytes), or load checkpoints by URL (BaseModel.load(url))';

export const openRegularFile: typeof NodeFiles.openRegularFile = async () => nodeOnly('openRegularFile', instead);
export const readRegularFile: typeof NodeFiles.readRegularFile = async () => nodeOnly('readRegularFile', instead);
export const openSafetensorsFile: typeof NodeFiles.openSafetensorsFile = async () => nodeOnly('openSafetensorsFile', instead);
export const readSafetensorsFile: typeof NodeFiles.readSafetensorsFile = async () => nodeOnly('readSafetensorsFile', instead);
