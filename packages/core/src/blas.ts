/**
 * Optional native BLAS for the wasm backend's matmuls: `cblas_sgemm` from a system library
 * (OpenBLAS's `libopenblas.so.0` first), called through the koffi FFI package directly on
 * wasm-heap views, so nothing is copied. Nothing here is required: when koffi or the library is
 * missing, or the library fails a self-check, `loadBlas` returns null and the wasm backend uses
 * MIE's SIMD GEMM (or XNNPACK) instead.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { environmentVariable, loadOptionalModule } from './host';
import type { Gemm } from './wasm-matmul';

type Sgemm = (
  order: number, transA: number, transB: number, m: number, n: number, k: number, alpha: number,
  a: Float32Array, lda: number, b: Float32Array, ldb: number, beta: number, c: Float32Array, ldc: number,
) => void;

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** Libraries tried in order (`MIE_BLAS_LIBRARY` first when set). */
export const BLAS_LIBRARIES = ['libopenblas.so.0', 'libopenblas.so', 'libopenblas.dylib', 'libcblas.so.3', 'libblas.so.3'];

/** A loaded BLAS: its library name and a GEMM for the wasm matmul kernels. */
export interface Blas {
  library: string;
  gemm: Gemm;
  sgemm: Sgemm;
}

/** Checks a tiny product with every transpose combination against a hand computation. */
function selfCheck(sgemm: Sgemm): boolean {
  const a = new Float32Array([1, 2, 3, 4, 5, 6]); // [2, 3]
  const b = new Float32Array([7, 8, 9, 10, 11, 12]); // [3, 2]
  const c = new Float32Array(4);
  sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2);
  if (c.join() !== '58,64,139,154') return false;
  // aᵀ as [3, 2] stored transposed, bᵀ as [2, 3] stored transposed: the same product.
  const at = new Float32Array([1, 4, 2, 5, 3, 6]);
  const bt = new Float32Array([7, 9, 11, 8, 10, 12]);
  c.fill(0);
  sgemm(ROW_MAJOR, TRANS, TRANS, 2, 2, 3, 1, at, 2, bt, 3, 0, c, 2);
  return c.join() === '58,64,139,154';
}

/**
 * Loads `cblas_sgemm` (unless `MIE_BLAS=0`), or returns null. Never throws: a missing koffi, a
 * missing library or a failed self-check all mean "no BLAS".
 */
export function loadBlas(): Blas | null {
  if (environmentVariable('MIE_BLAS') === '0') return null;
  let koffi: { load(path: string): { func(signature: string): unknown } };
  try {
    koffi = loadOptionalModule('koffi') as typeof koffi;
  } catch {
    return null;
  }
  const preferred = environmentVariable('MIE_BLAS_LIBRARY');
  const candidates = preferred ? [preferred, ...BLAS_LIBRARIES] : BLAS_LIBRARIES;
  for (const library of candidates) {
    try {
      const sgemm = koffi
        .load(library)
        .func(
          'void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)',
        ) as Sgemm;
      if (selfCheck(sgemm)) return { library, sgemm, gemm: blasGemm(sgemm) };
    } catch {
      // Not loadable or lacks the symbol: try the next one.
    }
  }
  return null;
}

/** A GEMM over wasm-heap views: one `cblas_sgemm` per batch element, transposes by flag. */
function blasGemm(sgemm: Sgemm): Gemm {
  return (backend: BackendWasm, a, b, out, m, n, k, count) => {
    const heap = (backend as unknown as { wasm: { HEAPF32: Float32Array } }).wasm.HEAPF32.buffer;
    const lda = a.transpose ? m : k;
    const ldb = b.transpose ? k : n;
    for (let i = 0; i < count; i++) {
      sgemm(
        ROW_MAJOR,
        a.transpose ? TRANS : NO_TRANS,
        b.transpose ? TRANS : NO_TRANS,
        m,
        n,
        k,
        1,
        new Float32Array(heap, a.offset + 4 * i * a.stride, m * k),
        lda,
        new Float32Array(heap, b.offset + 4 * i * b.stride, k * n),
        ldb,
        0,
        new Float32Array(heap, out.offset + 4 * i * out.stride, m * n),
        n,
      );
    }
  };
}
