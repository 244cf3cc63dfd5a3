/**
 * Crash-safe, concurrency-safe replacement of a group of files in a directory (Node only).
 *
 * Each file is written to a temporary name beside its target, flushed to disk (fsync), then
 * renamed over the target, and the directory entry is flushed. A rename is atomic, so a reader
 * sees either the old or the new file, never a partial one, whatever fails or is killed in the
 * middle. Files named in `keepPrevious` are first renamed to a backup name, so that a group whose
 * renames were cut short still has every file of the previous group (a sharded checkpoint's reader
 * finds them there, by their checkpoint id).
 *
 * Writers of one directory take turns: each holds `dir/.mie-lock` (created exclusively, refreshed
 * while held) for the whole write. A lock whose owner died (same host, process gone) or stopped
 * refreshing it is broken. So two processes saving into one directory both succeed, one after the
 * other (the last writer wins), and neither removes the other's temporary files.
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { MieSerializationError } from './errors';

/**
 * The subset of `node:fs/promises` used here (replaceable in tests to inject failures). `stat`
 * and `utimes` fall back to Node's when absent.
 */
export interface FileSystem {
  mkdir: typeof fsp.mkdir;
  open: typeof fsp.open;
  rename: typeof fsp.rename;
  rm: typeof fsp.rm;
  readdir: typeof fsp.readdir;
  stat?: typeof fsp.stat;
  utimes?: typeof fsp.utimes;
}

/**
 * A file's content: bytes, or a sequence of chunks of known total length (a streamed safetensors
 * file), read asynchronously when `chunksAsync` is there.
 */
export type FileContent = Uint8Array | { readonly byteLength: number; chunks(): Iterable<Uint8Array>; chunksAsync?(): AsyncIterable<Uint8Array> };

/** Options of {@link writeFilesAtomically}. */
export interface WriteFilesOptions {
  /** File system to use (tests inject failures). Default: Node's. */
  fs?: FileSystem;
  /**
   * Names whose previous version is renamed to a backup (`.mie-prev-<token>-<name>`) before it is
   * replaced; the backups are removed once every file is in place.
   */
  keepPrevious?: readonly string[];
  /**
   * Entries removed once every file is in place (leftovers of an earlier layout): a list of
   * names, or a test of the directory's entry names (run under the lock). The group's own files
   * are never removed.
   */
  remove?: readonly string[] | ((name: string) => boolean);
}

const TEMP_PREFIX = '.mie-tmp-';
const BACKUP_PREFIX = '.mie-prev-';
const LOCK_FILE = '.mie-lock';
/** `.mie-tmp-<pid>.<host>.<token>-<name>` and `.mie-prev-<pid>.<host>.<token>-<name>`: what this module creates (pid and host say who, for people reading a directory). */
const OWNED_NAME = /^\.mie-(?:tmp|prev)-(\d{1,10})\.([0-9a-f]{8})\.([0-9a-f]{12})-(.+)$/;
/** A held lock is refreshed this often; one not refreshed for {@link LOCK_STALE_MS} is broken. */
const LOCK_REFRESH_MS = 2000;
const LOCK_STALE_MS = 30_000;
const LOCK_OWNERLESS_MS = 3000;
/** Largest single write: Node refuses one write of 2 GiB or more. */
const WRITE_CHUNK = 1 << 30;

const HOST_TAG = hostTag();

/** Eight hex digits naming this host in lock files (a hash: host names may hold any character). */
export function hostTag(name: string = os.hostname()): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, '0');
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/** Whether process `pid` exists on this host (EPERM: it exists, owned by another user). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/** Writes `content` to `file` (created exclusively) in bounded chunks and flushes it to disk. */
async function writeDurably(fs: FileSystem, file: string, content: FileContent): Promise<void> {
  const handle = await fs.open(file, 'wx');
  try {
    const chunks = content instanceof Uint8Array ? [content] : (content.chunksAsync?.() ?? content.chunks());
    let written = 0;
    for await (const chunk of chunks) {
      for (let offset = 0; offset < chunk.length; ) {
        const length = Math.min(WRITE_CHUNK, chunk.length - offset);
        const { bytesWritten } = await handle.write(chunk, offset, length);
        offset += bytesWritten;
        written += bytesWritten;
      }
    }
    if (written !== content.byteLength) throw new Error(`wrote ${written} bytes of ${file}, expected ${content.byteLength}`);
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface LockOwner {
  pid: number;
  host: string;
  token: string;
}

async function readLockOwner(fs: FileSystem, file: string): Promise<LockOwner | undefined> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const buffer = new Uint8Array(256);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const value = JSON.parse(new TextDecoder().decode(buffer.subarray(0, bytesRead))) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.token === 'string') return value as LockOwner;
    return undefined;
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Takes `dir/.mie-lock`, waiting while another live writer holds it. Resolves to the release
 * function. The lock's modification time is refreshed while held, so that waiters on other hosts
 * can tell a live lock from a dead one.
 */
async function lockDirectory(fs: FileSystem, dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, LOCK_FILE);
  const stat = fs.stat ?? fsp.stat;
  const utimes = fs.utimes ?? fsp.utimes;
  const token = randomBytes(6).toString('hex');
  const owner = JSON.stringify({ pid: process.pid, host: HOST_TAG, token });
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await fs.open(file, 'wx');
      try {
        await handle.write(owner);
        await handle.close();
      } catch (error) {
        // A lock without its owner (a full disk) would make the next writer wait for it to go stale.
        await handle.close().catch(() => undefined);
        await fs.rm(file, { force: true }).catch(() => undefined);
        throw error;
      }
      const timer = setInterval(() => {
        const now = new Date();
        utimes(file, now, now).catch(() => undefined);
      }, LOCK_REFRESH_MS);
      timer.unref();
      return async () => {
        clearInterval(timer);
        // Remove the lock only if it is still ours (it may have been broken as stale).
        if ((await readLockOwner(fs, file))?.token === token) await fs.rm(file, { force: true });
      };
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
    const holder = await readLockOwner(fs, file);
    const info = await stat(file).catch(() => undefined);
    if (info === undefined) continue; // released meanwhile
    if (!info.isFile()) {
      throw new Error(`${file} exists and is not a lock file (remove it to save here)`);
    }
    const age = Date.now() - info.mtimeMs;
    const dead = holder !== undefined && holder.host === HOST_TAG && !processAlive(holder.pid);
    // A writer fills in its lock right after creating it: one still unreadable seconds later was
    // left by a writer that died in between.
    const ownerless = holder === undefined && age > LOCK_OWNERLESS_MS;
    if (dead || ownerless || age > LOCK_STALE_MS) {
      // Break it by renaming it away: of several waiters, only one rename succeeds.
      const broken = path.join(dir, `${LOCK_FILE}-broken-${token}`);
      const renamed = await fs.rename(file, broken).then(
        () => true,
        () => false,
      );
      if (renamed) {
        // Between our look and the rename, the lock may have been released and taken by a live
        // writer: then put it back (link fails if the name was taken again meanwhile).
        const taken = await readLockOwner(fs, broken);
        if (holder !== undefined && taken?.token !== holder.token) await fsp.link(broken, file).catch(() => undefined);
        await fs.rm(broken, { force: true });
      }
      continue;
    }
    await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
  }
}

