/*
 * Float32 GEMM for the tfjs wasm backend, compiled to WebAssembly SIMD128 and run on the
 * backend's own heap (the module imports its memory). One call is single-threaded; the thread
 * pool (src/gemm-pool.ts) gives each thread a block of rows, columns or batch elements and calls
 * the build of this file that imports a shared memory.
 *
 *   C[m, n] = op(A)[m, k] op(B)[k, n], row-major, op(X) = X or X^T
 *
 * Layout follows the GotoBLAS/BLIS scheme: B is packed in KC x NC blocks of NR-column panels
 * (one panel stays in L1 across a row sweep), A in MC x KC blocks of MR-row panels (L2), and a
 * 2 x 16 register tile accumulates with mul + add. Packing absorbs both transposes, so no
 * transposed copy is ever materialised. Why hand-written: tfjs's XNNPACK takes untransposed
 * operands only, streams the whole packed B per row panel, and re-creates its operator (and
 * repacks) for every new right operand; measured here it reaches 15-20 GFLOP/s on transformer
 * shapes against 24-28 for this kernel (see packages/core/README.md).
 *
 * The module must never touch memory it was not handed: it has no data segment, and it is
 * linked with the shadow stack first and sized 0, so any use of the stack would trap at address
 * 0 - n rather than write into the heap. `scripts/build-gemm.mjs` checks that the code never
 * reads the stack pointer. All pointers are byte offsets into the imported memory.
 *
 * Build: node packages/core/scripts/build-gemm.mjs (needs clang and wasm-ld 16 or later for
 * relaxed SIMD; Debian: clang-19 lld-19).
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

/*
 * acc + x * y. Built twice (scripts/build-gemm.mjs): with MIE_RELAXED_SIMD it is relaxed SIMD's
 * fused multiply-add (`f32x4.relaxed_madd`: one instruction where the CPU has FMA, one rounding
 * or two, which the relaxed-SIMD proposal leaves to the engine), else a multiply and an add.
 * Loaders pick the relaxed build when `WebAssembly.validate` accepts it (Node 22+, current
 * browsers).
 */
#ifdef MIE_RELAXED_SIMD
#define MADD(acc, x, y) wasm_f32x4_relaxed_madd(x, y, acc)
#else
#define MADD(acc, x, y) wasm_f32x4_add(acc, wasm_f32x4_mul(x, y))
#endif

#define MR 2
#define NR 16
#define KC 256
#define MC 128
#define NC 1024

static inline int min_i(int a, int b) { return a < b ? a : b; }

/* Packs op(A)[0:mc, 0:kc] as MR-row panels: panel[p * MR + r] = op(A)[i0 + r][p], zero rows past mc. */
static void pack_a(const float *a, int lda, int trans, int mc, int kc, float *dst) {
  for (int i0 = 0; i0 < mc; i0 += MR, dst += kc * MR) {
    int rows = min_i(MR, mc - i0);
    if (trans) {
      /* op(A)[i][p] = a[p * lda + i]: MR consecutive floats per p. */
      const float *src = a + i0;
      if (rows == MR) {
        for (int p = 0; p < kc; p++) { dst[2 * p] = src[p * lda]; dst[2 * p + 1] = src[p * lda + 1]; }
      } else {
        for (int p = 0; p < kc; p++) { dst[2 * p] = src[p * lda]; dst[2 * p + 1] = 0.f; }
      }
    } else {
      const float *r0 = a + i0 * lda;
      const float *r1 = rows == MR ? r0 + lda : 0;
      int p = 0;
      if (r1) {
        for (; p + 4 <= kc; p += 4) {
          v128_t x = wasm_v128_load(r0 + p), y = wasm_v128_load(r1 + p);
          wasm_v128_store(dst + 2 * p, wasm_i32x4_shuffle(x, y, 0, 4, 1, 5));
          wasm_v128_store(dst + 2 * p + 4, wasm_i32x4_shuffle(x, y, 2, 6, 3, 7));
        }
      }
      for (; p < kc; p++) { dst[2 * p] = r0[p]; dst[2 * p + 1] = r1 ? r1[p] : 0.f; }
    }
  }
}

