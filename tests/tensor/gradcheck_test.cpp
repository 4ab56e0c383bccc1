// Finite-difference gradient checks for every backward kernel, fast and reference (the test is parameterised on
// set_reference_kernels). The loss is L = sum(out * W) with a fixed random W, so backward is called with dout = W.
//
// Tolerances. Central differences have truncation error eps^2/6 * |f'''|, and rounding error about
// (float rounding of L) / eps. The kernels run in float: each output carries ~1e-7 relative error, and L (summed in
// double over <= ~200 outputs of size ~1) carries ~1e-6 absolute.
//  - Nonlinear ops (LayerNorm, GELU, softmax, attention, cross-entropy): eps = 1e-2 gives truncation ~2e-5 * |f'''|
//    (f''' = O(1) at inputs of O(1)) and rounding ~1e-6 / 2e-2 = 5e-5, so atol 1e-3 + rtol 1e-2 leaves a margin of
//    ~20x while a missing or wrong term (gradients here are O(0.1..1)) is caught.
//  - Ops linear in the checked input (linear, embedding): no truncation error, so a larger eps = 0.1 shrinks the
//    rounding error to ~1e-5; atol 1e-3 + rtol 1e-3.
#include <gtest/gtest.h>

#include <vector>

#include "kernel_test_util.h"
#include "tensor/kernels.h"

namespace mnemo {
namespace {

using test::dot;
using test::expect_gradient;
using test::randn;

constexpr float kEpsSmooth = 1e-2f, kEpsLinear = 1e-1f;
constexpr double kAtol = 1e-3, kRtolSmooth = 1e-2, kRtolLinear = 1e-3;

class GradCheck : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { mode_ = std::make_unique<test::KernelMode>(GetParam()); }
  std::unique_ptr<test::KernelMode> mode_;
};

TEST_P(GradCheck, Linear) {
  const int64_t N = 3, C = 5, OC = 7;
  auto inp = randn(N * C, 1), weight = randn(OC * C, 2), bias = randn(OC, 3), W = randn(N * OC, 4);
  auto loss = [&] {
    std::vector<float> out(N * OC);  // (N, OC)
    linear_forward(out.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
    return dot(out, W);
  };
  std::vector<float> dinp(N * C, 0.0f), dweight(OC * C, 0.0f), dbias(OC, 0.0f);
  linear_backward(dinp.data(), dweight.data(), dbias.data(), W.data(), inp.data(), weight.data(), N, C, OC);
  expect_gradient(inp, dinp, loss, kEpsLinear, kAtol, kRtolLinear, "linear dinp");
  expect_gradient(weight, dweight, loss, kEpsLinear, kAtol, kRtolLinear, "linear dweight");
  expect_gradient(bias, dbias, loss, kEpsLinear, kAtol, kRtolLinear, "linear dbias");
}

TEST_P(GradCheck, LinearSingleRowDecodePath) {  // N == 1 goes through matvec in the fast kernels
  const int64_t N = 1, C = 19, OC = 6;
  auto inp = randn(N * C, 5), weight = randn(OC * C, 6), bias = randn(OC, 7), W = randn(N * OC, 8);
  auto loss = [&] {
    std::vector<float> out(N * OC);
    linear_forward(out.data(), inp.data(), weight.data(), bias.data(), N, C, OC);
    return dot(out, W);
  };
  std::vector<float> dinp(N * C, 0.0f), dweight(OC * C, 0.0f);
  linear_backward(dinp.data(), dweight.data(), nullptr, W.data(), inp.data(), weight.data(), N, C, OC);
  expect_gradient(inp, dinp, loss, kEpsLinear, kAtol, kRtolLinear, "linear(N=1) dinp");
  expect_gradient(weight, dweight, loss, kEpsLinear, kAtol, kRtolLinear, "linear(N=1) dweight");
}

TEST_P(GradCheck, Embedding) {
  const int64_t V = 6, N = 5, C = 3;
  const std::vector<int32_t> ids = {2, 0, 2, 5, 2};  // repeated ids must accumulate
  auto table = randn(V * C, 9), W = randn(N * C, 10);
  auto loss = [&] {
    std::vector<float> out(N * C);
    embedding_forward(out.data(), ids.data(), table.data(), N, C);
    return dot(out, W);
  };
  std::vector<float> dtable(V * C, 0.0f);
  embedding_backward(dtable.data(), W.data(), ids.data(), N, C);
  expect_gradient(table, dtable, loss, kEpsLinear, kAtol, kRtolLinear, "embedding dtable");
}

TEST_P(GradCheck, LayerNorm) {
  const int64_t N = 4, C = 7;
  auto inp = randn(N * C, 11), weight = randn(C, 12), bias = randn(C, 13), W = randn(N * C, 14);
  std::vector<float> mean(N), rstd(N);
  auto loss = [&] {
    std::vector<float> out(N * C);
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), weight.data(), bias.data(), N, C, 1e-5f);
    return dot(out, W);
  };
  loss();  // fills mean, rstd at the unperturbed input
  std::vector<float> dinp(N * C, 0.0f), dweight(C, 0.0f), dbias(C, 0.0f);
  layernorm_backward(dinp.data(), dweight.data(), dbias.data(), W.data(), inp.data(), weight.data(), mean.data(),
                     rstd.data(), N, C);
  expect_gradient(inp, dinp, loss, kEpsSmooth, kAtol, kRtolSmooth, "layernorm dinp");
  expect_gradient(weight, dweight, loss, kEpsSmooth, kAtol, kRtolSmooth, "layernorm dweight");
  expect_gradient(bias, dbias, loss, kEpsSmooth, kAtol, kRtolSmooth, "layernorm dbias");
}

