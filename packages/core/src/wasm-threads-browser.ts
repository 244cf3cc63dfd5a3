/**
 * The browser's version of wasm-threads.ts (package.json "browser"): MIE_WASM_THREADS and the
 * Node worker shims do not apply. In a cross-origin-isolated page, tfjs-backend-wasm starts its
 * threaded build by itself (it sees `SharedArrayBuffer`); `getDevice().threads` reports it.
 */
import type * as NodeThreads from './wasm-threads';

export const wasmThreadsFromEnvironment: typeof NodeThreads.wasmThreadsFromEnvironment = () => 1;

export const prepareWasmThreads: typeof NodeThreads.prepareWasmThreads = () => () => undefined;
