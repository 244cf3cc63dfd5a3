/**
 * The default wasm GEMM without a system BLAS: native/gemm.c compiled to WebAssembly SIMD and
 * instantiated on the tfjs wasm backend's own memory, so that it reads and writes tensors in
 * place. Transposes are absorbed by its packing (nothing is materialised) and every product is
 * one call, batched or not. See native/gemm.c for the kernel and why it is hand-written.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { GEMM_WASM_BASE64 } from './simd-gemm-module';
import type { Gemm } from './wasm-matmul';

interface GemmExports {
  gemm(m: number, n: number, k: number, a: number, lda: number, ta: number, b: number, ldb: number, tb: number, c: number, ldc: number, work: number): void;
  column_sums(x: number, rows: number, inner: number, out: number): void;
  work_floats(): number;
}

interface SimdGemm {
  exports: GemmExports;
  /** Byte offset of the packing scratch (allocated once per backend memory, never freed). */
  work: number;
}

interface WasmModuleInternals {
  asm?: { memory?: unknown };
  _malloc(bytes: number): number;
  _free(offset: number): void;
}

/** The WebAssembly JS API (a Node global; @types/node 20 does not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: abstract new (...args: never[]) => WasmMemory;
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | null = null;
const instances = new WeakMap<WasmMemory, SimdGemm>();

function internals(backend: BackendWasm): WasmModuleInternals {
  return (backend as unknown as { wasm: WasmModuleInternals }).wasm;
}

/** Base64 to bytes with `atob`, which browsers and Node both have (Node's Buffer is Node's only). */
function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The GEMM module bound to `backend`'s memory, instantiated on first use; throws when it cannot
 * be (a shared memory, as the threaded build uses, or a missing memory export).
 */
function instanceFor(backend: BackendWasm): SimdGemm {
  const module = internals(backend);
  const memory = module.asm?.memory;
  if (!(memory instanceof WebAssemblyApi.Memory)) throw new Error('simd GEMM: the wasm backend does not expose its memory');
  let found = instances.get(memory);
  if (!found) {
    compiled ??= new WebAssemblyApi.Module(decodeBase64(GEMM_WASM_BASE64));
    const exports = new WebAssemblyApi.Instance(compiled, { env: { memory } }).exports as unknown as GemmExports;
    const work = module._malloc(exports.work_floats() * 4);
    if (!work) throw new Error('simd GEMM: could not allocate its packing scratch');
    found = { exports, work };
    instances.set(memory, found);
  }
  return found;
}

/** The GEMM on the wasm heap (see {@link Gemm}). */
export const simdGemm: Gemm = (backend, a, b, out, m, n, k, count) => {
  const { exports, work } = instanceFor(backend);
  const lda = a.transpose ? m : k;
  const ldb = b.transpose ? k : n;
  for (let i = 0; i < count; i++) {
    exports.gemm(m, n, k, a.offset + 4 * i * a.stride, lda, a.transpose ? 1 : 0, b.offset + 4 * i * b.stride, ldb, b.transpose ? 1 : 0, out.offset + 4 * i * out.stride, n, work);
  }
};

/** Column sums of a `[rows, inner]` float32 block at byte `offset` into `[inner]` at `outOffset`. */
export function simdColumnSums(backend: BackendWasm, offset: number, rows: number, inner: number, outOffset: number): void {
  instanceFor(backend).exports.column_sums(offset, rows, inner, outOffset);
}

/**
 * Instantiates the module on `backend` and checks one product with both transposes and ragged
 * tiles against a plain loop; false (and the caller falls back to XNNPACK) when anything fails.
 */
export function loadSimdGemm(backend: BackendWasm): boolean {
  try {
    instanceFor(backend); // first, so that its allocation cannot move the views below
    const module = internals(backend);
    const [m, n, k] = [3, 19, 5];
    const base = module._malloc(4 * (m * k + k * n + m * n));
    if (!base) return false;
    try {
      const memory = module.asm!.memory as WasmMemory;
      const heap = new Float32Array(memory.buffer, base, m * k + k * n + m * n);
      const a = (i: number, p: number) => (i + 1) * 0.5 - p; // op(A)[i][p], stored [k, m]
      const b = (p: number, j: number) => p * 0.25 + j - 3; // op(B)[p][j], stored [n, k]
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) heap[p * m + i] = a(i, p);
      for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) heap[m * k + j * k + p] = b(p, j);
      simdGemm(backend, { offset: base, transpose: true, stride: 0 }, { offset: base + 4 * m * k, transpose: true, stride: 0 }, { offset: base + 4 * (m * k + k * n), stride: 0 }, m, n, k, 1);
      const out = new Float32Array(memory.buffer, base + 4 * (m * k + k * n), m * n);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let expected = 0;
          for (let p = 0; p < k; p++) expected += a(i, p) * b(p, j);
          if (out[i * n + j] !== expected) return false; // small integers and halves: exact
        }
      }
      return true;
    } finally {
      module._free(base);
    }
  } catch {
    return false;
  }
}
