// Llama kernels: fast versions held to the reference twins, reference backward held to finite differences of the
// reference forward, and hand-checkable values.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "base/rng.h"
#include "tensor/kernels.h"
#include "tensor/llama_kernels.h"

using namespace mnemo;

namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(r.normal()) * scale;
  return v;
}

// Central differences of L(x) = sum(f(x) * w) in fp32 with step h = 1e-2 (inputs are O(1)). Truncation error is
// O(h^2 f''') ~ 1e-4 and rounding error ~ eps32 |L| / h ~ 1e-4 for |L| ~ 10, so 2e-3 absolute + 1e-2 relative
// separates a correct gradient from a wrong one (a wrong term is O(1)).
void check_grad(const std::function<void(const std::vector<float>&, std::vector<float>&)>& f, std::vector<float> x,
                const std::vector<float>& w, const std::vector<float>& analytic, const char* what) {
  std::vector<float> y(w.size());
  auto loss = [&](const std::vector<float>& xx) {
    f(xx, y);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * w[i];
    return s;
  };
  const float h = 1e-2f;
  for (size_t i = 0; i < x.size(); ++i) {
    float x0 = x[i];
    x[i] = x0 + h;
    double lp = loss(x);
    x[i] = x0 - h;
    double lm = loss(x);
    x[i] = x0;
    double num = (lp - lm) / (2.0 * h);
    EXPECT_NEAR(analytic[i], num, 2e-3 + 1e-2 * std::fabs(num)) << what << " at " << i;
  }
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol * (1.0f + std::fabs(b[i]))) << what << " " << i;
}

}  // namespace

TEST(LlamaKernels, RmsNormHandValue) {
  const float x[2] = {3, 4}, w[2] = {1, 2};
  float y[2], r;
  ref::rmsnorm_forward(y, &r, x, w, 1, 2, 0.0f);
  const float s = 1.0f / std::sqrt(12.5f);  // mean(9, 16) = 12.5
  EXPECT_FLOAT_EQ(r, s);
  EXPECT_FLOAT_EQ(y[0], 3 * s);
  EXPECT_FLOAT_EQ(y[1], 8 * s);
}

TEST(LlamaKernels, RmsNormFastMatchesReferenceAndGradient) {
  const int64_t N = 5, C = 37;  // a ragged C exercises the masked tail
  auto x = randn(N * C, 1), w = randn(C, 2), g = randn(N * C, 3);
  std::vector<float> y1(N * C), y2(N * C), r1(N), r2(N);
  ref::rmsnorm_forward(y1.data(), r1.data(), x.data(), w.data(), N, C, 1e-5f);
  rmsnorm_forward(y2.data(), r2.data(), x.data(), w.data(), N, C, 1e-5f);
  // Lane-order summation: a few ulp of the row's sum of squares.
  expect_close(y2, y1, 1e-5f, "rmsnorm y");
  std::vector<float> dx1(N * C, 0.5f), dx2(N * C, 0.5f), dw(C, 0.0f);
  ref::rmsnorm_backward(dx1.data(), dw.data(), g.data(), x.data(), w.data(), r1.data(), N, C);
  rmsnorm_backward(dx2.data(), nullptr, g.data(), x.data(), w.data(), r1.data(), N, C);
  expect_close(dx2, dx1, 1e-5f, "rmsnorm dx fast");
  for (auto& v : dx1) v -= 0.5f;  // backward accumulated onto 0.5
  check_grad([&](const std::vector<float>& xx, std::vector<float>& yy) {
    ref::rmsnorm_forward(yy.data(), nullptr, xx.data(), w.data(), N, C, 1e-5f);
  }, x, g, dx1, "rmsnorm dx");
  check_grad([&](const std::vector<float>& ww, std::vector<float>& yy) {
    ref::rmsnorm_forward(yy.data(), nullptr, x.data(), ww.data(), N, C, 1e-5f);
  }, w, g, dw, "rmsnorm dw");
}

TEST(LlamaKernels, RopeRotatesPairsAndInvertsExactly) {
  const int64_t N = 3, H = 2, hs = 8, half = hs / 2;
  std::vector<float> inv(half), c(N * half), s(N * half);
  rope_inv_freq(inv.data(), hs, 10000.0f, 1.0f);
  EXPECT_FLOAT_EQ(inv[0], 1.0f);
  EXPECT_NEAR(inv[1], std::pow(10000.0f, -0.25f), 1e-7f);
  const int64_t pos[N] = {0, 1, 7};
  rope_tables(c.data(), s.data(), pos, inv.data(), N, half);
  auto x = randn(N * H * hs, 4);
  std::vector<float> y(x.size());
  ref::rope_forward(y.data(), x.data(), c.data(), s.data(), N, H, hs);
  // Position 0 is the identity; position 1, pair 0 turns by 1 radian.
  for (int64_t i = 0; i < H * hs; ++i) EXPECT_FLOAT_EQ(y[i], x[i]);
  const float* x1 = x.data() + H * hs;
  EXPECT_NEAR(y[H * hs + 0], x1[0] * std::cos(1.0f) - x1[half] * std::sin(1.0f), 1e-6f);
  EXPECT_NEAR(y[H * hs + half], x1[half] * std::cos(1.0f) + x1[0] * std::sin(1.0f), 1e-6f);
  // Fast == reference (no reduction, same arithmetic), in place too.
  std::vector<float> y2 = x;
  rope_forward(y2.data(), y2.data(), c.data(), s.data(), N, H, hs);
  expect_close(y2, y, 1e-6f, "rope fast");
  // Backward is the inverse rotation: applied to y it gives x back.
  std::vector<float> back(x.size(), 0.0f);
  rope_backward(back.data(), y.data(), c.data(), s.data(), N, H, hs);
  expect_close(back, x, 1e-5f, "rope inverse");
  auto g = randn(x.size(), 5);
  std::vector<float> dx(x.size(), 0.0f);
  ref::rope_backward(dx.data(), g.data(), c.data(), s.data(), N, H, hs);
  check_grad([&](const std::vector<float>& xx, std::vector<float>& yy) {
    ref::rope_forward(yy.data(), xx.data(), c.data(), s.data(), N, H, hs);
  }, x, g, dx, "rope dx");
}

