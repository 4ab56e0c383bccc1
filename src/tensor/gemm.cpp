// Matrix products: gemm and linear through oneDNN's row-major sgemm, matvec in AVX-512.
//
// Threading. Debian's oneDNN 2.6 is built on the OpenMP runtime (dnnl_config.h: DNNL_RUNTIME_OMP), which would
// start its own team beside mnemo's pool and, after each call, leave it spinning on the cores the pool needs next.
// So oneDNN runs sequentially (one OpenMP thread) inside each worker of mnemo's pool, and gemm splits C into
// num_threads() fixed blocks of rows (or of columns when C is wide and short): exactly num_threads() threads
// work, each output element is computed by one sequential oneDNN call on a block that depends only on the shape
// and the thread count, so results are identical run to run for a fixed thread count.
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

// Make oneDNN sequential on the calling thread (OpenMP's thread count is per thread, so once per thread).
void onednn_sequential_here() {
  thread_local bool done = false;
  if (done) return;
  if (SetThreadsFn fn = omp_set_threads()) fn(1);
  done = true;
}

// Below this many multiply-adds a product runs on the calling thread: waking the pool costs more.
constexpr int64_t kParallelMacs = 1 << 18;

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {  // C (M,N) *= beta (0 overwrites)
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

}  // namespace

void gemm_sequential(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_c(M, N, beta, C, ldc);
  onednn_sequential_here();
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  MNEMO_CHECK(st == dnnl_success, "dnnl_sgemm failed with status ", int(st), " for M=", M, " N=", N, " K=", K);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (reference_kernels()) return ref::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (M <= 0 || N <= 0) return;
  static const char* const kNames[4] = {"gemm N,N", "gemm N,T", "gemm T,N", "gemm T,T"};
  prof::Scope scope(kNames[2 * trans_a + trans_b], M, N, K);
  // Checked here, before the split: an exception must not leave a pool worker.
  MNEMO_CHECK(lda >= std::max<int64_t>(1, trans_a ? M : K) && ldb >= std::max<int64_t>(1, trans_b ? K : N) &&
                  ldc >= N,
              "gemm: leading dimensions lda=", lda, " ldb=", ldb, " ldc=", ldc, " too small for M=", M, " N=", N,
              " K=", K);
  const int nth = num_threads();
  if (nth == 1 || M * N * std::max<int64_t>(K, 1) < kParallelMacs)
    return gemm_sequential(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  // Split the longer side of C into nth blocks, block edges on multiples of 16 (a whole vector / oneDNN tile).
  const bool by_rows = M >= N;
  const int64_t len = by_rows ? M : N;
  parallel_run([&](int ith, int nt) {
    auto edge = [&](int i) { return std::min(len, (len * i / nt + 8) / 16 * 16); };
    int64_t b0 = ith == 0 ? 0 : edge(ith), b1 = ith == nt - 1 ? len : edge(ith + 1);
    if (b0 >= b1) return;
    if (by_rows) {
      const float* a = trans_a ? A + b0 : A + b0 * lda;  // rows b0.. of op(A)
      gemm_sequential(trans_a, trans_b, b1 - b0, N, K, alpha, a, lda, B, ldb, beta, C + b0 * ldc, ldc);
    } else {
      const float* b = trans_b ? B + b0 * ldb : B + b0;  // columns b0.. of op(B)
      gemm_sequential(trans_a, trans_b, M, b1 - b0, K, alpha, A, lda, b, ldb, beta, C + b0, ldc);
    }
  });
}

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t C,
                    int64_t OC) {
  if (reference_kernels()) return ref::linear_forward(out, inp, weight, bias, N, C, OC);
  prof::Scope scope("linear_forward", N, C, OC);
  if (N == 1) return matvec(out, weight, inp, bias, OC, C);  // decoding one token: bandwidth-bound
  float beta = 0.0f;
  if (bias) {  // out (N,OC) starts as the bias in every row, then accumulates the product
    for (int64_t n = 0; n < N; ++n) std::copy(bias, bias + OC, out + n * OC);
    beta = 1.0f;
  }
  gemm(false, true, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC) {
  if (reference_kernels()) return ref::linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
  prof::Scope scope("linear_backward", N, C, OC);
  if (dinp) gemm(false, false, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);        // (N,OC) @ (OC,C)
  if (dweight) gemm(true, false, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);      // (OC,N) @ (N,C)
  if (dbias) {
    // dbias (OC) += column sums of dout (N,OC). Each worker owns a block of columns and walks the rows in order
    // (row-major, so each row's block is one contiguous read): no shared writes, order independent of threads.
    parallel_for(
        (OC + simd::kLanes - 1) / simd::kLanes,
        [&](int64_t v0, int64_t v1) {
          const int64_t c0 = v0 * simd::kLanes, c1 = std::min(OC, v1 * simd::kLanes);
          std::vector<float> acc(size_t(c1 - c0), 0.0f);  // (c1 - c0) partial sums
          for (int64_t n = 0; n < N; ++n)
            for (int64_t o = c0; o < c1; o += simd::kLanes) {
              const int64_t w = std::min(simd::kLanes, c1 - o);
              float* a = acc.data() + (o - c0);
              simd::storen(a, simd::loadn(a, w) + simd::loadn(dout + n * OC + o, w), w);
            }
          for (int64_t o = c0; o < c1; ++o) dbias[o] += acc[size_t(o - c0)];
        },
        std::max<int64_t>(1, 4096 / std::max<int64_t>(N, 1)));
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
