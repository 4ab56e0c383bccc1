// Finite-difference checks of every autograd op (tolerances and why: gradcheck.h), under both the fast and the
// reference kernels, plus the tape's contracts: inference records nothing, the arena is reused, gradients
// accumulate across uses.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "autograd/parameter.h"
#include "gradcheck.h"

namespace mnemo {
namespace {

using testing::Checked;
using testing::gradcheck;
using testing::random_tensor;

Var in(Tape& t, const Checked& c) { return Var{c.value, t.recording() ? c.grad : Tensor()}; }

Checked make(const std::string& name, Shape shape, Rng& rng, float scale = 1.0f) {
  Tensor v = random_tensor(shape, rng, scale);
  return Checked{name, v, Tensor::zeros(shape)};
}

// Runs body once with the fast kernels and once with the reference ones.
template <typename F>
void both_kernels(F body) {
  for (bool ref : {false, true}) {
    SCOPED_TRACE(ref ? "reference kernels" : "fast kernels");
    set_reference_kernels(ref);
    body();
  }
  set_reference_kernels(false);
}

TEST(AutogradOps, Linear) {
  both_kernels([] {
    Rng rng(1);
    Checked x = make("x", {5, 7}, rng), w = make("w", {3, 7}, rng, 0.5f), b = make("b", {3}, rng);
    Tensor probe = random_tensor({5, 3}, rng);  // (N,OC)
    int n = gradcheck(
        [&](Tape& t) { return ag::weighted_sum(t, ag::linear(t, in(t, x), in(t, w), in(t, b)), probe); },
        {x, w, b});
    EXPECT_GT(n, 10);
    // Without bias.
    gradcheck([&](Tape& t) { return ag::weighted_sum(t, ag::linear(t, in(t, x), in(t, w), Var{}), probe); },
              {x, w});
  });
}

TEST(AutogradOps, EmbeddingRepeatedIds) {
  both_kernels([] {
    Rng rng(2);
    Checked table = make("table", {6, 4}, rng);
    const int32_t ids[] = {3, 1, 3, 0, 5};  // 3 twice: its row gets both gradients
    Tensor probe = random_tensor({5, 4}, rng);
    gradcheck([&](Tape& t) { return ag::weighted_sum(t, ag::embedding(t, ids, 5, in(t, table)), probe); },
              {table}, {.entries = 24});
  });
}

TEST(AutogradOps, LayerNorm) {
  both_kernels([] {
    Rng rng(3);
    Checked x = make("x", {4, 9}, rng), w = make("w", {9}, rng), b = make("b", {9}, rng);
    Tensor probe = random_tensor({4, 9}, rng);
    gradcheck([&](Tape& t) { return ag::weighted_sum(t, ag::layernorm(t, in(t, x), in(t, w), in(t, b), 1e-5f), probe); },
              {x, w, b}, {.entries = 12});
  });
}

TEST(AutogradOps, GeluTanhErfAndTanh) {
  both_kernels([] {
    Rng rng(4);
    Checked x = make("x", {3, 8}, rng, 2.0f);
    Tensor probe = random_tensor({3, 8}, rng);
    for (Gelu g : {Gelu::Tanh, Gelu::Erf})
      gradcheck([&](Tape& t) { return ag::weighted_sum(t, ag::gelu(t, in(t, x), g), probe); }, {x}, {.entries = 24});
    gradcheck([&](Tape& t) { return ag::weighted_sum(t, ag::tanh(t, in(t, x)), probe); }, {x}, {.entries = 24});
  });
}

TEST(AutogradOps, AddSliceSelectShareInputs) {
  Rng rng(5);
  Checked x = make("x", {4, 6}, rng), y = make("y", {4, 2}, rng);
  Tensor probe = random_tensor({3, 2}, rng);
  // x feeds two slices and an add with y; select_rows repeats row 2: every path must accumulate.
  gradcheck(
      [&](Tape& t) {
        Var xv = in(t, x);
        Var s = ag::add(t, ag::slice_cols(t, xv, 1, 3), ag::slice_cols(t, xv, 4, 6));  // (4,2)
        s = ag::add(t, s, in(t, y));
        return ag::weighted_sum(t, ag::select_rows(t, s, {2, 0, 2}), probe);
      },
      {x, y}, {.entries = 24});
}

void attention_case(AttentionShape s, bool padding) {
  Rng rng(6);
  Checked q = make("q", {s.B * s.Tq, s.H * s.hs}, rng), k = make("k", {s.B * s.Tk, s.Hkv * s.hs}, rng),
          v = make("v", {s.B * s.Tk, s.Hkv * s.hs}, rng);
  std::vector<uint8_t> valid(size_t(s.B * s.Tk), 1);  // (B,Tk)
  if (padding) valid[size_t(s.Tk - 1)] = valid[size_t(s.Tk - 2)] = 0;  // the last two keys of row 0 are padding
  Tensor probe = random_tensor({s.B * s.Tq, s.H * s.hs}, rng);
  gradcheck(
      [&](Tape& t) {
        return ag::weighted_sum(
            t, ag::attention(t, in(t, q), in(t, k), in(t, v), s, padding ? valid.data() : nullptr, nullptr), probe);
      },
      {q, k, v}, {.entries = 16});
}

TEST(AutogradOps, AttentionCausal) {
  both_kernels([] {
    AttentionShape s;
    s.B = 2, s.Tq = 5, s.Tk = 5, s.H = 2, s.Hkv = 2, s.hs = 4, s.causal = true;
    attention_case(s, false);
  });
}

TEST(AutogradOps, AttentionPaddedBidirectional) {
  both_kernels([] {
    AttentionShape s;
    s.B = 2, s.Tq = 5, s.Tk = 5, s.H = 2, s.Hkv = 2, s.hs = 4, s.causal = false;
    attention_case(s, true);
  });
}

TEST(AutogradOps, AttentionGroupedQueriesWithOffset) {
  both_kernels([] {
    AttentionShape s;
    s.B = 1, s.Tq = 3, s.Tk = 6, s.H = 4, s.Hkv = 2, s.hs = 3, s.q_offset = 3, s.causal = true;
    attention_case(s, false);
  });
}

TEST(AutogradOps, AttentionObserverSeesProbabilities) {
  AttentionShape s;
  s.B = 1, s.Tq = 4, s.Tk = 4, s.H = 2, s.Hkv = 2, s.hs = 2, s.causal = true;
  Rng rng(7);
  Tensor q = random_tensor({4, 4}, rng), k = random_tensor({4, 4}, rng), v = random_tensor({4, 4}, rng);
  int calls = 0;
  AttentionObserver obs = [&](const float* p, const AttentionShape& sh) {
    ++calls;
    EXPECT_EQ(sh.Tk, 4);
    for (int64_t h = 0; h < sh.H; ++h)
      for (int64_t i = 0; i < sh.Tq; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < sh.Tk; ++j) {
          float pj = p[(h * sh.Tq + i) * sh.Tk + j];
          if (j > i) EXPECT_EQ(pj, 0.0f) << "causal mask";
          sum += pj;
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
  };
  Tape t(Tape::Mode::Inference);
  ag::attention(t, Var{q, {}}, Var{k, {}}, Var{v, {}}, s, nullptr, &obs);
  EXPECT_EQ(calls, 1);
}

TEST(AutogradOps, CrossEntropyIgnoresNegativeTargets) {
  both_kernels([] {
    Rng rng(8);
    Checked logits = make("logits", {5, 7}, rng, 2.0f);
    const int32_t targets[] = {3, -1, 0, 6, -100};
    gradcheck([&](Tape& t) { return ag::cross_entropy(t, in(t, logits), targets); }, {logits}, {.entries = 35});
    // Ignored rows get exactly zero gradient.
    for (int64_t c = 0; c < 7; ++c) {
      EXPECT_EQ(logits.grad[1 * 7 + c], 0.0f);
      EXPECT_EQ(logits.grad[4 * 7 + c], 0.0f);
    }
  });
}

TEST(Tape, InferenceRecordsNothingAndArenaIsReused) {
  Rng rng(9);
  ParameterSet ps;
  ps.declare("w", {8, 8});
  ps.allocate();
  for (int64_t i = 0; i < 64; ++i) ps[0].value[i] = float(rng.normal());
  Tensor x = random_tensor({16, 8}, rng);
  Tape inf(Tape::Mode::Inference);
  Var y = ag::gelu(inf, ag::linear(inf, Var{x, {}}, ps.var(inf, 0), Var{}), Gelu::Erf);
  EXPECT_EQ(inf.steps(), 0u);
  EXPECT_FALSE(y.needs_grad());

  Tape tr(Tape::Mode::Train);
  for (int pass = 0; pass < 3; ++pass) {
    tr.reset();
    Var out = ag::linear(tr, Var{x, {}}, ps.var(tr, 0), Var{});
    for (int k = 0; k < 40; ++k) out = ag::tanh(tr, out);  // more than the first 1 MiB block
    tr.backward(ag::weighted_sum(tr, out, Tensor::zeros(out.shape())));
  }
  const size_t held = tr.arena_bytes();
  tr.reset();
  Var out = ag::linear(tr, Var{x, {}}, ps.var(tr, 0), Var{});
  for (int k = 0; k < 40; ++k) out = ag::tanh(tr, out);
  EXPECT_EQ(tr.arena_bytes(), held) << "a pass of the same shapes must not grow the arena";

  // A big pass holds about what it uses: blocks stop doubling at 256 MiB (doubling, 640 MiB of values held
  // 1,261 MiB of blocks). alloc() does not touch the memory, so this reserves address space only.
  Tape big(Tape::Mode::Inference);
  const int64_t chunk = int64_t(20) << 18;  // 20 MiB of floats
  for (int k = 0; k < 32; ++k) big.alloc({chunk});
  const size_t used = size_t(32) * size_t(chunk) * sizeof(float);
  EXPECT_LE(big.arena_bytes(), used + (size_t(512) << 20)) << "used " << used;
}

TEST(Tape, ReleaseKeepsOneValueAndReusesTheRest) {
  Rng rng(11);
  Tensor x = random_tensor({64, 256}, rng);  // 64 KiB a value: 40 of them outgrow the first 1 MiB block
  Tape t(Tape::Mode::Inference);
  std::vector<const float*> last(2);  // where layer 0's last value lies, per pass
  for (int pass = 0; pass < 2; ++pass) {
    t.reset();  // keeps the blocks: the second pass must allocate nothing and use the same memory
    Var v{x, {}};
    size_t held = 0;
    for (int layer = 0; layer < 6; ++layer) {
      const Tape::Mark m = t.mark();
      Var y = v;
      for (int k = 0; k < 40; ++k) y = ag::tanh(t, y);
      if (layer == 0) last[size_t(pass)] = y.data();
      std::vector<float> want = y.value.to_vector();
      v = t.release(m, y);
      EXPECT_EQ(v.value.to_vector(), want) << "layer " << layer;
      EXPECT_EQ(v.shape(), y.shape());
      EXPECT_FALSE(v.needs_grad());
      if (layer == 0) held = t.arena_bytes();
      EXPECT_EQ(t.arena_bytes(), held) << "released space must be reused, pass " << pass << " layer " << layer;
    }
  }
  EXPECT_EQ(last[0], last[1]);

  Tape tr(Tape::Mode::Train);
  EXPECT_ANY_THROW(tr.release(tr.mark(), Var{x, {}}));
}

TEST(Tape, ParameterGradientsAccumulateAcrossBackwards) {
  ParameterSet ps;
  ps.declare("w", {2, 3});
  ps.allocate();
  for (int64_t i = 0; i < 6; ++i) ps[0].value[i] = float(i) * 0.1f;
  Tensor x = Tensor::from({1, 3}, {1, 2, 3});
  Tensor probe = Tensor::from({1, 2}, {1, -1});
  for (int k = 0; k < 2; ++k) {
    Tape t;
    t.backward(ag::weighted_sum(t, ag::linear(t, Var{x, {}}, ps.var(t, 0), Var{}), probe));
  }
  // d/dw[o][c] of sum_o probe[o] * (w x)[o] = probe[o] * x[c], twice.
  EXPECT_FLOAT_EQ(ps[0].grad[0 * 3 + 2], 2 * 3.0f);
  EXPECT_FLOAT_EQ(ps[0].grad[1 * 3 + 1], 2 * -2.0f);
  ps.zero_grad();
  EXPECT_EQ(ps[0].grad[5], 0.0f);
}

}  // namespace
}  // namespace mnemo
