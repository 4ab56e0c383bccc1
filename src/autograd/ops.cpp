#include "autograd/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/bf16_linear.h"

namespace mnemo::ag {
namespace {

int64_t rows_of(const Var& x) { return x.value.rank() ? x.value.numel() / x.value.dim(-1) : 1; }
int64_t cols_of(const Var& x) { return x.value.rank() ? x.value.dim(-1) : 1; }
float* grad_or_null(const Var& v) { return v.needs_grad() ? const_cast<float*>(v.grad.data()) : nullptr; }

// Element-wise passes (residual adds, column slices) are memory-bound: split them over the pool once a worker gets
// this many floats. Each element is written by one worker with no reduction, so results do not depend on threads.
constexpr int64_t kElemGrain = 1 << 15;

}  // namespace

Var linear(Tape& t, const Var& x, const Var& w, const Var& b) {
  const int64_t N = rows_of(x), C = cols_of(x), OC = w.value.dim(0);
  MNEMO_CHECK(w.value.rank() == 2 && w.value.dim(1) == C, "linear: x ", shape_str(x.shape()), " w ",
              shape_str(w.shape()));
  const bool has_b = b.value.defined();
  MNEMO_CHECK(!has_b || b.value.numel() == OC, "linear: bias ", shape_str(b.shape()), " for ", OC, " outputs");
  Shape os = x.shape();
  os.back() = OC;
  Var out = t.output(os, x.needs_grad() || w.needs_grad() || (has_b && b.needs_grad()));  // (N,OC)
  linear_forward(out.data(), x.data(), w.data(), has_b ? b.data() : nullptr, N, C, OC);
  if (out.needs_grad()) {
    t.record([out, x, w, b, N, C, OC]() {
      linear_backward(grad_or_null(x), grad_or_null(w), b.value.defined() ? grad_or_null(b) : nullptr,
                      out.grad.data(), x.data(), w.data(), N, C, OC);
    });
  }
  return out;
}

Var linear_bf16(Tape& t, const Var& x, const uint16_t* w, int64_t OC, const Var& b) {
  if (t.recording()) throw Error("bf16 linear layers are for inference: training needs fp32 weights");
  const int64_t N = rows_of(x), C = cols_of(x);
  const bool has_b = b.value.defined();
  MNEMO_CHECK(!has_b || b.value.numel() == OC, "linear: bias ", shape_str(b.shape()), " for ", OC, " outputs");
  Shape os = x.shape();
  os.back() = OC;
  Var out = t.output(os, false);  // (N,OC)
  linear_bf16_forward(out.data(), x.data(), w, has_b ? b.data() : nullptr, N, C, OC);
  return out;
}

Var embedding(Tape& t, const int32_t* ids, int64_t N, const Var& table) {
  const int64_t C = table.value.dim(1);
  Var out = t.output({N, C}, table.needs_grad());  // (N,C)
  embedding_forward(out.data(), ids, table.data(), N, C);
  if (out.needs_grad()) {
    auto* saved = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));  // (N)
    std::memcpy(saved, ids, size_t(N) * sizeof(int32_t));
    t.record([out, table, saved, N, C]() {
      embedding_backward(const_cast<float*>(table.grad.data()), out.grad.data(), saved, N, C);
    });
  }
  return out;
}

Var layernorm(Tape& t, const Var& x, const Var& w, const Var& b, float eps) {
  const int64_t N = rows_of(x), C = cols_of(x);
  MNEMO_CHECK(w.value.numel() == C && b.value.numel() == C, "layernorm: x ", shape_str(x.shape()), " w ",
              shape_str(w.shape()));
  Var out = t.output(x.shape(), x.needs_grad() || w.needs_grad() || b.needs_grad());  // (N,C)
  if (!out.needs_grad()) {
    layernorm_forward(out.data(), nullptr, nullptr, x.data(), w.data(), b.data(), N, C, eps);
    return out;
  }
  Tensor mean = t.alloc({N}), rstd = t.alloc({N});  // (N) each, saved for backward
  layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, eps);
  t.record([out, x, w, b, mean, rstd, N, C]() {
    layernorm_backward(grad_or_null(x), grad_or_null(w), grad_or_null(b), out.grad.data(), x.data(), w.data(),
                       mean.data(), rstd.data(), N, C);
  });
  return out;
}