/* Packs op(B)[0:kc, 0:nc] as NR-column panels: panel[p * NR + c] = op(B)[p][j0 + c], zero columns past nc. */
static void pack_b(const float *b, int ldb, int trans, int kc, int nc, float *dst) {
  for (int j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    int cols = min_i(NR, nc - j0);
    if (!trans && cols == NR) {
      for (int p = 0; p < kc; p++) {
        const float *src = b + p * ldb + j0;
        for (int v = 0; v < NR; v += 4) wasm_v128_store(dst + p * NR + v, wasm_v128_load(src + v));
      }
    } else if (trans && cols == NR) {
      /* op(B)[p][j] = b[j * ldb + p]: 4 x 4 transposes of rows j0+c..c+3 at p..p+3. */
      int p = 0;
      for (; p + 4 <= kc; p += 4) {
        for (int c = 0; c < NR; c += 4) {
          const float *s = b + (j0 + c) * ldb + p;
          v128_t r0 = wasm_v128_load(s), r1 = wasm_v128_load(s + ldb);
          v128_t r2 = wasm_v128_load(s + 2 * ldb), r3 = wasm_v128_load(s + 3 * ldb);
          v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
          v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
          wasm_v128_store(dst + p * NR + c, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
          wasm_v128_store(dst + (p + 1) * NR + c, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
          wasm_v128_store(dst + (p + 2) * NR + c, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
          wasm_v128_store(dst + (p + 3) * NR + c, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
        }
      }
      for (; p < kc; p++)
        for (int c = 0; c < NR; c++) dst[p * NR + c] = b[(j0 + c) * ldb + p];
    } else {
      for (int p = 0; p < kc; p++)
        for (int c = 0; c < NR; c++)
          dst[p * NR + c] = c < cols ? (trans ? b[(j0 + c) * ldb + p] : b[p * ldb + j0 + c]) : 0.f;
    }
  }
}

/* Writes (or adds, when acc) the first nr columns of one tile row. */
static inline void store_row(float *c, v128_t v0, v128_t v1, v128_t v2, v128_t v3, int nr, int acc) {
  if (nr == NR) {
    if (acc) {
      v0 = wasm_f32x4_add(v0, wasm_v128_load(c));
      v1 = wasm_f32x4_add(v1, wasm_v128_load(c + 4));
      v2 = wasm_f32x4_add(v2, wasm_v128_load(c + 8));
      v3 = wasm_f32x4_add(v3, wasm_v128_load(c + 12));
    }
    wasm_v128_store(c, v0);
    wasm_v128_store(c + 4, v1);
    wasm_v128_store(c + 8, v2);
    wasm_v128_store(c + 12, v3);
    return;
  }
#define LANE(i, v, l) if (nr > i) c[i] = (acc ? c[i] : 0.f) + wasm_f32x4_extract_lane(v, l);
  LANE(0, v0, 0) LANE(1, v0, 1) LANE(2, v0, 2) LANE(3, v0, 3)
  LANE(4, v1, 0) LANE(5, v1, 1) LANE(6, v1, 2) LANE(7, v1, 3)
  LANE(8, v2, 0) LANE(9, v2, 1) LANE(10, v2, 2) LANE(11, v2, 3)
  LANE(12, v3, 0) LANE(13, v3, 1) LANE(14, v3, 2) LANE(15, v3, 3)
#undef LANE
}

/* One MR x NR tile of C (mr x nr valid) from an A panel and a B panel of depth kc. */
static inline void kernel(int kc, const float *ap, const float *bp, float *c, int ldc, int mr, int nr, int acc) {
  v128_t z = wasm_f32x4_splat(0.f);
  v128_t c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
  for (int p = 0; p < kc; p++, ap += MR, bp += NR) {
    v128_t b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
    v128_t b2 = wasm_v128_load(bp + 8), b3 = wasm_v128_load(bp + 12);
    v128_t a0 = wasm_v128_load32_splat(ap), a1 = wasm_v128_load32_splat(ap + 1);
    c00 = MADD(c00, a0, b0);
    c01 = MADD(c01, a0, b1);
    c02 = MADD(c02, a0, b2);
    c03 = MADD(c03, a0, b3);
    c10 = MADD(c10, a1, b0);
    c11 = MADD(c11, a1, b1);
    c12 = MADD(c12, a1, b2);
    c13 = MADD(c13, a1, b3);
  }
  store_row(c, c00, c01, c02, c03, nr, acc);
  if (mr > 1) store_row(c + ldc, c10, c11, c12, c13, nr, acc);
}

/* Floats of scratch memory gemm needs (packed A block, then packed B block). */
EXPORT(work_floats) int work_floats(void) { return MC * KC + KC * NC; }

/*
 * C = op(A) op(B). lda, ldb, ldc are row strides in elements of the stored matrices (A is stored
 * [m, k], or [k, m] when ta; B is [k, n], or [n, k] when tb). k must be at least 1; work holds
 * work_floats() floats and must not overlap the operands.
 */
EXPORT(gemm)
void gemm(int m, int n, int k, const float *a, int lda, int ta, const float *b, int ldb, int tb, float *c, int ldc, float *work) {
  float *ap = work, *bp = work + MC * KC;
  for (int jc = 0; jc < n; jc += NC) {
    int nc = min_i(NC, n - jc);
    for (int pc = 0; pc < k; pc += KC) {
      int kc = min_i(KC, k - pc);
      pack_b(tb ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, tb, kc, nc, bp);
      for (int ic = 0; ic < m; ic += MC) {
        int mc = min_i(MC, m - ic);
        pack_a(ta ? a + pc * lda + ic : a + ic * lda + pc, lda, ta, mc, kc, ap);
        for (int jr = 0; jr < nc; jr += NR)
          for (int ir = 0; ir < mc; ir += MR)
            kernel(kc, ap + ir * kc, bp + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, min_i(MR, mc - ir), min_i(NR, nc - jr), pc > 0);
      }
    }
  }
}

static inline float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) + (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

/*
 * C[m, n] = A[m, k] W[n, k]^T for a few rows (a decoding step's): the dot product of each row of
 * A with each row of W, four accumulators over 16 floats at a time. A product this flat reads every
 * weight once per call, so it runs at memory speed: one W row streamed at a time reached 30 GB/s
 * here, four rows at once 15-17 (register pressure) and XNNPACK's packed path 17-20. Packing W
 * first, as gemm does, would read it twice. lda, ldw, ldc are row strides in elements.
 */
EXPORT(gemv_t)
void gemv_t(int m, int n, int k, const float *a, int lda, const float *w, int ldw, float *c, int ldc) {
  for (int j = 0; j < n; j++) {
    const float *row = w + j * ldw;
    for (int i = 0; i < m; i++) {
      const float *x = a + i * lda;
      v128_t s0 = wasm_f32x4_splat(0.f), s1 = s0, s2 = s0, s3 = s0;
      int p = 0;
      for (; p + 16 <= k; p += 16) {
        s0 = MADD(s0, wasm_v128_load(x + p), wasm_v128_load(row + p));
        s1 = MADD(s1, wasm_v128_load(x + p + 4), wasm_v128_load(row + p + 4));
        s2 = MADD(s2, wasm_v128_load(x + p + 8), wasm_v128_load(row + p + 8));
        s3 = MADD(s3, wasm_v128_load(x + p + 12), wasm_v128_load(row + p + 12));
      }
      for (; p + 4 <= k; p += 4) s0 = MADD(s0, wasm_v128_load(x + p), wasm_v128_load(row + p));
      float sum = hsum(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
      for (; p < k; p++) sum += x[p] * row[p];
      c[i * ldc + j] = sum;
    }
  }
}

/* out[j] = sum over i of x[i * inner + j] (leading-axes Sum: bias and layer-norm gradients). */
EXPORT(column_sums)
void column_sums(const float *x, int rows, int inner, float *out) {
  int j = 0;
  for (; j + 16 <= inner; j += 16) {
    v128_t s0 = wasm_f32x4_splat(0.f), s1 = s0, s2 = s0, s3 = s0;
    for (int i = 0; i < rows; i++) {
      const float *r = x + i * inner + j;
      s0 = wasm_f32x4_add(s0, wasm_v128_load(r));
      s1 = wasm_f32x4_add(s1, wasm_v128_load(r + 4));
      s2 = wasm_f32x4_add(s2, wasm_v128_load(r + 8));
      s3 = wasm_f32x4_add(s3, wasm_v128_load(r + 12));
    }
    wasm_v128_store(out + j, s0);
    wasm_v128_store(out + j + 4, s1);
    wasm_v128_store(out + j + 8, s2);
    wasm_v128_store(out + j + 12, s3);
  }
  for (; j < inner; j++) {
    float s = 0.f;
    for (int i = 0; i < rows; i++) s += x[i * inner + j];
    out[j] = s;
  }
}

/*
 * One AdamW step over n float32 elements (torch.optim.AdamW, amsgrad off), in float32 as
 * PyTorch's CPU kernels compute it, op by op:
 *
 *   m' = m * beta1 + (1 - beta1) * g          v' = v * beta2 + (1 - beta2) * (g * g)
 *   p' = p * decay + (-step_size) * (m' / (sqrt(v') / bc2_sqrt + eps))
 *
 * decay is 1 - lr * weight_decay (1 without decay), step_size lr / (1 - beta1^t), bc2_sqrt
 * sqrt(1 - beta2^t). The outputs may not overlap the inputs. One pass reads 16 bytes and writes
 * 12 per element; the JavaScript loop it replaces ran at about a quarter of memory speed (a
 * double square root and division per element).
 */
EXPORT(adamw_update)
void adamw_update(int n, const float *p, const float *g, const float *m, const float *v, float *out_p, float *out_m, float *out_v,
                  float beta1, float beta2, float eps, float decay, float step_size, float bc2_sqrt) {
  const float c1 = 1.f - beta1, c2 = 1.f - beta2, neg_step = -step_size;
  const v128_t b1 = wasm_f32x4_splat(beta1), b2 = wasm_f32x4_splat(beta2), k1 = wasm_f32x4_splat(c1), k2 = wasm_f32x4_splat(c2);
  const v128_t ve = wasm_f32x4_splat(eps), vd = wasm_f32x4_splat(decay), vs = wasm_f32x4_splat(neg_step), vb = wasm_f32x4_splat(bc2_sqrt);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gi = wasm_v128_load(g + i);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), b1), wasm_f32x4_mul(k1, gi));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), b2), wasm_f32x4_mul(k2, wasm_f32x4_mul(gi, gi)));
    v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), vb), ve);
    v128_t pi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(p + i), vd), wasm_f32x4_mul(vs, wasm_f32x4_div(mi, denom)));
    wasm_v128_store(out_m + i, mi);
    wasm_v128_store(out_v + i, vi);
    wasm_v128_store(out_p + i, pi);
  }
  for (; i < n; i++) {
    float gi = g[i];
    float mi = m[i] * beta1 + c1 * gi;
    float vi = v[i] * beta2 + c2 * (gi * gi);
    float denom = __builtin_sqrtf(vi) / bc2_sqrt + eps;
    out_m[i] = mi;
    out_v[i] = vi;
    out_p[i] = p[i] * decay + neg_step * (mi / denom);
  }
}

