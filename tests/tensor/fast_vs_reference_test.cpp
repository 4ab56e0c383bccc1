// The fast row-wise and elementwise kernels held to their reference twins on random inputs, at sizes that are not
// multiples of the vector (8 lanes with AVX2, 16 with AVX-512: so every masked tail runs), one that is a multiple of
// 8 but not of 16, and sizes large enough to be split over the pool.
//
// Tolerances. The fast kernels differ from the reference only by summation order (8 or 16 lanes, then a tree) and by
// their exp/erf approximations: exp is within ~2 ulp (2.4e-7 relative), tanh-GELU (a logistic of exp) and erf
// (Abramowitz-Stegun, 1.5e-7 absolute) within ~3e-7 absolute. Row sums of C terms of size ~1 differ by
// ~sqrt(C) * 6e-8. So outputs of size ~1 must agree to atol 2e-6 (rows up to ~1000) + rtol 1e-5; the large-vocab
// cross-entropy (V = 5003) to a looser 2e-5, its log-sum-exp adding 5003 terms.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "tensor/kernels.h"

namespace mnemo {
namespace {

using test::randn;

constexpr double kAtol = 2e-6, kRtol = 1e-5;

// Run fn once with the fast kernels and once with the reference ones; fn fills `out` (initial contents equal).
void compare(const std::function<void(std::vector<float>&)>& fn, std::vector<float> init, const std::string& what,
             double atol = kAtol, double rtol = kRtol) {
  std::vector<float> fast(init), ref(init);
  {
    test::KernelMode m(false);
    fn(fast);
  }
  {
    test::KernelMode m(true);
    fn(ref);
  }
  test::expect_close(fast, ref, atol, rtol, what);
}

const int64_t kRows[] = {1, 3, 67};
const int64_t kCols[] = {1, 7, 16, 17, 24, 33, 255, 769};

TEST(FastVsReference, Embedding) {
  for (int64_t C : kCols) {
    const int64_t V = 9, N = 41;
    std::vector<int32_t> ids(N);
    for (int64_t n = 0; n < N; ++n) ids[n] = int32_t((n * 7 + 3) % V);  // many repeats
    auto table = randn(V * C, 1), dout = randn(N * C, 2);
    compare([&](std::vector<float>& o) { embedding_forward(o.data(), ids.data(), table.data(), N, C); },
            std::vector<float>(N * C), "embedding forward");
    compare([&](std::vector<float>& d) { embedding_backward(d.data(), dout.data(), ids.data(), N, C); },
            randn(V * C, 3), "embedding backward");
  }
}

TEST(FastVsReference, LayerNorm) {
  for (int64_t N : kRows)
    for (int64_t C : kCols) {
      auto x = randn(N * C, 4, 3.0f), w = randn(C, 5), b = randn(C, 6), dout = randn(N * C, 7);
      for (auto& v : x) v += 2.0f;  // a nonzero mean
      std::vector<float> mean(N), rstd(N);
      compare(
          [&](std::vector<float>& o) {
            layernorm_forward(o.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
            o.insert(o.end(), mean.begin(), mean.end());
            o.insert(o.end(), rstd.begin(), rstd.end());
          },
          std::vector<float>(N * C), "layernorm forward (out, mean, rstd)");
      ref::layernorm_forward(std::vector<float>(N * C).data(), mean.data(), rstd.data(), x.data(), w.data(),
                             b.data(), N, C, 1e-5f);
      compare(
          [&](std::vector<float>& g) {
            std::vector<float> dw(C, 0.25f), db(C, -0.5f);
            layernorm_backward(g.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(),
                               rstd.data(), N, C);
            g.insert(g.end(), dw.begin(), dw.end());
            g.insert(g.end(), db.begin(), db.end());
          },
          randn(N * C, 8), "layernorm backward (dinp, dweight, dbias)", 1e-5, kRtol);
    }
}

TEST(FastVsReference, Gelu) {
  for (Gelu kind : {Gelu::Tanh, Gelu::Erf})
    for (int64_t n : {1, 15, 17, 24, 1000, 40001}) {
      auto x = randn(n, 9, 2.5f), dout = randn(n, 10);
      compare([&](std::vector<float>& o) { gelu_forward(o.data(), x.data(), n, kind); }, std::vector<float>(n),
              "gelu forward");
      compare([&](std::vector<float>& d) { gelu_backward(d.data(), x.data(), dout.data(), n, kind); }, randn(n, 11),
              "gelu backward");
    }
}

TEST(FastVsReference, Softmax) {
  for (int64_t N : kRows)
    for (int64_t C : kCols) {
      auto x = randn(N * C, 12, 4.0f), dout = randn(N * C, 13);
      compare([&](std::vector<float>& o) { softmax_forward(o.data(), x.data(), N, C); }, std::vector<float>(N * C),
              "softmax forward");
      std::vector<float> y(N * C);
      ref::softmax_forward(y.data(), x.data(), N, C);
      compare([&](std::vector<float>& d) { softmax_backward(d.data(), y.data(), dout.data(), N, C); },
              randn(N * C, 14), "softmax backward");
    }
}

TEST(FastVsReference, CrossEntropy) {
  for (int64_t V : {7, 33, 5003}) {
    const int64_t N = 29;
    auto logits = randn(N * V, 15, 3.0f), dl = randn(N, 16);
    std::vector<int32_t> t(N);
    for (int64_t n = 0; n < N; ++n) t[n] = n % 5 == 2 ? -1 : int32_t((n * 13) % V);
    const double atol = V > 1000 ? 2e-5 : kAtol;
    compare([&](std::vector<float>& o) { crossentropy_forward(o.data(), logits.data(), t.data(), N, V); },
            std::vector<float>(N), "crossentropy forward", atol);
    compare([&](std::vector<float>& d) { crossentropy_backward(d.data(), logits.data(), t.data(), dl.data(), N, V); },
            randn(N * V, 17), "crossentropy backward", atol);
  }
}

TEST(FastVsReference, AdamW) {
  for (int64_t n : {1, 17, 50001}) {
    AdamWConfig cfg;
    cfg.lr = 3e-3f;
    cfg.weight_decay = 0.1f;
    auto grad = randn(n, 18);
    compare(
        [&](std::vector<float>& state) {  // state = param | m | v
          for (int64_t step = 1; step <= 3; ++step)
            adamw_update(state.data(), grad.data(), state.data() + n, state.data() + 2 * n, n, cfg, step);
        },
        [&] {
          auto s = randn(n, 19);
          s.resize(3 * n, 0.0f);
          return s;
        }(),
        "adamw (param, m, v)");
  }
}

// The sum of squares behind the global gradient norm, against the plain double loop. The fast kernel adds float
// squares, at most 64 to a lane (8 with AVX2, 4 with AVX-512) before widening a 256-value block to double: a block
// is off by a few roundings of 6e-8, and the blocks' errors average out, hence 1e-6 relative.
TEST(FastVsReference, SumSquares) {
  test::KernelMode m(false);
  for (int64_t n : {0, 1, 7, 17, 255, 256, 257, 33 * 256 + 5, (1 << 20) + 3}) {
    const auto x = randn(size_t(n), 25, 3.0f);
    double want = 0;
    for (float v : x) want += double(v) * v;
    EXPECT_NEAR(sum_squares(x.data(), n), want, 1e-6 * want) << "n = " << n;
    EXPECT_EQ(ref::sum_squares(x.data(), n), want) << "n = " << n;
  }
}

TEST(SumSquares, SameBitsForEveryThreadCountAndRun) {
  test::KernelMode m(false);
  const int64_t n = 3'000'001;  // 64 parts of ~183 blocks, split over the workers
  const auto x = randn(size_t(n), 26);
  const int saved = num_threads();
  std::vector<double> got;
  for (int nt : {1, 2, 3, 2, 1}) {
    set_num_threads(nt);
    got.push_back(sum_squares(x.data(), n));
  }
  set_num_threads(saved);
  for (size_t i = 1; i < got.size(); ++i) EXPECT_EQ(got[i], got[0]) << "run " << i;
}

TEST(SumSquares, HugeFiniteValuesStayFiniteAndNonFiniteOnesPropagate) {
  test::KernelMode m(false);
  std::vector<float> x(1000, 1.0f);
  x[300] = 3e19f;  // its square overflows float (3.4e38), not double: the block is redone in double
  EXPECT_NEAR(sum_squares(x.data(), 1000), 9e38, 9e38 * 1e-7);
  x[300] = INFINITY;
  EXPECT_EQ(sum_squares(x.data(), 1000), INFINITY);
  x[300] = NAN;
  EXPECT_TRUE(std::isnan(sum_squares(x.data(), 1000)));
}

TEST(CrossEntropy, IgnoredTargetsGiveZeroLossAndNoGradient) {
  for (bool reference : {false, true}) {
    test::KernelMode m(reference);
    const int64_t N = 3, V = 5;
    auto logits = randn(N * V, 20);
    const std::vector<int32_t> t = {-1, 4, -100};
    std::vector<float> losses(N, 123.0f), d(N * V, 7.0f);
    const std::vector<float> dl = {1.0f, 1.0f, 1.0f};
    crossentropy_forward(losses.data(), logits.data(), t.data(), N, V);
    crossentropy_backward(d.data(), logits.data(), t.data(), dl.data(), N, V);
    EXPECT_EQ(losses[0], 0.0f);
    EXPECT_EQ(losses[2], 0.0f);
    EXPECT_GT(losses[1], 0.0f);
    for (int64_t j = 0; j < V; ++j) {
      EXPECT_EQ(d[j], 7.0f) << "ignored row 0 touched";
      EXPECT_EQ(d[2 * V + j], 7.0f) << "ignored row 2 touched";
    }
    double row1 = 0.0;  // softmax - onehot sums to 0
    for (int64_t j = 0; j < V; ++j) row1 += d[V + j] - 7.0f;
    EXPECT_NEAR(row1, 0.0, 1e-5);
  }
}

TEST(CrossEntropy, TargetOutOfRangeThrows) {
  for (bool reference : {false, true}) {
    test::KernelMode m(reference);
    const int64_t N = 40, V = 3;
    std::vector<float> logits(N * V, 0.0f), losses(N), d(N * V), dl(N, 1.0f);
    std::vector<int32_t> t(N, 1);
    t[37] = 3;  // == V: out of range, in a row a second worker would own
    EXPECT_THROW(crossentropy_forward(losses.data(), logits.data(), t.data(), N, V), Error);
    EXPECT_THROW(crossentropy_backward(d.data(), logits.data(), t.data(), dl.data(), N, V), Error);
  }
}

TEST(AdamW, TwoHandComputedSteps) {
  // p = 1, lr = 0.1, wd = 0.01, betas (0.9, 0.999), eps = 1e-8; gradients 0.5 then -0.25.
  // Step 1: m = 0.05, v = 2.5e-4, mhat = 0.5, vhat = 0.25: p = 1 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.01) = 0.899.
  // Step 2: m = 0.9*0.05 + 0.1*(-0.25) = 0.02, v = 0.999*2.5e-4 + 0.001*0.0625 = 3.1225e-4,
  //         mhat = 0.02 / 0.19 = 0.1052632, vhat = 3.1225e-4 / 0.001999 = 0.1562031, sqrt = 0.3952254,
  //         p = 0.899 - 0.1 * (0.1052632 / 0.3952254 + 0.01 * 0.899) = 0.8714673.
  for (bool reference : {false, true}) {
    test::KernelMode mode(reference);
    AdamWConfig cfg;
    cfg.lr = 0.1f;
    cfg.weight_decay = 0.01f;
    float p = 1.0f, m = 0.0f, v = 0.0f;
    float g = 0.5f;
    adamw_update(&p, &g, &m, &v, 1, cfg, 1);
    EXPECT_NEAR(p, 0.899f, 1e-6f);
    // In float 1 - 0.9f = 0.10000002 and 1 - 0.999f = 0.00099998713 (0.999 is not representable), so m and v
    // carry relative errors of 2.4e-7 and 1.3e-5 (as in torch's float AdamW): checked to 5e-7 and 2e-5 relative.
    EXPECT_NEAR(m, 0.05f, 0.05f * 5e-7f);
    EXPECT_NEAR(v, 2.5e-4f, 2.5e-4f * 2e-5f);
    g = -0.25f;
    adamw_update(&p, &g, &m, &v, 1, cfg, 2);
    EXPECT_NEAR(m, 0.02f, 0.02f * 2e-6f);  // 0.045 - 0.025: the cancellation doubles the relative error
    EXPECT_NEAR(v, 3.1225e-4f, 3.1225e-4f * 2e-5f);
    EXPECT_NEAR(p, 0.8714673f, 2e-6f);  // float arithmetic on values ~1: a few ulp (1.2e-7 each)
  }
}

// LayerNorm forward+backward twice in one process; the per-worker partial sums make dweight/dbias depend on the
// thread count, so each count gets its own fresh process.
bool layernorm_identical_twice() {
  const int64_t N = 61, C = 333;
  auto x = randn(N * C, 21), w = randn(C, 22), b = randn(C, 23), dout = randn(N * C, 24);
  std::vector<float> r1, r2;
  for (auto* r : {&r1, &r2}) {
    std::vector<float> out(N * C), mean(N), rstd(N), dx(N * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
    layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-5f);
    layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(), rstd.data(),
                       N, C);
    *r = out;
    r->insert(r->end(), dx.begin(), dx.end());
    r->insert(r->end(), dw.begin(), dw.end());
    r->insert(r->end(), db.begin(), db.end());
  }
  return r1 == r2;
}

TEST(FastKernelsDeathTest, IdenticalRunToRunForEachThreadCount) {
  for (int nt : {1, 2, 3}) MNEMO_EXPECT_WITH_THREADS(nt, if (!layernorm_identical_twice()) std::exit(1));
}

}  // namespace
}  // namespace mnemo
