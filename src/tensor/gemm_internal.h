#pragma once
// Internal to the tensor layer: a product on the calling thread only, for kernels that already run one job per
// worker (attention splits (batch, head) pairs over the pool and multiplies inside each).
#include <algorithm>
#include <cstdint>
#include <utility>

namespace mnemo {

// oneDNN runs sequentially inside each pool worker (gemm.cpp, "Threading"): call before each oneDNN call.
void onednn_sequential_here();

// Below this many multiply-adds a product runs on the calling thread: waking the pool costs more.
constexpr int64_t kParallelMacs = 1 << 18;

// Block ith of nt of [0, len), edges on multiples of 16 (a whole vector / oneDNN tile): how gemm() and the bf16
// linear split a product between the pool's workers. Empty (first >= second) when len is short.
inline std::pair<int64_t, int64_t> worker_block(int64_t len, int ith, int nt) {
  auto edge = [&](int i) { return std::min(len, (len * i / nt + 8) / 16 * 16); };
  return {ith == 0 ? 0 : edge(ith), ith == nt - 1 ? len : edge(ith + 1)};
}

// Same contract as gemm() (kernels.h), computed by one sequential oneDNN call on the calling thread.
void gemm_sequential(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same, computed by mnemo's packed kernel (gemm.cpp) on the calling thread. Each element of C is summed over
// k in blocks that depend on K only: the result does not depend on how C is split.
void gemm_packed_sequential(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                            const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                            int64_t ldc);

// gemm() (no argument checks, no reference switch) with C split over the pool as gemm() does, each block computed
// by the given kernel: gemm() picks one per build; benchmarks and tests compare both. With row_init (N), C's rows
// start as row_init instead of beta * C (linear's bias), each written by the worker that computes it.
enum class GemmKernel { onednn, packed };
void gemm_with(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
               const float* row_init = nullptr);

}  // namespace mnemo