TEST_P(GradCheck, Gelu) {
  for (Gelu kind : {Gelu::Tanh, Gelu::Erf}) {
    const int64_t n = 37;
    auto inp = test::uniform(n, 15, -3.0f, 3.0f), W = randn(n, 16);
    auto loss = [&] {
      std::vector<float> out(n);
      gelu_forward(out.data(), inp.data(), n, kind);
      return dot(out, W);
    };
    std::vector<float> dinp(n, 0.0f);
    gelu_backward(dinp.data(), inp.data(), W.data(), n, kind);
    expect_gradient(inp, dinp, loss, kEpsSmooth, kAtol, kRtolSmooth, kind == Gelu::Tanh ? "gelu tanh" : "gelu erf");
  }
}

TEST_P(GradCheck, Softmax) {
  const int64_t N = 3, C = 21;
  auto inp = randn(N * C, 17, 2.0f), W = randn(N * C, 18);
  std::vector<float> out(N * C);
  auto loss = [&] {
    softmax_forward(out.data(), inp.data(), N, C);
    return dot(out, W);
  };
  loss();
  std::vector<float> dinp(N * C, 0.0f);
  softmax_backward(dinp.data(), out.data(), W.data(), N, C);
  expect_gradient(inp, dinp, loss, kEpsSmooth, kAtol, kRtolSmooth, "softmax");
}

TEST_P(GradCheck, CrossEntropyWithIgnoredTarget) {
  const int64_t N = 4, V = 11;
  const std::vector<int32_t> targets = {3, -1, 10, 0};
  auto logits = randn(N * V, 19, 2.0f), dl = randn(N, 20);
  auto loss = [&] {
    std::vector<float> losses(N);
    crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V);
    return dot(losses, dl);
  };
  std::vector<float> dlogits(N * V, 0.0f);
  crossentropy_backward(dlogits.data(), logits.data(), targets.data(), dl.data(), N, V);
  expect_gradient(logits, dlogits, loss, kEpsSmooth, kAtol, kRtolSmooth, "crossentropy");
}

// Attention in several configurations; dq, dk, dv each checked.
struct AttnCase {
  const char* name;
  AttentionShape s;
  bool padding;
};

TEST_P(GradCheck, Attention) {
  const AttnCase cases[] = {
      {"bidirectional", {2, 4, 4, 2, 2, 3, 0, false}, false},
      {"causal", {1, 5, 5, 2, 2, 3, 0, true}, false},
      {"causal GQA padded", {2, 4, 4, 4, 2, 3, 0, true}, true},
      {"decode q_offset", {1, 2, 6, 3, 1, 4, 4, true}, true},
      {"bidirectional padded GQA", {1, 3, 5, 4, 1, 2, 0, false}, true},
  };
  for (const auto& c : cases) {
    const AttentionShape& s = c.s;
    auto q = randn(s.B * s.Tq * s.H * s.hs, 21), k = randn(s.B * s.Tk * s.Hkv * s.hs, 22),
         v = randn(s.B * s.Tk * s.Hkv * s.hs, 23), W = randn(s.B * s.Tq * s.H * s.hs, 24);
    std::vector<uint8_t> valid(s.B * s.Tk, 1);
    if (c.padding) {
      valid[0] = 0;                 // batch 0: first key padded (query 0 of a causal case then sees nothing)
      valid[s.B * s.Tk - 1] = 0;    // last batch: last key padded
    }
    const float scale = 0.7f;
    std::vector<float> probs(s.B * s.H * s.Tq * s.Tk);
    auto loss = [&] {
      std::vector<float> out(s.B * s.Tq * s.H * s.hs);
      attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), c.padding ? valid.data() : nullptr,
                        s, scale, nullptr);
      return dot(out, W);
    };
    loss();
    std::vector<float> dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    attention_backward(dq.data(), dk.data(), dv.data(), W.data(), probs.data(), q.data(), k.data(), v.data(), s,
                       scale);
    expect_gradient(q, dq, loss, kEpsSmooth, kAtol, kRtolSmooth, std::string(c.name) + " dq");
    expect_gradient(k, dk, loss, kEpsSmooth, kAtol, kRtolSmooth, std::string(c.name) + " dk");
    expect_gradient(v, dv, loss, kEpsSmooth, kAtol, kRtolSmooth, std::string(c.name) + " dv");
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, GradCheck, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Reference" : "Fast"; });

}  // namespace
}  // namespace mnemo
