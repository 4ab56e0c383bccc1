#pragma once
// Internal to the tensor layer: a product on the calling thread only, for kernels that already run one job per
// worker (attention splits (batch, head) pairs over the pool and multiplies inside each).
#include <cstdint>

namespace mnemo {

// Same contract as gemm() (kernels.h), computed by one sequential oneDNN call on the calling thread.
void gemm_sequential(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace mnemo
