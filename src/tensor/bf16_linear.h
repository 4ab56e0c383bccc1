#pragma once
// Linear layers in bf16, for inference. The weight is rounded to bf16 once (fp32_to_bf16_row, tensor/quant.h), the
// input as it is multiplied; each product of two bf16 values is exact in fp32 and the sums are fp32, so the only
// difference to linear_forward is the rounding of the two operands (8 bits of mantissa, 2^-9 relative each). On a
// CPU with AVX512-BF16 oneDNN's bf16 matmul runs at about twice the FP32 FMA peak (docs/performance.md); elsewhere
// the same numbers come from the fp32 product of the widened operands, at fp32 speed.
#include <cstdint>

namespace mnemo {

// out (N,OC) = bf16(inp) (N,C) @ weight (OC,C)^T + bias (OC, may be null); weight holds bf16 bits, nn.Linear's
// layout. Rows are split over the thread pool as gemm() splits them; each worker rounds its own rows.
void linear_bf16_forward(float* out, const float* inp, const uint16_t* weight, const float* bias, int64_t N,
                         int64_t C, int64_t OC);

// Whether this CPU multiplies bf16 natively (oneDNN has a bf16 kernel for it), i.e. the fast path above runs.
bool bf16_native();
// What linear_bf16_forward runs where it is not native: the fp32 product of the widened operands (public so tests
// run it on every CPU).
void linear_bf16_forward_widened(float* out, const float* inp, const uint16_t* weight, const float* bias,
                                 int64_t N, int64_t C, int64_t OC);

namespace ref {
void linear_bf16_forward(float* out, const float* inp, const uint16_t* weight, const float* bias, int64_t N,
                         int64_t C, int64_t OC);
}  // namespace ref

}  // namespace mnemo
