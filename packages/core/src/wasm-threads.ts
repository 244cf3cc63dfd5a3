/**
 * Threaded wasm under Node (opt-in: `MIE_WASM_THREADS=N`).
 *
 * tfjs-backend-wasm 4.22 ships a threaded SIMD binary but never uses it under Node. Four things
 * stand in the way, and each is handled here before the backend initialises:
 *
 * 1. The flag `WASM_HAS_MULTITHREAD_SUPPORT` answers false whenever `IS_NODE`: it is set to true.
 * 2. The pthread worker script arrives as a `blob:` URL, which Node's `Worker` cannot load: string
 *    Blobs are captured while the backend initialises, and the worker gets a temporary file.
 * 3. The main script handed to each worker is the Emscripten factory's source text, which refers to
 *    bindings of the tfjs bundle's scope (`require$$0`, `__values`, ...): the worker file starts
 *    with a prelude that defines them, and loads the factory from a temporary file too.
 * 4. Left alone, the C++ side sizes its pool at half the logical cores (1 on 2 vCPUs):
 *    `setThreadsCount` asks for N.
 *
 * The pool's workers are then unreferenced, so a process still exits by itself. This depends on
 * the bundle internals of tfjs-backend-wasm 4.22.0 (pinned by the workspace catalog); the thread
 * count is read back after initialisation and reported by `getDevice().threads`. Do not combine
 * with a threaded BLAS: both would compete for the same cores.
 */
import * as fs from 'node:fs';
// The os module object itself (the tfjs bundle reads cpus() from it), not an import namespace copy.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import os = require('node:os');
import * as path from 'node:path';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { MieBackendError } from './errors';
import { environmentVariable } from './host';
import { tf } from './tfjs';

/** The thread count asked for by `MIE_WASM_THREADS` (1, the default, means no threads). */
export function wasmThreadsFromEnvironment(): number {
  const value = environmentVariable('MIE_WASM_THREADS');
  if (value === undefined || value === '') return 1;
  const count = Number(value);
  if (!Number.isSafeInteger(count) || count < 1 || count > 64) {
    throw new MieBackendError(`setBackend: the MIE_WASM_THREADS environment variable must be an integer from 1 to 64. Received: "${value}".`);
  }
  return count;
}

// Bindings the Emscripten factory's source expects from the tfjs bundle's scope.
const WORKER_PRELUDE = `
globalThis.require$$0 = require('fs');
globalThis.require$$1 = require('path');
globalThis.require$$3 = require('perf_hooks');
globalThis.require$$4 = require('os');
globalThis.commonjsGlobal = globalThis;
globalThis._scriptDir = __filename;
globalThis.__values = function (o) { return o[Symbol.iterator](); };
globalThis.__read = function (o, n) {
  var result = [], it = o[Symbol.iterator]();
  for (var i = 0; n === undefined || i < n; i++) { var r = it.next(); if (r.done) break; result.push(r.value); }
  return result;
};
globalThis.__spreadArray = function (to, from) { return to.concat(Array.prototype.slice.call(from)); };
`;

const FACTORY_PREFIX = 'var WasmBackendModuleThreadedSimd';

interface EmscriptenWorker {
  unref(): void;
}

/**
 * Prepares the next wasm backend initialisation to run `count` threads. Returns a function to
 * call once initialisation has finished (successfully or not): it restores the globals it
 * patched and unreferences the pool's workers.
 */
export function prepareWasmThreads(count: number): () => void {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-wasm-threads-'));
  // A pool grows by loading the same files again, so they stay until the process exits.
  process.once('exit', () => fs.rmSync(directory, { recursive: true, force: true }));
  const textOf = new WeakMap<Blob, string>();
  const OriginalBlob = globalThis.Blob;
  const originalCreateObjectURL = URL.createObjectURL;
  let factoryFile: string | null = null;

  class CapturingBlob extends OriginalBlob {
    constructor(parts: ConstructorParameters<typeof Blob>[0] = [], options?: ConstructorParameters<typeof Blob>[1]) {
      super(parts, options);
      if (parts?.every((p) => typeof p === 'string')) {
        const text = (parts as string[]).join('');
        textOf.set(this, text);
        if (text.startsWith(FACTORY_PREFIX)) {
          factoryFile = path.join(directory, 'factory.js');
          fs.writeFileSync(factoryFile, text);
        }
      }
    }
  }
  globalThis.Blob = CapturingBlob as typeof Blob;
  URL.createObjectURL = (blob: Blob) => {
    const text = textOf.get(blob);
    if (text === undefined) return originalCreateObjectURL(blob);
    if (factoryFile === null) throw new MieBackendError('setBackend: MIE_WASM_THREADS: the wasm factory script was not captured (tfjs-backend-wasm is not 4.22?).');
    // The worker receives the factory as a Blob; inside it, createObjectURL names the file instead.
    const redirect = `URL.createObjectURL = () => ${JSON.stringify(factoryFile)}; URL.revokeObjectURL = () => {};\n`;
    const file = path.join(directory, 'worker.js');
    fs.writeFileSync(file, WORKER_PRELUDE + redirect + text);
    return file;
  };
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(count);
  // The C++ side grants at most half the logical cores Emscripten reports (from os.cpus()).
  const originalCpus = os.cpus;
  const cpus = originalCpus();
  if (cpus.length < 2 * count) {
    (os as { cpus: typeof os.cpus }).cpus = () => Array.from({ length: 2 * count }, (_, i) => cpus[i % cpus.length]);
  }

  return () => {
    (os as { cpus: typeof os.cpus }).cpus = originalCpus;
    globalThis.Blob = OriginalBlob;
    URL.createObjectURL = originalCreateObjectURL;
    const backend = (tf.engine() as unknown as { registry: Record<string, unknown> }).registry.wasm as { wasm?: { PThread?: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] } } } | null;
    const pool = backend?.wasm?.PThread;
    if (pool) for (const worker of [...pool.runningWorkers, ...pool.unusedWorkers]) worker.unref();
  };
}
