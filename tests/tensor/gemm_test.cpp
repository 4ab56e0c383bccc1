// gemm and linear: fast and reference against a double-precision product, every transpose combination, leading
// dimensions wider than the matrices, alpha/beta, beta = 0 overwriting garbage, and sizes that take the parallel
// path split by rows (M >= N) and by columns (M < N). Both per-worker kernels (oneDNN and the packed one) are
// checked whichever gemm() uses on this CPU, the packed one also past its block sizes (rows > 144, columns > 3072,
// several k blocks) and for the same bits at every thread count.
//
// Tolerance: a float dot product of length K accumulates rounding of about sqrt(K) * 6e-8 relative to
// sum |a_k b_k| (random order), at most K * 6e-8 in the worst case; with K <= 300 and O(1) entries the error is
// below ~2e-5 * sum|a b|. We compare against the double result with atol 1e-4 * sqrt(K) on O(1)-sized sums
// (|sum a b| ~ sqrt(K)) and rtol 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <limits>
#include <vector>

#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "tensor/gemm_internal.h"
#include "tensor/kernels.h"

namespace mnemo {
namespace {

using test::randn;

struct GemmCase {
  int64_t M, N, K;
};

// Which product check_gemm calls: gemm() in fast or reference mode, or one per-worker kernel directly.
enum class Impl { fast, reference, onednn_split, packed_split, packed_sequential };
const char* name(Impl impl) {
  static const char* const kNames[] = {"fast", "reference", "oneDNN split", "packed split", "packed sequential"};
  return kNames[int(impl)];
}

void check_gemm(Impl impl, bool ta, bool tb, GemmCase g, float alpha, float beta) {
  test::KernelMode mode(impl == Impl::reference);
  const int64_t pad = 3;  // leading dimensions wider than the rows
  const int64_t a_rows = ta ? g.K : g.M, a_cols = ta ? g.M : g.K;
  const int64_t b_rows = tb ? g.N : g.K, b_cols = tb ? g.K : g.N;
  const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = g.N + pad;
  auto A = randn(a_rows * lda, 31), B = randn(b_rows * ldb, 32);  // (a_rows, lda), (b_rows, ldb)
  std::vector<float> C = randn(g.M * ldc, 33);                     // (M, ldc)
  if (beta == 0.0f)  // C must not be read: fill with NaN, which would poison any product that reads it
    for (auto& c : C) c = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> expect(C);
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < g.K; ++k)
        acc += double(ta ? A[k * lda + i] : A[i * lda + k]) * double(tb ? B[j * ldb + k] : B[k * ldb + j]);
      expect[i * ldc + j] = float(alpha * acc + (beta == 0.0f ? 0.0 : double(beta) * C[i * ldc + j]));
    }
  if (impl == Impl::fast || impl == Impl::reference)
    gemm(ta, tb, g.M, g.N, g.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  else if (impl == Impl::packed_sequential)
    gemm_packed_sequential(ta, tb, g.M, g.N, g.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  else
    gemm_with(impl == Impl::packed_split ? GemmKernel::packed : GemmKernel::onednn, ta, tb, g.M, g.N, g.K, alpha,
              A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  std::vector<float> got, want;  // compare only the (M, N) block: the padding columns must be untouched
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      if (j >= g.N) {
        if (beta == 0.0f)
          EXPECT_TRUE(std::isnan(C[i * ldc + j])) << "gemm wrote past N into the leading-dimension padding";
        else
          EXPECT_EQ(C[i * ldc + j], expect[i * ldc + j]) << "gemm wrote past N into the leading-dimension padding";
        continue;
      }
      got.push_back(C[i * ldc + j]);
      want.push_back(expect[i * ldc + j]);
    }
  test::expect_close(got, want, 1e-4 * std::sqrt(double(g.K)), 1e-5,
                     ::testing::PrintToString(std::vector<int64_t>{ta, tb, g.M, g.N, g.K}) +
                         " " + name(impl) + " gemm (ta, tb, M, N, K)");
}

TEST(Gemm, AllTransposesLeadingDimensionsAlphaBeta) {
  const GemmCase cases[] = {{1, 1, 1}, {5, 3, 7}, {17, 33, 9}, {67, 129, 65}, {131, 40, 97}, {2, 300, 300}};
  for (Impl impl : {Impl::fast, Impl::reference, Impl::onednn_split, Impl::packed_split})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const auto& g : cases) {
          check_gemm(impl, ta, tb, g, 1.0f, 0.0f);
          check_gemm(impl, ta, tb, g, -0.5f, 0.75f);
        }
}

TEST(Gemm, PackedKernelPastItsBlockSizes) {
  // Rows past one packed block of A (144) with a ragged last 6-row tile, columns past one block of B (3072) with a
  // ragged 2-vector tile, K in 2 and 3 k blocks of unequal remainders; the sequential call and the split one.
  const GemmCase cases[] = {{150, 37, 513}, {7, 3100, 5}, {301, 70, 260}, {40, 509, 20}, {145, 17, 257}};
  for (Impl impl : {Impl::packed_sequential, Impl::packed_split})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const auto& g : cases) {
          check_gemm(impl, ta, tb, g, 1.0f, 0.0f);
          check_gemm(impl, ta, tb, g, 0.5f, -1.0f);
        }
}

