/** The browser's version of atomic-files.ts (package.json "browser"): a page has no file system. */
import type * as NodeFiles from './atomic-files';
import { nodeOnly } from './node-only';

export type { FileContent, FileSystem, WriteFilesOptions } from './atomic-files';

export const hostTag: typeof NodeFiles.hostTag = () => '00000000';

export const previousVersions: typeof NodeFiles.previousVersions = async () => [];

export const writeFilesAtomically: typeof NodeFiles.writeFilesAtomically = async () =>
  nodeOnly('writeFilesAtomically', "save models to IndexedDB (model.save('indexeddb://name')) or take their bytes (model.toBuffers())");