TEST(LlamaKernels, RopeComposesPositions) {
  // Rotating by p then by d equals rotating by p + d (what re-positioning cached keys relies on), to fp32 rounding.
  const int64_t hs = 64, half = 32;
  std::vector<float> inv(half), c1(half), s1(half), c2(half), s2(half), c3(half), s3(half);
  rope_inv_freq(inv.data(), hs, 100000.0f, 1.0f);
  const int64_t p = 300, d = -120, pd = p + d;
  rope_tables(c1.data(), s1.data(), &p, inv.data(), 1, half);
  rope_tables(c2.data(), s2.data(), &d, inv.data(), 1, half);
  rope_tables(c3.data(), s3.data(), &pd, inv.data(), 1, half);
  auto x = randn(hs, 6);
  std::vector<float> a(hs), b(hs);
  rope_forward(a.data(), x.data(), c1.data(), s1.data(), 1, 1, hs);
  rope_forward(a.data(), a.data(), c2.data(), s2.data(), 1, 1, hs);
  rope_forward(b.data(), x.data(), c3.data(), s3.data(), 1, 1, hs);
  // Angles up to 300 rad carry fp32 rounding of ~300 * 6e-8 = 2e-5 rad each.
  expect_close(a, b, 1e-4f, "rope compose");
}

TEST(LlamaKernels, SwigluFastMatchesReferenceAndGradient) {
  const int64_t n = 4096 + 37;  // two chunks and a ragged tail
  auto g = randn(n, 7, 3.0f), u = randn(n, 8), d = randn(n, 9);
  std::vector<float> y1(n), y2(n);
  ref::swiglu_forward(y1.data(), g.data(), u.data(), n);
  swiglu_forward(y2.data(), g.data(), u.data(), n);
  // The fast exp is within ~2 ulp of std::exp.
  expect_close(y2, y1, 1e-6f, "swiglu y");
  std::vector<float> dg1(n, 0.0f), du1(n, 0.0f), dg2(n, 0.0f), du2(n, 0.0f);
  ref::swiglu_backward(dg1.data(), du1.data(), d.data(), g.data(), u.data(), n);
  swiglu_backward(dg2.data(), du2.data(), d.data(), g.data(), u.data(), n);
  expect_close(dg2, dg1, 1e-5f, "swiglu dgate");
  expect_close(du2, du1, 1e-6f, "swiglu dup");
  const int64_t m = 64;  // finite differences on a prefix
  std::vector<float> gs(g.begin(), g.begin() + m), us(u.begin(), u.begin() + m), ds(d.begin(), d.begin() + m);
  std::vector<float> dga(m, 0.0f), dua(m, 0.0f);
  ref::swiglu_backward(dga.data(), dua.data(), ds.data(), gs.data(), us.data(), m);
  check_grad([&](const std::vector<float>& xx, std::vector<float>& yy) {
    ref::swiglu_forward(yy.data(), xx.data(), us.data(), m);
  }, gs, ds, dga, "swiglu dgate");
  check_grad([&](const std::vector<float>& xx, std::vector<float>& yy) {
    ref::swiglu_forward(yy.data(), gs.data(), xx.data(), m);
  }, us, ds, dua, "swiglu dup");
}

TEST(LlamaKernels, DecodeAttentionFastMatchesReference) {
  // One kv head of size 64 shared by 3 query heads over 37 entries (a ragged count), of which the first 30 are
  // visible; output dims split in two halves as decode splits them over workers.
  const int64_t G = 3, hs = 64, n = 37, m = 30, ld = 40;
  auto q = randn(G * hs, 10), K = randn(n * hs, 11), V = randn(n * hs, 12);
  std::vector<float> s1(G * ld, 0.0f), s2(G * ld, 0.0f);
  ref::attn_scores(s1.data(), ld, q.data(), K.data(), n, G, hs, 0.125f);
  attn_scores(s2.data(), ld, q.data(), K.data(), n, G, hs, 0.125f);
  expect_close(s2, s1, 1e-5f, "scores");  // lane-order sums of 64 products
  for (int64_t g = 0; g < G; ++g) {
    ref::attn_softmax(s1.data() + g * ld, m, n);
    attn_softmax(s2.data() + g * ld, m, n);
    float sum = 0.0f;
    for (int64_t j = 0; j < n; ++j) sum += s2[size_t(g * ld + j)];
    EXPECT_NEAR(sum, 1.0f, 1e-5f);
    for (int64_t j = m; j < n; ++j) EXPECT_EQ(s2[size_t(g * ld + j)], 0.0f);
  }
  expect_close(s2, s1, 1e-5f, "softmax");
  std::vector<float> o1(G * hs, 0.0f), o2(G * hs, 0.0f);
  ref::attn_mix(o1.data(), hs, s1.data(), ld, V.data(), m, G, hs, 0, hs);
  attn_mix(o2.data(), hs, s1.data(), ld, V.data(), m, G, hs, 0, 32);
  attn_mix(o2.data(), hs, s1.data(), ld, V.data(), m, G, hs, 32, 64);
  expect_close(o2, o1, 1e-5f, "mix");
}