TEST(Gemm, ZeroKScalesC) {
  for (bool reference : {false, true}) {
    test::KernelMode mode(reference);
    std::vector<float> C = {1, 2, 3, 4};
    gemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
    EXPECT_EQ(C, (std::vector<float>{0.5f, 1, 1.5f, 2}));
  }
}

TEST(Gemm, IdenticalRunToRun) {
  const int64_t M = 200, N = 150, K = 90;
  auto A = randn(M * K, 41), B = randn(K * N, 42);
  std::vector<float> C1(M * N), C2(M * N);
  gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C1.data(), N);
  gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C2.data(), N);
  EXPECT_EQ(C1, C2);
}

TEST(Linear, FastMatchesReference) {
  // N == 1 (matvec path), odd sizes, and two large enough for the parallel gemm path (C split by columns, then
  // by rows: each worker starts its block of out as the bias); dbias blocks of 4 vectors, whole and ragged.
  const int64_t shapes[][3] = {{1, 37, 23}, {1, 256, 768}, {7, 33, 17}, {64, 96, 200}, {300, 40, 64}};
  for (const auto& sh : shapes) {
    const int64_t N = sh[0], C = sh[1], OC = sh[2];
    auto inp = randn(N * C, 51), w = randn(OC * C, 52), b = randn(OC, 53), dout = randn(N * OC, 54);
    std::vector<float> out_f(N * OC), out_r(N * OC);
    std::vector<float> dinp_f(N * C, 0.5f), dw_f(OC * C, 0.5f), db_f(OC, 0.5f);  // += onto nonzero gradients
    std::vector<float> dinp_r(dinp_f), dw_r(dw_f), db_r(db_f);
    {
      test::KernelMode m(false);
      linear_forward(out_f.data(), inp.data(), w.data(), b.data(), N, C, OC);
      linear_backward(dinp_f.data(), dw_f.data(), db_f.data(), dout.data(), inp.data(), w.data(), N, C, OC);
    }
    {
      test::KernelMode m(true);
      linear_forward(out_r.data(), inp.data(), w.data(), b.data(), N, C, OC);
      linear_backward(dinp_r.data(), dw_r.data(), db_r.data(), dout.data(), inp.data(), w.data(), N, C, OC);
    }
    // Sums of C (or N, OC) products of O(1) terms: float error ~sqrt(len) * 1e-7 * sqrt(len); see the top comment.
    const double atol = 1e-4 * std::sqrt(double(std::max({N, C, OC})));
    test::expect_close(out_f, out_r, atol, 1e-5, "linear out");
    test::expect_close(dinp_f, dinp_r, atol, 1e-5, "linear dinp");
    test::expect_close(dw_f, dw_r, atol, 1e-5, "linear dweight");
    test::expect_close(db_f, db_r, atol, 1e-5, "linear dbias");
  }
}