/*
 * e^x in four lanes for the softmax passes below: x = k ln2 + r with k = nearest(x log2 e) and
 * |r| <= ln2 / 2 (Cody-Waite: ln2 in two parts), e^r by its Taylor series to r^7 (relative error
 * below 1e-8 before rounding), times 2^k built in the exponent bits. Below -87.33 (float32's
 * smallest normal) the result is 0, above 88 it is e^88; NaN stays NaN (wasm's min and max
 * propagate it, and a saturating conversion makes k's bits harmless).
 */
static inline v128_t exp4(v128_t x) {
  const v128_t lo = wasm_f32x4_splat(-87.33654f);
  const v128_t under = wasm_f32x4_lt(x, lo);
  x = wasm_f32x4_max(wasm_f32x4_min(x, wasm_f32x4_splat(88.0f)), lo);
  const v128_t k = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(k, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(k, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.f / 5040.f);
  p = MADD(wasm_f32x4_splat(1.f / 720.f), p, r);
  p = MADD(wasm_f32x4_splat(1.f / 120.f), p, r);
  p = MADD(wasm_f32x4_splat(1.f / 24.f), p, r);
  p = MADD(wasm_f32x4_splat(1.f / 6.f), p, r);
  p = MADD(wasm_f32x4_splat(0.5f), p, r);
  p = MADD(wasm_f32x4_splat(1.f), p, r);
  p = MADD(wasm_f32x4_splat(1.f), p, r);
  const v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(k), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(p, scale), under);
}

