/**
 * Node's side of the GEMM thread pool (gemm-pool.ts): how many threads to use and how to start a
 * worker. The browser's version is gemm-workers-browser.ts (package.json "browser").
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { GemmWorker } from './gemm-pool';

/** Threads the machine offers this process (`os.availableParallelism`: honours `taskset`). */
export function hardwareThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Whether this thread may block in `Atomics.wait` (always under Node, the main thread included). */
export const mayBlock: boolean = true;

/** Whether shared memory can be handed to workers here. */
export const sharedMemoryAvailable = (): boolean => typeof SharedArrayBuffer === 'function';

/**
 * Starts a worker running `source` (CommonJS, evaluated). The pool unreferences it once it runs,
 * so that a process whose pool is idle still exits by itself.
 */
export function startWorker(source: string): GemmWorker {
  const worker = new Worker(source, { eval: true, name: 'mie-gemm' });
  return {
    post: (message) => worker.postMessage(message),
    onMessage: (listener) => worker.on('message', listener),
    onError: (listener) => worker.on('error', listener),
    unref: () => worker.unref(),
    terminate: () => void worker.terminate(),
  };
}
