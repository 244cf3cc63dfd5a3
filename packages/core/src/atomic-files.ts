/**
 * Crash-safe replacement of the files in a directory: each file is written to a temporary name
 * beside its target, flushed to disk (fsync), then renamed over the target, and the directory
 * entry is flushed. A rename is atomic, so a reader sees either the old or the new file, never a
 * partial one, whatever fails or is killed in the middle.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** The subset of `node:fs/promises` used here (replaceable in tests to inject failures). */
export interface FileSystem {
  mkdir: typeof fsp.mkdir;
  open: typeof fsp.open;
  rename: typeof fsp.rename;
  rm: typeof fsp.rm;
  readdir: typeof fsp.readdir;
}

const TEMP_MARK = '.mie-tmp-';

/** Writes `bytes` to `file` and flushes it to disk before resolving. */
async function writeDurably(fs: FileSystem, file: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
      offset += bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a directory entry (renames inside it); a no-op where directories cannot be opened. */
async function syncDirectory(fs: FileSystem, dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a directory; the renames are still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Replaces `files` (name -> bytes) in `dir`, creating `dir` if needed. All temporary files are
 * written and flushed before the first rename; renames happen in the order given. Leftover
 * temporary files of an earlier crashed write are removed first.
 */
export async function writeFilesAtomically(
  dir: string,
  files: Array<[name: string, bytes: Uint8Array]>,
  fs: FileSystem = fsp,
): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  for (const entry of await fs.readdir(dir)) {
    if (entry.startsWith(TEMP_MARK)) await fs.rm(path.join(dir, entry), { force: true });
  }
  const token = randomBytes(6).toString('hex');
  const staged = files.map(([name, bytes]) => ({ target: path.join(dir, name), temp: path.join(dir, `${TEMP_MARK}${token}-${name}`), bytes }));
  try {
    for (const file of staged) await writeDurably(fs, file.temp, file.bytes);
    for (const file of staged) await fs.rename(file.temp, file.target);
    await syncDirectory(fs, dir);
  } finally {
    for (const file of staged) await fs.rm(file.temp, { force: true }).catch(() => undefined);
  }
}