TEST(Linear, BackwardWithNullDinpAndDbias) {
  const int64_t N = 9, C = 13, OC = 11;
  auto inp = randn(N * C, 61), w = randn(OC * C, 62), dout = randn(N * OC, 63);
  for (bool reference : {false, true}) {
    test::KernelMode m(reference);
    std::vector<float> dw_only(OC * C, 0.0f), dw_all(OC * C, 0.0f), dinp(N * C, 0.0f), db(OC, 0.0f);
    linear_backward(nullptr, dw_only.data(), nullptr, dout.data(), inp.data(), w.data(), N, C, OC);
    linear_backward(dinp.data(), dw_all.data(), db.data(), dout.data(), inp.data(), w.data(), N, C, OC);
    EXPECT_EQ(dw_only, dw_all) << "dweight must not depend on which other gradients are requested";
    std::vector<float> db_only(OC, 0.0f);
    linear_backward(nullptr, nullptr, db_only.data(), dout.data(), inp.data(), w.data(), N, C, OC);
    EXPECT_EQ(db_only, db);
  }
}

TEST(Matvec, FastMatchesReferenceAtOddSizes) {
  for (int64_t rows : {1, 3, 5, 17, 1001})
    for (int64_t cols : {1, 15, 16, 17, 100, 777}) {
      auto W = randn(rows * cols, 71), x = randn(cols, 72), b = randn(rows, 73);
      std::vector<float> yf(rows), yr(rows);
      {
        test::KernelMode m(false);
        matvec(yf.data(), W.data(), x.data(), b.data(), rows, cols);
      }
      {
        test::KernelMode m(true);
        matvec(yr.data(), W.data(), x.data(), b.data(), rows, cols);
      }
      test::expect_close(yf, yr, 1e-4 * std::sqrt(double(cols)), 1e-5, "matvec");
    }
}

// Runs compute() (filling n floats) in fresh processes with 1, 2 and 3 threads, passing the results back through
// files, and expects each to equal this process's bit for bit.
void expect_same_bits_for_thread_counts(const std::string& what, size_t n,
                                        const std::function<void(std::vector<float>&)>& compute) {
  auto path = [&](int nt) { return ::testing::TempDir() + "mnemo_" + what + "_bits_" + std::to_string(nt); };
  for (int nt : {1, 2, 3})
    MNEMO_EXPECT_WITH_THREADS(nt, {
      std::vector<float> y(n);
      compute(y);
      std::FILE* f = std::fopen(path(nt).c_str(), "wb");
      if (!f || std::fwrite(y.data(), sizeof(float), y.size(), f) != y.size() || std::fclose(f) != 0) std::exit(2);
    });
  std::vector<float> want(n);  // computed only after the children: they must start from an unused pool
  compute(want);
  for (int nt : {1, 2, 3}) {
    std::vector<float> got(n);
    std::FILE* f = std::fopen(path(nt).c_str(), "rb");
    ASSERT_NE(f, nullptr) << path(nt);
    ASSERT_EQ(std::fread(got.data(), sizeof(float), got.size(), f), got.size());
    std::fclose(f);
    std::remove(path(nt).c_str());
    EXPECT_EQ(got, want) << what << " with " << nt << " threads";
  }
}

TEST(MatvecDeathTest, SameResultForEveryThreadCount) {
  // Each row is one worker's sequential dot product, so the split cannot change any bit.
  const int64_t rows = 333, cols = 129;
  auto W = randn(rows * cols, 81), x = randn(cols, 82);
  expect_same_bits_for_thread_counts("matvec", rows, [&](std::vector<float>& y) {
    matvec(y.data(), W.data(), x.data(), nullptr, rows, cols);
  });
}

TEST(GemmDeathTest, PackedSameResultForEveryThreadCount) {
  // The packed kernel sums every element over the same k blocks wherever its tile falls: rows split (M >= N) and
  // columns split, A transposed (the weight-gradient product) and B transposed (the forward one).
  const int64_t M = 301, N = 97, K = 600;
  auto A = randn(M * K, 91), B = randn(M * K, 92);  // big enough for op(A), op(B) of either (m, n)
  for (bool ta : {false, true})
    for (bool wide : {false, true}) {
      const int64_t m = wide ? N : M, n = wide ? M : N;  // (m, n) = (97, 301) takes the column split
      expect_same_bits_for_thread_counts(
          std::string("gemm_packed_") + (ta ? "T" : "N") + (wide ? "_wide" : ""), size_t(m * n),
          [&](std::vector<float>& C) {
            gemm_with(GemmKernel::packed, ta, !ta, m, n, K, 1.0f, A.data(), ta ? m : K, B.data(), ta ? n : K, 0.0f,
                      C.data(), n);
          });
    }
}

}  // namespace
}  // namespace mnemo
