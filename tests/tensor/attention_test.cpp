// Attention: fast held to reference in every masking configuration (causal, bidirectional, key padding, GQA,
// decoding against a cache with q_offset), and the probabilities handed to the observer checked directly: each row
// sums to 1 over exactly the visible keys and is 0 elsewhere; a row with no visible key is all zero with zero output.
//
// Tolerance for fast vs reference: scores are dot products of length hs (<= 64) of O(1) values, the softmax uses
// an exp within ~2 ulp, and the output is a sum over Tk (<= 300) of probabilities times O(1) values; every one of
// these differs from the reference only in summation order, ~sqrt(len) * 6e-8 relative. atol 2e-6, rtol 1e-5 on
// outputs of size <= ~3 and probabilities <= 1; gradients (one more product of length Tk or Tq) atol 1e-5.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/thread_pool.h"
#include "kernel_test_util.h"
#include "tensor/kernels.h"

namespace mnemo {
namespace {

using test::randn;

struct Case {
  const char* name;
  AttentionShape s;
  bool padding;
};

const Case kCases[] = {
    {"bidirectional", {2, 9, 9, 3, 3, 16, 0, false}, false},
    {"causal", {2, 33, 33, 4, 4, 8, 0, true}, false},
    {"causal padded", {3, 17, 17, 2, 2, 5, 0, true}, true},
    {"bidirectional padded", {2, 7, 19, 2, 2, 7, 0, false}, true},
    {"GQA causal", {1, 21, 21, 6, 2, 12, 0, true}, false},
    {"GQA padded MQA", {2, 5, 11, 4, 1, 9, 0, false}, true},
    {"decode one token", {2, 1, 37, 6, 3, 16, 36, true}, true},
    {"decode chunk", {1, 4, 40, 2, 1, 32, 36, true}, false},
    {"long causal", {1, 300, 300, 2, 2, 64, 0, true}, false},
    // several 64-row causal blocks that do not line up with the key blocks (q_offset 50), GQA, padding
    {"long chunk with offset", {2, 150, 200, 4, 2, 16, 50, true}, true},
};

std::vector<uint8_t> padding_mask(const AttentionShape& s) {
  std::vector<uint8_t> valid(s.B * s.Tk, 1);  // (B, Tk)
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t j = 0; j < s.Tk; ++j)
      if ((j * 5 + b * 3) % 7 == 1 || (b == 0 && j == 0)) valid[b * s.Tk + j] = 0;  // including the first key
  return valid;
}

bool visible(const AttentionShape& s, const std::vector<uint8_t>* valid, int64_t b, int64_t i, int64_t j) {
  if (valid && !(*valid)[b * s.Tk + j]) return false;
  return !s.causal || j <= s.q_offset + i;
}

TEST(Attention, FastMatchesReferenceInEveryConfiguration) {
  for (const auto& c : kCases) {
    const AttentionShape& s = c.s;
    auto q = randn(s.B * s.Tq * s.H * s.hs, 1), k = randn(s.B * s.Tk * s.Hkv * s.hs, 2),
         v = randn(s.B * s.Tk * s.Hkv * s.hs, 3), dout = randn(s.B * s.Tq * s.H * s.hs, 4);
    auto valid = padding_mask(s);
    const float scale = 1.0f / std::sqrt(float(s.hs));
    std::vector<float> out[2], probs[2], dq[2], dk[2], dv[2];
    for (int r = 0; r < 2; ++r) {
      test::KernelMode mode(r == 1);
      out[r].assign(q.size(), 0.0f);
      probs[r].assign(s.B * s.H * s.Tq * s.Tk, -1.0f);  // every element must be written
      dq[r].assign(q.size(), 0.5f);                    // gradients accumulate onto what is there
      dk[r].assign(k.size(), 0.5f);
      dv[r].assign(v.size(), 0.5f);
      attention_forward(out[r].data(), probs[r].data(), q.data(), k.data(), v.data(),
                        c.padding ? valid.data() : nullptr, s, scale, nullptr);
      attention_backward(dq[r].data(), dk[r].data(), dv[r].data(), dout.data(), probs[r].data(), q.data(),
                         k.data(), v.data(), s, scale);
      // Without a probabilities buffer (inference): the same output, bit for bit.
      std::vector<float> alone(q.size(), 0.0f);
      attention_forward(alone.data(), nullptr, q.data(), k.data(), v.data(), c.padding ? valid.data() : nullptr, s,
                        scale, nullptr);
      EXPECT_EQ(alone, out[r]) << c.name << (r ? " reference" : " fast") << " without probs";
    }
    const std::string n = c.name;
    test::expect_close(probs[0], probs[1], 2e-6, 1e-5, n + " probs");
    test::expect_close(out[0], out[1], 2e-6, 1e-5, n + " out");
    test::expect_close(dq[0], dq[1], 1e-5, 1e-5, n + " dq");
    test::expect_close(dk[0], dk[1], 1e-5, 1e-5, n + " dk");
    test::expect_close(dv[0], dv[1], 1e-5, 1e-5, n + " dv");
  }
}

TEST(Attention, ObserverSeesNormalisedMaskedProbabilities) {
  for (bool reference : {false, true}) {
    test::KernelMode mode(reference);
    for (const auto& c : kCases) {
      const AttentionShape& s = c.s;
      auto q = randn(s.B * s.Tq * s.H * s.hs, 5), k = randn(s.B * s.Tk * s.Hkv * s.hs, 6),
           v = randn(s.B * s.Tk * s.Hkv * s.hs, 7);
      auto valid = padding_mask(s);
      const std::vector<uint8_t>* vp = c.padding ? &valid : nullptr;
      std::vector<float> out(q.size()), probs(s.B * s.H * s.Tq * s.Tk);
      int calls = 0;
      std::vector<float> seen;
      AttentionObserver obs = [&](const float* p, const AttentionShape& shape) {
        ++calls;
        EXPECT_EQ(shape.Tq, s.Tq);
        EXPECT_EQ(shape.Tk, s.Tk);
        EXPECT_EQ(shape.q_offset, s.q_offset);
        seen.assign(p, p + s.B * s.H * s.Tq * s.Tk);
      };
      attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), vp ? vp->data() : nullptr, s, 0.5f,
                        &obs);
      ASSERT_EQ(calls, 1) << c.name;
      ASSERT_EQ(seen, probs) << c.name << ": the observer must see the probabilities kept for backward";
      for (int64_t b = 0; b < s.B; ++b)
        for (int64_t h = 0; h < s.H; ++h)
          for (int64_t i = 0; i < s.Tq; ++i) {
            const float* row = &seen[((b * s.H + h) * s.Tq + i) * s.Tk];
            double sum = 0.0;
            bool any = false;
            for (int64_t j = 0; j < s.Tk; ++j) {
              if (visible(s, vp, b, i, j)) {
                any = true;
                EXPECT_GE(row[j], 0.0f);
              } else {
                EXPECT_EQ(row[j], 0.0f) << c.name << ": masked key " << j << " of query " << i << " has mass";
              }
              sum += row[j];
            }
            if (any) {
              EXPECT_NEAR(sum, 1.0, 1e-5) << c.name << " row " << i;  // Tk float terms: < 300 * 6e-8
            } else {
              EXPECT_EQ(sum, 0.0) << c.name << ": a query with no visible key must have no mass";
              for (int64_t d = 0; d < s.hs; ++d)
                EXPECT_EQ(out[((b * s.Tq + i) * s.H + h) * s.hs + d], 0.0f) << c.name << ": output must be zero";
            }
          }
    }
  }
}