Var gelu(Tape& t, const Var& x, Gelu kind) {
  Var out = t.output(x.shape(), x.needs_grad());
  gelu_forward(out.data(), x.data(), x.value.numel(), kind);
  if (out.needs_grad()) {
    t.record([out, x, kind]() {
      gelu_backward(const_cast<float*>(x.grad.data()), x.data(), out.grad.data(), x.value.numel(), kind);
    });
  }
  return out;
}

Var tanh(Tape& t, const Var& x) {
  Var out = t.output(x.shape(), x.needs_grad());
  const int64_t n = x.value.numel();
  for (int64_t i = 0; i < n; ++i) out.data()[i] = std::tanh(x.data()[i]);
  if (out.needs_grad()) {
    t.record([out, x, n]() {
      float* dx = const_cast<float*>(x.grad.data());
      for (int64_t i = 0; i < n; ++i) {
        float y = out.value.data()[i];
        dx[i] += (1.0f - y * y) * out.grad.data()[i];  // d tanh = 1 - tanh^2
      }
    });
  }
  return out;
}

Var add(Tape& t, const Var& a, const Var& b) {
  MNEMO_CHECK(a.shape() == b.shape(), "add: ", shape_str(a.shape()), " + ", shape_str(b.shape()));
  Var out = t.output(a.shape(), a.needs_grad() || b.needs_grad());
  const int64_t n = a.value.numel();
  {
    float* o = out.data();
    const float *pa = a.data(), *pb = b.data();
    parallel_for(n, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) o[i] = pa[i] + pb[i];
    }, kElemGrain);
  }
  if (out.needs_grad()) {
    t.record([out, a, b, n]() {
      const float* g = out.grad.data();
      float* da = a.needs_grad() ? const_cast<float*>(a.grad.data()) : nullptr;
      float* db = b.needs_grad() ? const_cast<float*>(b.grad.data()) : nullptr;
      parallel_for(n, [&](int64_t i0, int64_t i1) {
        if (da)
          for (int64_t i = i0; i < i1; ++i) da[i] += g[i];
        if (db)
          for (int64_t i = i0; i < i1; ++i) db[i] += g[i];
      }, kElemGrain);
    });
  }
  return out;
}

Var slice_cols(Tape& t, const Var& x, int64_t begin, int64_t end) {
  const int64_t N = rows_of(x), C = cols_of(x), W = end - begin;
  MNEMO_CHECK(0 <= begin && begin <= end && end <= C, "slice_cols ", begin, ":", end, " of ", shape_str(x.shape()));
  Shape os = x.shape();
  os.back() = W;
  Var out = t.output(os, x.needs_grad());  // (N,W)
  const int64_t row_grain = std::max<int64_t>(1, kElemGrain / std::max<int64_t>(W, 1));
  {
    float* o = out.data();
    const float* px = x.data();
    parallel_for(N, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(o + r * W, px + r * C + begin, size_t(W) * sizeof(float));
    }, row_grain);
  }
  if (out.needs_grad()) {
    t.record([out, x, begin, N, C, W, row_grain]() {
      float* dx = const_cast<float*>(x.grad.data());
      const float* g = out.grad.data();
      parallel_for(N, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = 0; c < W; ++c) dx[r * C + begin + c] += g[r * W + c];
      }, row_grain);
    });
  }
  return out;
}

Var select_rows(Tape& t, const Var& x, const std::vector<int64_t>& rows) {
  const int64_t N = rows_of(x), C = cols_of(x), R = int64_t(rows.size());
  Var out = t.output({R, C}, x.needs_grad());  // (R,C)
  for (int64_t r = 0; r < R; ++r) {
    MNEMO_CHECK(0 <= rows[size_t(r)] && rows[size_t(r)] < N, "select_rows: row ", rows[size_t(r)], " of ", N);
    std::memcpy(out.data() + r * C, x.data() + rows[size_t(r)] * C, size_t(C) * sizeof(float));
  }
  if (out.needs_grad()) {
    t.record([out, x, rows, C, R]() {
      float* dx = const_cast<float*>(x.grad.data());
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) dx[rows[size_t(r)] * C + c] += out.grad.data()[r * C + c];
    });
  }
  return out;
}