/* The last n (1..3) floats at p in lanes 0..n-1, fill in the others; reads nothing past p[n - 1]. */
static inline v128_t load_tail(const float *p, int n, float fill) {
  return wasm_f32x4_make(p[0], n > 1 ? p[1] : fill, n > 2 ? p[2] : fill, fill);
}

static inline v128_t max_lanes(v128_t v) {
  v = wasm_f32x4_max(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_f32x4_max(v, wasm_i32x4_shuffle(v, v, 1, 0, 3, 2));
}

static inline v128_t add_promoted(v128_t acc, v128_t v) {
  return wasm_f64x2_add(acc, wasm_f64x2_add(wasm_f64x2_promote_low_f32x4(v), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3))));
}

static inline double sum_f64_lanes(v128_t v) {
  return wasm_f64x2_extract_lane(v, 0) + wasm_f64x2_extract_lane(v, 1);
}

/*
 * Per row of a [rows, cols] float32 block (cols >= 1): its maximum, the sum of e^(x - max) and
 * the sum of x, the two sums accumulated in float64 (a log-softmax's statistics: cross entropy's
 * forward). A NaN anywhere in a row makes its maximum and sums NaN.
 */
EXPORT(row_exp_stats)
void row_exp_stats(int rows, int cols, const float *x, float *out_max, float *out_sum_exp, float *out_sum) {
  const float neg_inf = -__builtin_inff();
  const int tail = cols & 3, body = cols - tail;
  for (int r = 0; r < rows; r++) {
    const float *row = x + (long)r * cols;
    v128_t m0 = wasm_f32x4_splat(neg_inf), m1 = m0;
    int j = 0;
    for (; j + 8 <= body; j += 8) {
      m0 = wasm_f32x4_max(m0, wasm_v128_load(row + j));
      m1 = wasm_f32x4_max(m1, wasm_v128_load(row + j + 4));
    }
    for (; j < body; j += 4) m0 = wasm_f32x4_max(m0, wasm_v128_load(row + j));
    if (tail) m1 = wasm_f32x4_max(m1, load_tail(row + body, tail, neg_inf));
    const v128_t max = max_lanes(wasm_f32x4_max(m0, m1));
    v128_t e0 = wasm_f64x2_splat(0.0), e1 = e0, s0 = e0, s1 = e0;
    j = 0;
    for (; j + 8 <= body; j += 8) {
      const v128_t a = wasm_v128_load(row + j), b = wasm_v128_load(row + j + 4);
      e0 = add_promoted(e0, exp4(wasm_f32x4_sub(a, max)));
      e1 = add_promoted(e1, exp4(wasm_f32x4_sub(b, max)));
      s0 = add_promoted(s0, a);
      s1 = add_promoted(s1, b);
    }
    for (; j < body; j += 4) {
      const v128_t a = wasm_v128_load(row + j);
      e0 = add_promoted(e0, exp4(wasm_f32x4_sub(a, max)));
      s0 = add_promoted(s0, a);
    }
    if (tail) {
      /* Padding lanes: e^(x - max) of x = max is 1, so they are masked to 0 after the exponential. */
      const v128_t a = load_tail(row + body, tail, 0.f);
      const v128_t keep = wasm_i32x4_make(-1, tail > 1 ? -1 : 0, tail > 2 ? -1 : 0, 0);
      e1 = add_promoted(e1, wasm_v128_and(exp4(wasm_f32x4_sub(a, max)), keep));
      s1 = add_promoted(s1, a);
    }
    out_max[r] = wasm_f32x4_extract_lane(max, 0);
    out_sum_exp[r] = (float)(sum_f64_lanes(e0) + sum_f64_lanes(e1));
    out_sum[r] = (float)(sum_f64_lanes(s0) + sum_f64_lanes(s1));
  }
}