TEST(Attention, DecodingOneTokenMatchesTheLastRowOfTheFullPass) {
  // A cache of Tk keys with the newest query at q_offset = Tk - 1 equals the last row of causal attention over all.
  for (bool reference : {false, true}) {
    test::KernelMode mode(reference);
    const int64_t T = 23, H = 4, Hkv = 2, hs = 8;
    AttentionShape full{1, T, T, H, Hkv, hs, 0, true};
    AttentionShape step{1, 1, T, H, Hkv, hs, T - 1, true};
    auto q = randn(T * H * hs, 8), k = randn(T * Hkv * hs, 9), v = randn(T * Hkv * hs, 10);
    std::vector<float> out_full(T * H * hs), p_full(H * T * T), out_step(H * hs), p_step(H * T);
    attention_forward(out_full.data(), p_full.data(), q.data(), k.data(), v.data(), nullptr, full, 0.3f, nullptr);
    attention_forward(out_step.data(), p_step.data(), q.data() + (T - 1) * H * hs, k.data(), v.data(), nullptr, step,
                      0.3f, nullptr);
    std::vector<float> last(out_full.end() - H * hs, out_full.end());
    // Same math, products of different shapes: summation order may differ, so ulp-level tolerance.
    test::expect_close(out_step, last, 1e-6, 1e-5, "decode step vs last row");
  }
}

TEST(Attention, IdenticalRunToRunAndIndependentOfHeadSplit) {
  const Case& c = kCases[1];
  const AttentionShape& s = c.s;
  auto q = randn(s.B * s.Tq * s.H * s.hs, 11), k = randn(s.B * s.Tk * s.Hkv * s.hs, 12),
       v = randn(s.B * s.Tk * s.Hkv * s.hs, 13);
  std::vector<float> o1(q.size()), o2(q.size()), p1(s.B * s.H * s.Tq * s.Tk), p2(p1.size());
  attention_forward(o1.data(), p1.data(), q.data(), k.data(), v.data(), nullptr, s, 0.4f, nullptr);
  attention_forward(o2.data(), p2.data(), q.data(), k.data(), v.data(), nullptr, s, 0.4f, nullptr);
  EXPECT_EQ(o1, o2);
  EXPECT_EQ(p1, p2);
}

}  // namespace
}  // namespace mnemo
