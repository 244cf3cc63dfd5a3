/**
 * The browser's version of gemm-workers.ts (package.json "browser"). Threads need
 * `SharedArrayBuffer`, which a page has only when it is cross-origin isolated (served with
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`);
 * workers are started from a `blob:` URL, so a bundler needs no extra file.
 */
import type { GemmWorker } from './gemm-pool';
import type * as NodeWorkers from './gemm-workers';

interface BrowserWorker {
  postMessage(message: unknown): void;
  addEventListener(type: string, listener: (event: { data?: unknown; message?: string }) => void, options?: { once?: boolean }): void;
  terminate(): void;
}
interface BrowserGlobals {
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
  WorkerGlobalScope?: unknown;
  Worker: new (url: string, options?: { name?: string }) => BrowserWorker;
}
const globals = globalThis as unknown as BrowserGlobals;

export const hardwareThreads: typeof NodeWorkers.hardwareThreads = () => globals.navigator?.hardwareConcurrency ?? 1;

/** The page's main thread may not block in `Atomics.wait`; a worker may. */
export const mayBlock: typeof NodeWorkers.mayBlock = globals.WorkerGlobalScope !== undefined;

export const sharedMemoryAvailable: typeof NodeWorkers.sharedMemoryAvailable = () => typeof SharedArrayBuffer === 'function' && globals.crossOriginIsolated === true;

export const startWorker: typeof NodeWorkers.startWorker = (source) => {
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  const worker = new globals.Worker(url, { name: 'mie-gemm' });
  // The URL may be revoked once the script has run (its first message), not before it is fetched.
  worker.addEventListener('message', () => URL.revokeObjectURL(url), { once: true });
  const handle: GemmWorker = {
    post: (message) => worker.postMessage(message),
    onMessage: (listener) => worker.addEventListener('message', (event) => listener(event.data)),
    onError: (listener) => worker.addEventListener('error', (event) => listener(new Error(event.message ?? 'the GEMM worker failed'))),
    unref: () => undefined, // a page's workers never keep anything alive
    terminate: () => worker.terminate(),
  };
  return handle;
};