/*
 * out[r, j] = scale[r] * e^(x[r, j] - shift[r]) + offset[r] over a [rows, cols] float32 block:
 * with shift the row's log-sum-exp, the softmax and its affine uses (cross entropy's gradient).
 */
EXPORT(exp_affine_rows)
void exp_affine_rows(int rows, int cols, const float *x, const float *shift, const float *scale, const float *offset, float *out) {
  const int tail = cols & 3, body = cols - tail;
  for (int r = 0; r < rows; r++) {
    const float *row = x + (long)r * cols;
    float *dst = out + (long)r * cols;
    const v128_t sh = wasm_f32x4_splat(shift[r]), sc = wasm_f32x4_splat(scale[r]), of = wasm_f32x4_splat(offset[r]);
    int j = 0;
    for (; j + 8 <= body; j += 8) {
      wasm_v128_store(dst + j, MADD(of, sc, exp4(wasm_f32x4_sub(wasm_v128_load(row + j), sh))));
      wasm_v128_store(dst + j + 4, MADD(of, sc, exp4(wasm_f32x4_sub(wasm_v128_load(row + j + 4), sh))));
    }
    for (; j < body; j += 4) wasm_v128_store(dst + j, MADD(of, sc, exp4(wasm_f32x4_sub(wasm_v128_load(row + j), sh))));
    if (tail) {
      const v128_t v = MADD(of, sc, exp4(wasm_f32x4_sub(load_tail(row + body, tail, 0.f), sh)));
      dst[body] = wasm_f32x4_extract_lane(v, 0);
      if (tail > 1) dst[body + 1] = wasm_f32x4_extract_lane(v, 1);
      if (tail > 2) dst[body + 2] = wasm_f32x4_extract_lane(v, 2);
    }
  }
}

