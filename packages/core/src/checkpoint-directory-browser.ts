/**
 * The browser's version of checkpoint-directory.ts (package.json "browser"): a page has no file
 * system, so a "directory" is a URL, resolved against the page (`BaseModel.load('models/g2p')`
 * fetches `models/g2p/config.json` and the weights beside it), and saving to one is refused with
 * the ways a browser can save: IndexedDB or bytes.
 */
import type * as NodeDirectory from './checkpoint-directory';
import { loadFromUrl } from './checkpoint-url';
import { MieBackendError } from './errors';

export const loadDirectory: typeof NodeDirectory.loadDirectory = (expected, dir, where) => {
  const page = (globalThis as { document?: { baseURI?: string }; location?: { href?: string } }).document?.baseURI ?? (globalThis as { location?: { href?: string } }).location?.href;
  return loadFromUrl(expected, new URL(dir, page), where);
};

export const saveDirectory: typeof NodeDirectory.saveDirectory = async (dir) => {
  throw new MieBackendError(
    `save(${JSON.stringify(dir)}): a browser has no file system to save a directory in; save to IndexedDB (model.save('indexeddb://name')) or take the bytes (model.toBuffers()).`,
  );
};
