// Matrix products: gemm and linear through oneDNN's row-major sgemm or, for A^T products on AVX2, mnemo's own
// packed kernel; matvec in SIMD.
//
// Threading. Debian's oneDNN 2.6 is built on the OpenMP runtime (dnnl_config.h: DNNL_RUNTIME_OMP), which would
// start its own team beside mnemo's pool and, after each call, leave it spinning on the cores the pool needs next.
// So oneDNN runs sequentially (one OpenMP thread) inside each worker of mnemo's pool, and gemm splits C into
// num_threads() fixed blocks of rows (or of columns when C is wide and short): exactly num_threads() threads
// work, each output element is computed by one sequential call on a block that depends only on the shape and the
// thread count, so results are identical run to run for a fixed thread count (with the packed kernel, for every
// thread count).
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/gemm_internal.h"
#include "tensor/kernels.h"
#include "tensor/profile.h"
#include "tensor/simd.h"

namespace mnemo {

namespace {

// libgomp is loaded as a dependency of libdnnl but not linked into mnemo directly; look its setter up once.
using SetThreadsFn = void (*)(int);
SetThreadsFn omp_set_threads() {
  static SetThreadsFn fn = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return fn;
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {  // C (M,N) *= beta (0 overwrites)
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

// ---- the packed product: mnemo's own blocked GEMM (see docs/kernels.md, "Packed GEMM") ----
// op(A) and op(B) are copied into panels laid out in the order the inner kernel reads them, so the kernel streams
// both with unit stride whatever the transposes: a transposed A costs nothing more than a plain one (oneDNN 2.6's
// AVX2 sgemm runs A^T products at half the rate of the others). Every element of C is summed over k in the same
// blocks and order wherever its tile falls, so the result does not depend on how C is split between workers.
constexpr int64_t kMr = 6, kNr = 2 * simd::kLanes;  // C tile (6, 2 vectors): 12 accumulators, 2 B loads, 1 broadcast
constexpr int64_t kKc = 256;                         // k per panel: a B micro-panel (256, 16) = 16 KiB sits in L1
constexpr int64_t kMc = 144;                         // rows of A packed at a time: (144, 256) = 144 KiB in L2
constexpr int64_t kNc = 3072;                        // columns of B packed at a time: (256, 3072) = 3 MiB in L3

// ap (ceil(mc / kMr), kc, kMr) = rows i0.. i0+mc of A^T (A is (K, lda)), columns k0.. k0+kc; rows past mc are
// zero. Row i of A^T is column i of A: each k gives up to kMr contiguous floats.
void pack_a(const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* ap) {
  for (int64_t p = 0; p < mc; p += kMr, ap += kMr * kc) {
    const int64_t rows = std::min(kMr, mc - p);
    const float* src = A + k0 * lda + i0 + p;
    if (rows == kMr) {  // a fixed-length copy the compiler turns into moves (not a memmove call per k)
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t r = 0; r < kMr; ++r) ap[k * kMr + r] = src[k * lda + r];
    } else {
      for (int64_t k = 0; k < kc; ++k)
        std::fill(std::copy_n(src + k * lda, rows, ap + k * kMr), ap + (k + 1) * kMr, 0.0f);
    }
  }
}

// bp (ceil(nc / kNr), kc, kNr) = rows k0.. k0+kc of op(B), columns j0.. j0+nc; columns past nc are zero.
void pack_b(bool tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* bp) {
  for (int64_t q = 0; q < nc; q += kNr, bp += kNr * kc) {
    const int64_t cols = std::min(kNr, nc - q);
    if (tb) {  // op(B) column j is row j of B (N, ldb)
      for (int64_t c = cols; c < kNr; ++c)
        for (int64_t k = 0; k < kc; ++k) bp[k * kNr + c] = 0.0f;
      for (int64_t c = 0; c < cols; ++c) {
        const float* src = B + (j0 + q + c) * ldb + k0;
        for (int64_t k = 0; k < kc; ++k) bp[k * kNr + c] = src[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (k0 + k) * ldb + j0 + q;
        float* dst = bp + k * kNr;
        const int64_t w0 = std::min(cols, simd::kLanes);
        simd::store(dst, simd::loadn(src, w0));
        simd::store(dst + simd::kLanes, simd::loadn(src + simd::kLanes, cols - w0));
      }
    }
  }
}

// C tile (rows <= kMr, cols <= kNr) = alpha * op(A) b + beta * C over one packed B panel of depth kc; beta = 0
// does not read C. op(A)'s rows come from a packed panel (kc, kMr) (lda = 0) or, when A is not transposed,
// straight from A (rows of stride lda): each row is then read with unit stride and packing it would only copy it.
void tile(int64_t kc, const float* a, int64_t lda, const float* b, float alpha, float beta, float* c, int64_t ldc,
          int64_t rows, int64_t cols) {
  using namespace simd;
  for (int64_t r = 0; r < rows; ++r) {  // C's lines are needed only at the end: start fetching them now
    __builtin_prefetch(c + r * ldc, 1);
    __builtin_prefetch(c + r * ldc + cols - 1, 1);
  }
  Vf acc[kMr][2];
  for (auto& row : acc) row[0] = row[1] = zero();
  if (lda == 0) {
    for (int64_t k = 0; k < kc; ++k, a += kMr, b += kNr) {
      const Vf b0 = load(b), b1 = load(b + kLanes);
      for (int64_t r = 0; r < kMr; ++r) {
        const Vf ar = set1(a[r]);
        acc[r][0] = fmadd(ar, b0, acc[r][0]);
        acc[r][1] = fmadd(ar, b1, acc[r][1]);
      }
    }
  } else {
    const float* ar[kMr];  // rows past `rows` repeat the last one: read, never stored
    for (int64_t r = 0; r < kMr; ++r) ar[r] = a + std::min(r, rows - 1) * lda;
    for (int64_t k = 0; k < kc; ++k, b += kNr) {
      const Vf b0 = load(b), b1 = load(b + kLanes);
      for (int64_t r = 0; r < kMr; ++r) {
        const Vf x = set1(ar[r][k]);
        acc[r][0] = fmadd(x, b0, acc[r][0]);
        acc[r][1] = fmadd(x, b1, acc[r][1]);
      }
    }
  }
  const Vf va = set1(alpha), vb = set1(beta);
  const int64_t w0 = std::min(cols, kLanes), w1 = cols - w0;
  for (int64_t r = 0; r < rows; ++r, c += ldc) {
    Vf x0 = acc[r][0] * va, x1 = acc[r][1] * va;
    if (cols == kNr) {
      if (beta != 0.0f) x0 = fmadd(load(c), vb, x0), x1 = fmadd(load(c + kLanes), vb, x1);
      store(c, x0), store(c + kLanes, x1);
    } else {
      if (beta != 0.0f) x0 = fmadd(loadn(c, w0), vb, x0), x1 = fmadd(loadn(c + kLanes, w1), vb, x1);
      storen(c, x0, w0);
      if (w1 > 0) storen(c + kLanes, x1, w1);
    }
  }
}

}  // namespace

// OpenMP's thread count is per thread, so once per thread.
void onednn_sequential_here() {
  thread_local bool done = false;
  if (done) return;
  if (SetThreadsFn fn = omp_set_threads()) fn(1);
  done = true;
}

void gemm_packed_sequential(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                            const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                            int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  // k blocks of equal depth (<= kKc): they depend on K only, so every split of C sums in the same order.
  const int64_t nkb = (K + kKc - 1) / kKc, kcb = (K + nkb - 1) / nkb;
  const int64_t mcb = std::min(kMc, (M + kMr - 1) / kMr * kMr), ncb = std::min(kNc, (N + kNr - 1) / kNr * kNr);
  thread_local std::vector<float> abuf, bbuf;  // packed panels (abuf: A^T only), kept by each pool worker
  abuf.resize(size_t(std::max<int64_t>(int64_t(abuf.size()), mcb * kcb)));
  bbuf.resize(size_t(std::max<int64_t>(int64_t(bbuf.size()), ncb * kcb)));
  for (int64_t jc = 0; jc < N; jc += kNc) {
    const int64_t nc = std::min(kNc, N - jc);
    for (int64_t pc = 0; pc < K; pc += kcb) {
      const int64_t kc = std::min(kcb, K - pc);
      const float bt = pc == 0 ? beta : 1.0f;  // later k blocks accumulate onto the first
      pack_b(trans_b, B, ldb, pc, kc, jc, nc, bbuf.data());
      for (int64_t ic = 0; ic < M; ic += kMc) {
        const int64_t mc = std::min(kMc, M - ic);
        if (trans_a) pack_a(A, lda, ic, mc, pc, kc, abuf.data());
        for (int64_t jr = 0; jr < nc; jr += kNr)
          for (int64_t ir = 0; ir < mc; ir += kMr) {
            const float* a = trans_a ? abuf.data() + ir * kc : A + (ic + ir) * lda + pc;
            tile(kc, a, trans_a ? 0 : lda, bbuf.data() + jr * kc, alpha, bt, C + (ic + ir) * ldc + jc + jr, ldc,
                 std::min(kMr, mc - ir), std::min(kNr, nc - jr));
          }
      }
    }
  }
}

void gemm_sequential(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  onednn_sequential_here();
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  MNEMO_CHECK(st == dnnl_success, "dnnl_sgemm failed with status ", int(st), " for M=", M, " N=", N, " K=", K);
}

void gemm_with(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
               const float* row_init) {
  const auto run = kernel == GemmKernel::packed ? gemm_packed_sequential : gemm_sequential;
  // One block of C: rows m0.. m1, columns n0.. n1 (the operands already offset to it).
  auto block = [&](int64_t m, int64_t n, int64_t n0, const float* a, const float* b, float* c) {
    if (row_init)  // each worker starts its own rows: in parallel, and still in cache for the product
      for (int64_t i = 0; i < m; ++i) std::copy(row_init + n0, row_init + n0 + n, c + i * ldc);
    run(trans_a, trans_b, m, n, K, alpha, a, lda, b, ldb, row_init ? 1.0f : beta, c, ldc);
  };
  const int nth = num_threads();
  if (nth == 1 || M * N * std::max<int64_t>(K, 1) < kParallelMacs) return block(M, N, 0, A, B, C);
  // Split the longer side of C into nth blocks, block edges on multiples of 16 (a whole vector / oneDNN tile).
  const bool by_rows = M >= N;
  const int64_t len = by_rows ? M : N;
  parallel_run([&](int ith, int nt) {
    const auto [b0, b1] = worker_block(len, ith, nt);
    if (b0 >= b1) return;
    if (by_rows) {
      const float* a = trans_a ? A + b0 : A + b0 * lda;  // rows b0.. of op(A)
      block(b1 - b0, N, 0, a, B, C + b0 * ldc);
    } else {
      const float* b = trans_b ? B + b0 * ldb : B + b0;  // columns b0.. of op(B)
      block(M, b1 - b0, b0, A, b, C + b0);
    }
  });
}

namespace {

// gemm() after its reference switch, with gemm_with()'s row_init.
void gemm_fast(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* row_init) {
  if (M <= 0 || N <= 0) return;
  static const char* const kNames[4] = {"gemm N,N", "gemm N,T", "gemm T,N", "gemm T,T"};
  prof::Scope scope(kNames[2 * trans_a + trans_b], M, N, K);
  // Checked here, before the split: an exception must not leave a pool worker.
  MNEMO_CHECK(lda >= std::max<int64_t>(1, trans_a ? M : K) && ldb >= std::max<int64_t>(1, trans_b ? K : N) &&
                  ldc >= N,
              "gemm: leading dimensions lda=", lda, " ldb=", ldb, " ldc=", ldc, " too small for M=", M, " N=", N,
              " K=", K);
  // On AVX2, oneDNN 2.6's sgemm runs A^T products (weight gradients) at 40-75 % of its rate for the others; the
  // packed kernel does not care which operand is transposed but trails oneDNN by 5-10 % on the other products
  // (docs/kernels.md, 2026-11-30). With AVX-512 oneDNN's kernels are kept: the packed kernel (6 x 32 tiles) trails
  // them on 11 of the 14 benchmarked products and leads by noise on the rest (bench_gemm BM_GemmPackedPool).
#if MNEMO_AVX2
  const GemmKernel kernel = trans_a ? GemmKernel::packed : GemmKernel::onednn;
#else
  const GemmKernel kernel = GemmKernel::onednn;
#endif
  gemm_with(kernel, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, row_init);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (reference_kernels()) return ref::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_fast(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr);
}

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t C,
                    int64_t OC) {
  if (reference_kernels()) return ref::linear_forward(out, inp, weight, bias, N, C, OC);
  prof::Scope scope("linear_forward", N, C, OC);
  if (N == 1) return matvec(out, weight, inp, bias, OC, C);  // decoding one token: bandwidth-bound
  // out (N,OC) starts as the bias in every row (written by the worker that computes the row), then accumulates.
  gemm_fast(false, true, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC, bias);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC) {
  if (reference_kernels()) return ref::linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
  prof::Scope scope("linear_backward", N, C, OC);
  if (dinp) gemm(false, false, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);        // (N,OC) @ (OC,C)
  if (dweight) gemm(true, false, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);      // (OC,N) @ (N,C)
  if (dbias) {
    // dbias (OC) += column sums of dout (N,OC). Each worker owns blocks of four vectors of columns and sums them
    // over the rows in order, in registers: no shared writes, the order does not depend on the thread count.
    using namespace simd;
    constexpr int64_t kW = 4 * kLanes;
    parallel_for(
        (OC + kW - 1) / kW,
        [&](int64_t b0, int64_t b1) {
          for (int64_t c0 = b0 * kW; c0 < std::min(OC, b1 * kW); c0 += kW) {
            const float* g = dout + c0;  // (N, <= kW), stride OC
            Vf a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
            if (c0 + kW <= OC) {
              for (int64_t n = 0; n < N; ++n, g += OC)
                a0 += load(g), a1 += load(g + kLanes), a2 += load(g + 2 * kLanes), a3 += load(g + 3 * kLanes);
            } else {
              const int64_t w = OC - c0;
              auto part = [&](int64_t u) { return std::clamp<int64_t>(w - u * kLanes, 0, kLanes); };
              for (int64_t n = 0; n < N; ++n, g += OC) {
                a0 += loadn(g, part(0));
                if (part(1)) a1 += loadn(g + kLanes, part(1));
                if (part(2)) a2 += loadn(g + 2 * kLanes, part(2));
                if (part(3)) a3 += loadn(g + 3 * kLanes, part(3));
              }
            }
            const Vf acc[4] = {a0, a1, a2, a3};
            for (int64_t u = 0; u < 4 && c0 + u * kLanes < OC; ++u) {
              const int64_t w = std::min(kLanes, OC - c0 - u * kLanes);
              float* d = dbias + c0 + u * kLanes;
              storen(d, loadn(d, w) + acc[u], w);
            }
          }
        },
        std::max<int64_t>(1, 32768 / std::max<int64_t>(N * kW, 1)));
  }
}

void matvec(float* y, const float* W, const float* x, const float* bias, int64_t rows, int64_t cols) {
  if (reference_kernels()) return ref::matvec(y, W, x, bias, rows, cols);
  using namespace simd;
  // Four rows at a time share each load of x; four accumulators per row hide the FMA latency less than the
  // independent rows already do, so one per row suffices. Grain: ~64 KiB of W per worker before splitting.
  parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        int64_t r = r0;
        const int64_t full = cols / kLanes * kLanes, tail = cols - full;
        for (; r + 4 <= r1; r += 4) {
          const float* w0 = W + r * cols;  // (4, cols)
          const float* w1 = w0 + cols;
          const float* w2 = w1 + cols;
          const float* w3 = w2 + cols;
          Vf a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
          for (int64_t c = 0; c < full; c += kLanes) {
            Vf xv = load(x + c);
            a0 = fmadd(load(w0 + c), xv, a0);
            a1 = fmadd(load(w1 + c), xv, a1);
            a2 = fmadd(load(w2 + c), xv, a2);
            a3 = fmadd(load(w3 + c), xv, a3);
          }
          if (tail) {
            Vf xv = loadn(x + full, tail);
            a0 = fmadd(loadn(w0 + full, tail), xv, a0);
            a1 = fmadd(loadn(w1 + full, tail), xv, a1);
            a2 = fmadd(loadn(w2 + full, tail), xv, a2);
            a3 = fmadd(loadn(w3 + full, tail), xv, a3);
          }
          y[r] = reduce_add(a0) + (bias ? bias[r] : 0.0f);
          y[r + 1] = reduce_add(a1) + (bias ? bias[r + 1] : 0.0f);
          y[r + 2] = reduce_add(a2) + (bias ? bias[r + 2] : 0.0f);
          y[r + 3] = reduce_add(a3) + (bias ? bias[r + 3] : 0.0f);
        }
        for (; r < r1; ++r) {
          const float* w = W + r * cols;  // (cols)
          Vf a = zero();
          for (int64_t c = 0; c < full; c += kLanes) a = fmadd(load(w + c), load(x + c), a);
          if (tail) a = fmadd(loadn(w + full, tail), loadn(x + full, tail), a);
          y[r] = reduce_add(a) + (bias ? bias[r] : 0.0f);
        }
      },
      std::max<int64_t>(4, 16384 / std::max<int64_t>(cols, 1)));
}

}  // namespace mnemo
