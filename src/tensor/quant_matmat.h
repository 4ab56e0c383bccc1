#pragma once
// Quantized weights times a few vectors at once: decoding n independent sequences in one step multiplies every
// weight matrix by n vectors. quant_matvec n times would read and decode W n times; dequantize-then-GEMM writes
// the whole matrix out in fp32 first. Here each row of W is dequantized once into a buffer that stays in L1 and
// dotted with the n vectors there, so W is read and decoded once per step whatever n (small n: for long runs of
// one sequence, dequantized blocks of rows and a GEMM win).
#include <cstdint>

#include "tensor/quant.h"

namespace mnemo {

// Y[b * ldy + r] = W[r] . X[b * cols ...] for b < n, r < rows: Y (n, ldy >= rows) = X (n, cols) @ W^T, W (rows, cols)
// of type t (any dequantizable type; cols whole blocks). Split over rows on the thread pool (nested calls run
// inline); each output is one worker's, in a fixed order, so Y does not depend on the thread count. The only
// difference to quant_matvec per vector is fp32 summation order.
void quant_matmat(QType t, float* Y, int64_t ldy, const void* W, const float* X, int64_t rows, int64_t cols,
                  int64_t n);

namespace ref {
// quant_matvec (reference) for each vector.
void quant_matmat(QType t, float* Y, int64_t ldy, const void* W, const float* X, int64_t rows, int64_t cols,
                  int64_t n);
}  // namespace ref

}  // namespace mnemo
