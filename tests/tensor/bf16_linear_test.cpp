// bf16 inference products: the whole-array rounding against the scalar definition (bit-exact, every special
// value), linear_bf16_forward (native where this CPU has bf16 arithmetic) and its widened fallback against the
// reference (which sums the same bf16-rounded operands in double), and against fp32 linear_forward within the
// bound that operand rounding allows.
//
// Tolerances. Fast vs reference: both multiply the same bf16 values exactly, so only the fp32 summation order
// differs: |err| <= C * 2^-24 * sum|a w| (the worst case of a length-C float sum). bf16 vs fp32: each operand is
// rounded by at most 2^-9 relative, so each product moves by at most ~2^-8 * |a w| and the sum by at most
// 2^-8 * sum|a w| (plus the fp32 summation bound).
#include "tensor/bf16_linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernel_test_util.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"

namespace mnemo {
namespace {

using test::randn;

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = fp32_to_bf16(x[i]);
  return h;
}

TEST(Bf16, RowRoundingIsBitExactWithTheScalarOne) {
  // Ties to even both ways, the largest finite values (rounding up to inf), inf, NaNs of both signs (kept quiet),
  // subnormals, zeros; then random values, at lengths with ragged ends.
  const uint32_t special[] = {0x3f808000, 0x3f818000, 0x3f80ffff, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
                              0x7fc00000, 0xffc00001, 0x7f800001, 0x00000001, 0x807fffff, 0x00000000, 0x80000000,
                              0x3f7fffff, 0x477fe000};
  std::vector<float> x = randn(1000, 5, 100.0f);
  for (size_t i = 0; i < std::size(special); ++i) std::memcpy(&x[i * 3], &special[i], 4);
  for (int64_t n : {int64_t(1), int64_t(15), int64_t(16), int64_t(17), int64_t(1000)}) {
    std::vector<uint16_t> got(size_t(n), 0xdead);
    fp32_to_bf16_row(got.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], fp32_to_bf16(x[size_t(i)])) << "index " << i;
  }
}

TEST(Bf16, LinearFastMatchesReferenceAndStaysWithinTheRoundingBoundOfFp32) {
  // Small (one thread), odd, and large enough for the row split over the pool with a ragged last block.
  const int64_t shapes[][3] = {{1, 37, 23}, {7, 33, 17}, {300, 96, 200}, {1031, 384, 64}};
  for (const auto& sh : shapes) {
    const int64_t N = sh[0], C = sh[1], OC = sh[2];
    auto inp = randn(size_t(N * C), 11), w = randn(size_t(OC * C), 12), b = randn(size_t(OC), 13);
    const std::vector<uint16_t> wh = to_bf16(w);
    std::vector<float> fast(size_t(N * OC)), widened(fast.size()), want(fast.size()), fp32(fast.size());
    {
      test::KernelMode m(false);
      linear_bf16_forward(fast.data(), inp.data(), wh.data(), b.data(), N, C, OC);
      linear_bf16_forward_widened(widened.data(), inp.data(), wh.data(), b.data(), N, C, OC);
      linear_forward(fp32.data(), inp.data(), w.data(), b.data(), N, C, OC);
    }
    {
      test::KernelMode m(true);
      linear_bf16_forward(want.data(), inp.data(), wh.data(), b.data(), N, C, OC);
    }
    double worst_fp32 = 0;  // how far bf16 moved the result, in units of sum|a w|
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t o = 0; o < OC; ++o) {
        double sum_abs = std::fabs(b[size_t(o)]);
        for (int64_t c = 0; c < C; ++c) sum_abs += std::fabs(double(inp[size_t(n * C + c)]) * w[size_t(o * C + c)]);
        const size_t i = size_t(n * OC + o);
        ASSERT_NEAR(fast[i], want[i], double(C) * 0x1p-24 * sum_abs) << N << "x" << C << "x" << OC << " at " << i;
        ASSERT_NEAR(widened[i], want[i], double(C) * 0x1p-24 * sum_abs) << "widened at " << i;
        ASSERT_NEAR(fast[i], fp32[i], (0x1p-8 + double(C) * 0x1p-23) * sum_abs) << "vs fp32 at " << i;
        worst_fp32 = std::max(worst_fp32, std::fabs(double(fast[i]) - fp32[i]) / sum_abs);
      }
    }
    if (C >= 33) {
      EXPECT_GT(worst_fp32, 1e-5) << "bf16 products should differ from fp32 ones: is the path bf16?";
    }
  }
}

TEST(Bf16, LinearWithoutBiasAndWithEmptyOutput) {
  const int64_t N = 40, C = 64, OC = 48;
  auto inp = randn(size_t(N * C), 21), w = randn(size_t(OC * C), 22);
  const std::vector<uint16_t> wh = to_bf16(w);
  std::vector<float> fast(size_t(N * OC)), want(fast.size());
  linear_bf16_forward(fast.data(), inp.data(), wh.data(), nullptr, N, C, OC);
  ref::linear_bf16_forward(want.data(), inp.data(), wh.data(), nullptr, N, C, OC);
  test::expect_close(fast, want, 1e-4, 1e-5, "bf16 linear without bias");
  linear_bf16_forward(nullptr, nullptr, wh.data(), nullptr, 0, C, OC);  // no rows: nothing to do, nothing read
}

}  // namespace
}  // namespace mnemo