Var attention(Tape& t, const Var& q, const Var& k, const Var& v, const AttentionShape& s, const uint8_t* key_valid,
              const AttentionObserver* observer) {
  MNEMO_CHECK(q.value.numel() == s.B * s.Tq * s.H * s.hs, "attention: q ", shape_str(q.shape()));
  MNEMO_CHECK(k.value.numel() == s.B * s.Tk * s.Hkv * s.hs && v.value.numel() == k.value.numel(),
              "attention: k ", shape_str(k.shape()), " v ", shape_str(v.shape()));
  const float scale = 1.0f / std::sqrt(float(s.hs));
  Var out = t.output(q.shape(), q.needs_grad() || k.needs_grad() || v.needs_grad());  // (B*Tq, H*hs)
  // The probabilities, kept only for backward or an observer (otherwise the kernel's workers hold one head each).
  Tensor probs;
  if (out.needs_grad() || (observer && *observer)) probs = t.alloc({s.B, s.H, s.Tq, s.Tk});  // (B,H,Tq,Tk)
  attention_forward(out.data(), probs.defined() ? probs.data() : nullptr, q.data(), k.data(), v.data(), key_valid,
                    s, scale, observer);
  if (out.needs_grad()) {
    t.record([&t, out, probs, q, k, v, s, scale]() {
      // The kernel writes all three gradients; inputs that need none get scratch.
      float* dq = q.needs_grad() ? const_cast<float*>(q.grad.data()) : t.zeros(q.shape()).data();
      float* dk = k.needs_grad() ? const_cast<float*>(k.grad.data()) : t.zeros(k.shape()).data();
      float* dv = v.needs_grad() ? const_cast<float*>(v.grad.data()) : t.zeros(v.shape()).data();
      attention_backward(dq, dk, dv, out.grad.data(), probs.data(), q.data(), k.data(), v.data(), s, scale);
    });
  }
  return out;
}

Var cross_entropy(Tape& t, const Var& logits, const int32_t* targets) {
  const int64_t N = rows_of(logits), V = cols_of(logits);
  Tensor losses = t.alloc({N});  // (N)
  crossentropy_forward(losses.data(), logits.data(), targets, N, V);
  int64_t count = 0;
  double sum = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    ++count;
    sum += losses.data()[n];
  }
  Var out = t.output({1}, logits.needs_grad());
  out.data()[0] = count ? float(sum / double(count)) : 0.0f;
  if (out.needs_grad() && count) {
    auto* saved = static_cast<int32_t*>(t.alloc_bytes(size_t(N) * sizeof(int32_t)));  // (N)
    std::memcpy(saved, targets, size_t(N) * sizeof(int32_t));
    t.record([&t, out, logits, saved, N, V, count]() {
      Tensor dlosses = t.alloc({N});  // (N): d(mean)/d(loss_n) = 1/count
      dlosses.fill(out.grad.data()[0] / float(count));
      crossentropy_backward(const_cast<float*>(logits.grad.data()), logits.data(), saved, dlosses.data(), N, V);
    });
  }
  return out;
}

Var weighted_sum(Tape& t, const Var& x, const Tensor& w) {
  MNEMO_CHECK(w.numel() == x.value.numel(), "weighted_sum: x ", shape_str(x.shape()), " w ", shape_str(w.shape()));
  const int64_t n = x.value.numel();
  Var out = t.output({1}, x.needs_grad());
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += double(x.data()[i]) * double(w[i]);
  out.data()[0] = float(acc);
  if (out.needs_grad()) {
    t.record([out, x, w, n]() {
      float* dx = const_cast<float*>(x.grad.data());
      const float g = out.grad.data()[0];
      for (int64_t i = 0; i < n; ++i) dx[i] += g * w[i];
    });
  }
  return out;
}

}  // namespace mnemo::ag