/**
 * Removes this module's temporary (`kind` 'tmp') or backup ('prev') files left in `dir` by a
 * writer that stopped (killed, or failed half-way). Called under the lock, so no other writer of
 * this directory is in the middle of a write: every such file is a leftover. Backups are removed
 * only once a group was committed (until then they may be the only copy of the previous
 * checkpoint). Entries that merely look similar (a user's `.mie-tmp-notes`, a folder) are never
 * touched: only regular files with this module's exact naming.
 */
async function removeLeftovers(fs: FileSystem, dir: string, kind: 'tmp' | 'prev'): Promise<void> {
  const stat = fs.stat ?? fsp.stat;
  for (const entry of await fs.readdir(dir)) {
    if (!entry.startsWith(`.mie-${kind}-`) || !OWNED_NAME.test(entry)) continue;
    const file = path.join(dir, entry);
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile()) await fs.rm(file, { force: true });
  }
}

/**
 * The backups of `name` in `dir` that {@link writeFilesAtomically} made and did not remove (a
 * writer was stopped between its renames): where the previous version of a file of a group is.
 */
export async function previousVersions(dir: string, name: string, fs: Pick<FileSystem, 'readdir'> = fsp): Promise<string[]> {
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  return entries
    .filter((entry) => entry.startsWith(BACKUP_PREFIX) && OWNED_NAME.exec(entry)?.[4] === name)
    .map((entry) => path.join(dir, entry));
}

/**
 * Replaces `files` (name -> content) in `dir`, creating `dir` if needed. All temporary files are
 * written and flushed before the first rename; renames happen in the order given, so the last
 * file is the commit point of the group. Writers of one directory take turns (see the file
 * comment). Any failure rejects with the cause; temporary files are removed.
 */
export async function writeFilesAtomically(
  dir: string,
  files: Array<[name: string, content: FileContent]>,
  options: FileSystem | WriteFilesOptions = {},
): Promise<void> {
  const { fs = fsp, keepPrevious = [], remove = [] } = 'open' in options ? { fs: options as FileSystem } : (options as WriteFilesOptions);
  for (const [name] of files) {
    if (name === '' || name !== path.basename(name) || name === '.' || name === '..') {
      throw new MieSerializationError(`writeFilesAtomically: file names must be plain names inside the directory. Received: ${JSON.stringify(name)}.`);
    }
  }
  await fs.mkdir(dir, { recursive: true });
  const release = await lockDirectory(fs, dir);
  const token = `${process.pid}.${HOST_TAG}.${randomBytes(6).toString('hex')}`;
  const staged = files.map(([name, content]) => ({
    name,
    target: path.join(dir, name),
    temp: path.join(dir, `${TEMP_PREFIX}${token}-${name}`),
    content,
  }));
  const backups: string[] = [];
  try {
    await removeLeftovers(fs, dir, 'tmp');
    for (const file of staged) await writeDurably(fs, file.temp, file.content);
    for (const file of staged) {
      if (keepPrevious.includes(file.name)) {
        const backup = path.join(dir, `${BACKUP_PREFIX}${token}-${file.name}`);
        try {
          await fs.rename(file.target, backup);
          backups.push(backup);
        } catch (error) {
          if (errorCode(error) !== 'ENOENT') throw error;
        }
      }
      await fs.rename(file.temp, file.target);
    }
    await syncDirectory(fs, dir);
    const kept = new Set(files.map(([name]) => name));
    const removed = typeof remove === 'function' ? (await fs.readdir(dir)).filter((name) => remove(name)) : remove;
    for (const name of removed) if (!kept.has(name)) await fs.rm(path.join(dir, name), { force: true });
    for (const backup of backups) await fs.rm(backup, { force: true });
    await removeLeftovers(fs, dir, 'prev');
  } finally {
    for (const file of staged) await fs.rm(file.temp, { force: true }).catch(() => undefined);
    await release().catch(() => undefined);
  }
}