/* v (four float32 lanes) squared and summed into two float64 lanes of acc. */
static inline v128_t add_squares_promoted(v128_t acc, v128_t v) {
  const v128_t lo = wasm_f64x2_promote_low_f32x4(v), hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3));
  return wasm_f64x2_add(acc, wasm_f64x2_add(wasm_f64x2_mul(lo, lo), wasm_f64x2_mul(hi, hi)));
}

/*
 * Layer normalisation of each row of n features (PyTorch's): the mean, then the biased variance
 * of the centred row (two passes, sums in float64), rstd = 1 / sqrt(var + eps), and
 * y = (x - mean) * rstd * w + b; writes mean and rstd per row for the backward.
 */
EXPORT(layer_norm_rows)
void layer_norm_rows(int rows, int n, const float *x, const float *w, const float *b, float eps, float *y, float *mean, float *rstd) {
  const int tail = n & 3, body = n - tail;
  for (int r = 0; r < rows; r++) {
    const float *row = x + (long)r * n;
    float *out = y + (long)r * n;
    v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0;
    int j = 0;
    for (; j + 8 <= body; j += 8) {
      s0 = add_promoted(s0, wasm_v128_load(row + j));
      s1 = add_promoted(s1, wasm_v128_load(row + j + 4));
    }
    for (; j < body; j += 4) s0 = add_promoted(s0, wasm_v128_load(row + j));
    double sum = sum_f64_lanes(s0) + sum_f64_lanes(s1);
    for (j = body; j < n; j++) sum += row[j];
    /* The mean as float32 hi + lo: (x - hi) is exact near the mean, so a row far from zero
     * (mean 1e4, spread 1e-2) keeps its deviations. */
    const double md = sum / n;
    const float m = (float)md, ml = (float)(md - (double)m);
    const v128_t vm = wasm_f32x4_splat(m), vl = wasm_f32x4_splat(ml);
    v128_t q0 = wasm_f64x2_splat(0.0), q1 = q0;
    for (j = 0; j + 8 <= body; j += 8) {
      q0 = add_squares_promoted(q0, wasm_f32x4_sub(wasm_f32x4_sub(wasm_v128_load(row + j), vm), vl));
      q1 = add_squares_promoted(q1, wasm_f32x4_sub(wasm_f32x4_sub(wasm_v128_load(row + j + 4), vm), vl));
    }
    for (; j < body; j += 4) q0 = add_squares_promoted(q0, wasm_f32x4_sub(wasm_f32x4_sub(wasm_v128_load(row + j), vm), vl));
    double squares = sum_f64_lanes(q0) + sum_f64_lanes(q1);
    for (j = body; j < n; j++) {
      const double d = (double)((row[j] - m) - ml);
      squares += d * d;
    }
    const float s = (float)(1.0 / __builtin_sqrt(squares / n + (double)eps));
    const v128_t vs = wasm_f32x4_splat(s);
    for (j = 0; j < body; j += 4) {
      const v128_t normalised = wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_sub(wasm_v128_load(row + j), vm), vl), vs);
      wasm_v128_store(out + j, MADD(wasm_v128_load(b + j), normalised, wasm_v128_load(w + j)));
    }
    for (j = body; j < n; j++) out[j] = ((row[j] - m) - ml) * s * w[j] + b[j];
    mean[r] = m;
    rstd[r] = s;
  }
}

/*
 * The backward of layer_norm_rows. With xc = x - mean, e = dy * w, per row:
 *   dx = rstd * (e - mean(e) - xc * rstd^2 * mean(e * xc)),
 * and over the rows dw = sum(dy * xc * rstd), db = sum(dy). Row sums and the column sums (acc:
 * 2n float64, dw's then db's, 8-byte aligned scratch) are accumulated in float64.
 */
EXPORT(layer_norm_grad_rows)
void layer_norm_grad_rows(int rows, int n, const float *dy, const float *x, const float *w, const float *mean, const float *rstd,
                          float *dx, double *acc, float *dw, float *db) {
  const int tail = n & 3, body = n - tail;
  double *acc_w = acc, *acc_b = acc + n;
  for (int j = 0; j < 2 * n; j++) acc[j] = 0.0;
  for (int r = 0; r < rows; r++) {
    const float *g = dy + (long)r * n, *row = x + (long)r * n;
    float *out = dx + (long)r * n;
    const float m = mean[r], s = rstd[r];
    const v128_t vm = wasm_f32x4_splat(m), vs = wasm_f32x4_splat(s);
    v128_t e0 = wasm_f64x2_splat(0.0), h0 = e0;
    int j = 0;
    for (; j < body; j += 4) {
      const v128_t e = wasm_f32x4_mul(wasm_v128_load(g + j), wasm_v128_load(w + j));
      e0 = add_promoted(e0, e);
      h0 = add_promoted(h0, wasm_f32x4_mul(e, wasm_f32x4_sub(wasm_v128_load(row + j), vm)));
    }
    double esum = sum_f64_lanes(e0), hsum = sum_f64_lanes(h0);
    for (j = body; j < n; j++) {
      const float e = g[j] * w[j];
      esum += e;
      hsum += e * (row[j] - m);
    }
    const float a = (float)(esum / n), c = (float)(hsum / n * s * s);
    const v128_t va = wasm_f32x4_splat(a), vc = wasm_f32x4_splat(c);
    for (j = 0; j < body; j += 4) {
      const v128_t d = wasm_v128_load(g + j);
      const v128_t xc = wasm_f32x4_sub(wasm_v128_load(row + j), vm);
      const v128_t inner = wasm_f32x4_sub(wasm_f32x4_sub(wasm_f32x4_mul(d, wasm_v128_load(w + j)), va), wasm_f32x4_mul(xc, vc));
      wasm_v128_store(out + j, wasm_f32x4_mul(vs, inner));
      const v128_t dxhat = wasm_f32x4_mul(d, wasm_f32x4_mul(xc, vs));
      wasm_v128_store(acc_w + j, wasm_f64x2_add(wasm_v128_load(acc_w + j), wasm_f64x2_promote_low_f32x4(dxhat)));
      wasm_v128_store(acc_w + j + 2, wasm_f64x2_add(wasm_v128_load(acc_w + j + 2), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(dxhat, dxhat, 2, 3, 2, 3))));
      wasm_v128_store(acc_b + j, wasm_f64x2_add(wasm_v128_load(acc_b + j), wasm_f64x2_promote_low_f32x4(d)));
      wasm_v128_store(acc_b + j + 2, wasm_f64x2_add(wasm_v128_load(acc_b + j + 2), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(d, d, 2, 3, 2, 3))));
    }
    for (j = body; j < n; j++) {
      const float d = g[j], xc = row[j] - m;
      out[j] = s * (d * w[j] - a - xc * c);
      acc_w[j] += d * (xc * s);
      acc_b[j] += d;
    }
  }
  for (int j = 0; j < n; j++) {
    dw[j] = (float)acc_w[j];
    db[j] = (float)acc_b[j];
  }
}

/*
 * Inverted dropout in one pass: a keep-mask from xorshift128 (Marsaglia 2003) seeded with the
 * state words (a, b, c, d), one 32-bit draw per element kept when draw >= threshold, so
 * P(keep) = 1 - threshold / 2^32; mask = scale or 0, y = x * mask. The same sequence, element
 * for element, as dropoutMask in src/dropout.ts.
 */
EXPORT(dropout_apply)
void dropout_apply(int n, const float *x, unsigned a, unsigned b, unsigned c, unsigned d, unsigned threshold, float scale, float *y, float *mask) {
  for (int i = 0; i < n; i++) {
    const unsigned t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = d ^ (d >> 19) ^ t ^ (t >> 8);
    const float m = d >= threshold ? scale : 0.f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}
