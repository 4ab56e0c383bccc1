// Fast elementwise and row-wise kernels: embedding, LayerNorm, GELU, softmax, cross-entropy, AdamW, in SIMD
// (tensor/simd.h) over the pool. Rows are independent work items; reductions across rows (dweight, dbias, the
// embedding scatter) are split by columns instead, so no two workers write the same element and the summation
// order never depends on the thread count. gemm/linear/matvec live in gemm.cpp, attention in attention.cpp.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/simd.h"

#include "tensor/kernels.h"
#include "tensor/profile.h"

namespace mnemo {

namespace {
std::atomic<bool> use_reference{false};
}

void set_reference_kernels(bool on) { use_reference.store(on); }
bool reference_kernels() { return use_reference.load(); }

namespace {
using namespace simd;

// Grain for parallel_for: at least ~16K floats of work per worker before the pool is woken.
int64_t row_grain(int64_t C) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1)); }
constexpr int64_t kElemGrain = 16384;

// Call fn(c0, c1) over column blocks of whole vectors, in parallel: for reductions over rows.
template <typename Fn>
void for_column_blocks(int64_t C, int64_t N, Fn&& fn) {
  const int64_t nvec = (C + kLanes - 1) / kLanes;
  parallel_for(
      nvec, [&](int64_t v0, int64_t v1) { fn(v0 * kLanes, std::min(C, v1 * kLanes)); },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(N * kLanes, 1)));
}

float row_sum(const float* x, int64_t C) {
  Vf acc = zero();
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) acc += load(x + c);
  if (c < C) acc += loadn(x + c, C - c);
  return reduce_add(acc);
}

float row_max(const float* x, int64_t C) {
  Vf mx = set1(-INFINITY);
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) mx = max(mx, load(x + c));
  if (c < C) mx = max(mx, loadn(x + c, C - c, -INFINITY));
  return reduce_max(mx);
}

// sum_c exp(x[c] - m)
float row_sum_exp(const float* x, int64_t C, float m) {
  const Vf mv = set1(m);
  Vf acc = zero();
  int64_t c = 0;
  for (; c + kLanes <= C; c += kLanes) acc += exp(load(x + c) - mv);
  if (c < C) acc += exp(loadn(x + c, C - c, -INFINITY) - mv);
  return reduce_add(acc);
}

// Apply y[i] = f(vector at i, lanes) to [0, n) with a masked tail.
template <typename Fn>
void for_vectors(int64_t n, Fn&& fn) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) fn(i, kLanes);
  if (i < n) fn(i, n - i);
}
inline Vf ld(const float* p, int64_t w) { return w == kLanes ? load(p) : loadn(p, w); }
inline void st(float* p, Vf a, int64_t w) {
  if (w == kLanes)
    store(p, a);
  else
    storen(p, a, w);
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t C) {
  if (reference_kernels()) return ref::embedding_forward(out, ids, table, N, C);
  prof::Scope scope("embedding_forward");
  parallel_for(
      N,
      [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n)
          std::memcpy(out + n * C, table + int64_t(ids[n]) * C, size_t(C) * sizeof(float));
      },
      row_grain(C));
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t C) {
  if (reference_kernels()) return ref::embedding_backward(dtable, dout, ids, N, C);
  prof::Scope scope("embedding_backward");
  // Repeated ids add in row order within each worker's column block: deterministic, no write conflicts.
  for_column_blocks(C, N, [&](int64_t c0, int64_t c1) {
    for (int64_t n = 0; n < N; ++n) {
      float* d = dtable + int64_t(ids[n]) * C;
      const float* g = dout + n * C;
      int64_t c = c0;
      for (; c + kLanes <= c1; c += kLanes) store(d + c, load(d + c) + load(g + c));
      if (c < c1) storen(d + c, loadn(d + c, c1 - c) + loadn(g + c, c1 - c), c1 - c);
    }
  });
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
  if (reference_kernels()) return ref::layernorm_forward(out, mean, rstd, inp, weight, bias, N, C, eps);
  prof::Scope scope("layernorm_forward");
  parallel_for(
      N,
      [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          const float* x = inp + n * C;  // (C)
          float* y = out + n * C;        // (C)
          const float m = row_sum(x, C) / float(C);
          const Vf mv = set1(m);
          Vf acc = zero();  // two passes, as the reference: no cancellation in E[x^2] - m^2
          for_vectors(C, [&](int64_t c, int64_t w) {
            Vf d = w == kLanes ? load(x + c) - mv : loadn(x + c, w, m) - mv;
            acc = fmadd(d, d, acc);
          });
          const float s = 1.0f / std::sqrt(reduce_add(acc) / float(C) + eps);
          const Vf sv = set1(s);
          for_vectors(C, [&](int64_t c, int64_t w) {
            st(y + c, fmadd((ld(x + c, w) - mv) * sv, ld(weight + c, w), ld(bias + c, w)), w);
          });
          if (mean) mean[n] = m;
          if (rstd) rstd[n] = s;
        }
      },
      row_grain(C));
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  if (reference_kernels())
    return ref::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
  prof::Scope scope("layernorm_backward");
  // One pass over the rows: each worker takes a contiguous block of rows, writes their dinp and sums its own
  // partial dweight, dbias; the partials are then added in worker order (deterministic for a thread count).
  const int nth = N * C < 2 * 16384 ? 1 : num_threads();
  std::vector<float> part(size_t(2 * C * nth), 0.0f);  // (nth, 2, C): per-worker dweight | dbias partial sums
  auto rows = [&](int ith, int nt) {
    float* pw = part.data() + 2 * C * ith;  // (C)
    float* pb = pw + C;                     // (C)
    for (int64_t n = N * ith / nt; n < N * (ith + 1) / nt; ++n) {
      const float* x = inp + n * C;   // (C)
      const float* g = dout + n * C;  // (C)
      const Vf mv = set1(mean[n]), sv = set1(rstd[n]);
      Vf dm = zero(), dnm = zero();
      if (dinp) {
        Vf a_mean = zero(), a_norm = zero();
        for_vectors(C, [&](int64_t c, int64_t w) {
          Vf norm = (ld(x + c, w) - mv) * sv;
          Vf dnorm = ld(g + c, w) * ld(weight + c, w);
          a_mean += dnorm;
          a_norm = fmadd(dnorm, norm, a_norm);
        });
        dm = set1(reduce_add(a_mean) / float(C));
        dnm = set1(reduce_add(a_norm) / float(C));
      }
      for_vectors(C, [&](int64_t c, int64_t w) {
        Vf norm = (ld(x + c, w) - mv) * sv;
        Vf gv = ld(g + c, w);
        if (dinp) {
          Vf dnorm = gv * ld(weight + c, w);
          st(dinp + n * C + c, fmadd(sv, dnorm - dm - norm * dnm, ld(dinp + n * C + c, w)), w);
        }
        st(pw + c, fmadd(norm, gv, ld(pw + c, w)), w);
        st(pb + c, ld(pb + c, w) + gv, w);
      });
    }
  };
  if (nth == 1)
    rows(0, 1);
  else
    parallel_run(rows);
  for (int t = 0; t < nth; ++t) {
    const float* pw = part.data() + 2 * C * t;
    for (int64_t c = 0; c < C; ++c) {
      if (dweight) dweight[c] += pw[c];
      if (dbias) dbias[c] += pw[C + c];
    }
  }
}

void gelu_forward(float* out, const float* inp, int64_t n, Gelu kind) {
  if (reference_kernels()) return ref::gelu_forward(out, inp, n, kind);
  prof::Scope scope("gelu_forward");
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        for_vectors(i1 - i0, [&](int64_t i, int64_t w) {
          Vf x = ld(inp + i0 + i, w), y;
          if (kind == Gelu::Tanh)  // 0.5 x (1 + tanh u) = x / (1 + e^{-2u}): no cancellation for x << 0
            y = x / (set1(1.0f) + exp(set1(-2.0f * kSqrt2OverPi) * fmadd(set1(kGeluCubic) * x, x * x, x)));
          else
            y = set1(0.5f) * x * (set1(1.0f) + erf(x * set1(kInvSqrt2)));
          st(out + i0 + i, y, w);
        });
      },
      kElemGrain);
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, Gelu kind) {
  if (reference_kernels()) return ref::gelu_backward(dinp, inp, dout, n, kind);
  prof::Scope scope("gelu_backward");
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        for_vectors(i1 - i0, [&](int64_t i, int64_t w) {
          Vf x = ld(inp + i0 + i, w), d;
          if (kind == Gelu::Tanh) {
            // s = 1 + tanh u = 2 / (1 + e^{-2u}) and 1 - tanh^2 u = s (2 - s), both without cancellation.
            Vf s = set1(2.0f) / (set1(1.0f) + exp(set1(-2.0f * kSqrt2OverPi) * fmadd(set1(kGeluCubic) * x, x * x, x)));
            Vf du = set1(kSqrt2OverPi) * fmadd(set1(3.0f * kGeluCubic) * x, x, set1(1.0f));
            d = set1(0.5f) * s + set1(0.5f) * x * s * (set1(2.0f) - s) * du;
          } else {
            d = set1(0.5f) * (set1(1.0f) + erf(x * set1(kInvSqrt2))) +
                x * set1(kInvSqrt2Pi) * exp(set1(-0.5f) * x * x);
          }
          st(dinp + i0 + i, fmadd(d, ld(dout + i0 + i, w), ld(dinp + i0 + i, w)), w);
        });
      },
      kElemGrain);
}

void softmax_forward(float* out, const float* inp, int64_t N, int64_t C) {
  if (reference_kernels()) return ref::softmax_forward(out, inp, N, C);
  prof::Scope scope("softmax_forward");
  parallel_for(
      N,
      [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          const float* x = inp + n * C;  // (C)
          float* y = out + n * C;        // (C)
          const Vf mv = set1(row_max(x, C));
          Vf sum = zero();
          for_vectors(C, [&](int64_t c, int64_t w) {
            Vf e = exp(ld(x + c, w) - mv);
            st(y + c, e, w);
            if (w < kLanes) e = loadn(y + c, w);  // zero the lanes past the row
            sum += e;
          });
          const Vf inv = set1(1.0f / reduce_add(sum));
          for_vectors(C, [&](int64_t c, int64_t w) { st(y + c, ld(y + c, w) * inv, w); });
        }
      },
      row_grain(C));
}

void softmax_backward(float* dinp, const float* out, const float* dout, int64_t N, int64_t C) {
  if (reference_kernels()) return ref::softmax_backward(dinp, out, dout, N, C);
  prof::Scope scope("softmax_backward");
  parallel_for(
      N,
      [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          const float* y = out + n * C;   // (C)
          const float* g = dout + n * C;  // (C)
          float* dx = dinp + n * C;       // (C)
          Vf acc = zero();
          for_vectors(C, [&](int64_t c, int64_t w) { acc = fmadd(ld(y + c, w), ld(g + c, w), acc); });
          const Vf dot = set1(reduce_add(acc));
          for_vectors(C, [&](int64_t c, int64_t w) {
            st(dx + c, fmadd(ld(y + c, w), ld(g + c, w) - dot, ld(dx + c, w)), w);
          });
        }
      },
      row_grain(C));
}

// Targets are checked before the parallel part: an exception must not leave a pool worker.
static void check_targets(const int32_t* targets, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n)
    MNEMO_CHECK(targets[n] < V, "crossentropy: target ", targets[n], " out of range [0, ", V, ")");
}

void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  if (reference_kernels()) return ref::crossentropy_forward(losses, logits, targets, N, V);
  prof::Scope scope("crossentropy_forward");
  check_targets(targets, N, V);
  parallel_for(
      N,
      [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          if (targets[n] < 0) {
            losses[n] = 0.0f;
            continue;
          }
          const float* x = logits + n * V;  // (V)
          const float m = row_max(x, V);
          losses[n] = std::log(row_sum_exp(x, V, m)) + m - x[targets[n]];
        }
      },
      row_grain(V));
}

void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets, const float* dlosses,
                           int64_t N, int64_t V) {
  if (reference_kernels()) return ref::crossentropy_backward(dlogits, logits, targets, dlosses, N, V);
  prof::Scope scope("crossentropy_backward");
  check_targets(targets, N, V);
  parallel_for(
      N,
      [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          if (targets[n] < 0) continue;
          const float* x = logits + n * V;  // (V)
          float* d = dlogits + n * V;       // (V)
          const float m = row_max(x, V);
          const Vf mv = set1(m), scale = set1(dlosses[n] / row_sum_exp(x, V, m));
          // d += softmax * dloss, fused: the probabilities are never stored.
          for_vectors(V, [&](int64_t c, int64_t w) { st(d + c, fmadd(exp(ld(x + c, w) - mv), scale, ld(d + c, w)), w); });
          d[targets[n]] -= dlosses[n];
        }
      },
      row_grain(V));
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWConfig& cfg,
                  int64_t step) {
  if (reference_kernels()) return ref::adamw_update(param, grad, m, v, n, cfg, step);
  prof::Scope scope("adamw_update");
  MNEMO_CHECK(step >= 1, "adamw: step is 1-based, got ", step);
  const float c1 = 1.0f - std::pow(cfg.beta1, float(step));  // bias corrections, as the reference
  const float c2 = 1.0f - std::pow(cfg.beta2, float(step));
  const Vf b1 = set1(cfg.beta1), b2 = set1(cfg.beta2), ob1 = set1(1.0f - cfg.beta1), ob2 = set1(1.0f - cfg.beta2);
  const Vf ic1 = set1(1.0f / c1), ic2 = set1(1.0f / c2), lr = set1(cfg.lr), eps = set1(cfg.eps),
           wd = set1(cfg.weight_decay);
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        for_vectors(i1 - i0, [&](int64_t i, int64_t w) {
          const int64_t o = i0 + i;
          Vf g = ld(grad + o, w), p = ld(param + o, w);
          Vf mm = fmadd(b1, ld(m + o, w), ob1 * g);
          Vf vv = fmadd(b2, ld(v + o, w), ob2 * g * g);
          st(m + o, mm, w);
          st(v + o, vv, w);
          Vf upd = (mm * ic1) / (sqrt(vv * ic2) + eps) + wd * p;
          st(param + o, p - lr * upd, w);
        });
      },
      kElemGrain);
}

namespace {
// x is cut into blocks of kSquaresBlock floats, each summed in float vectors (at most 64 squares a lane: about six
// digits kept) and widened. A block whose float sum overflows (or is NaN) is redone in double, so a huge but finite
// gradient keeps a finite norm as in the reference. The blocks form kSquaresParts runs fixed by n; each run adds
// its blocks in order into its own double and the runs join in order.
constexpr int64_t kSquaresBlock = 256, kSquaresParts = 64;

double block_sum_squares(const float* x, int64_t n) {
  Vf a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
  int64_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const Vf u0 = load(x + i), u1 = load(x + i + kLanes), u2 = load(x + i + 2 * kLanes), u3 = load(x + i + 3 * kLanes);
    a0 = fmadd(u0, u0, a0), a1 = fmadd(u1, u1, a1), a2 = fmadd(u2, u2, a2), a3 = fmadd(u3, u3, a3);
  }
  for (; i < n; i += kLanes) {
    const Vf u = ld(x + i, std::min(kLanes, n - i));
    a0 = fmadd(u, u, a0);
  }
  const float s = reduce_add((a0 + a1) + (a2 + a3));
  return std::isfinite(s) ? double(s) : ref::sum_squares(x, n);
}
}  // namespace

double sum_squares(const float* x, int64_t n) {
  if (reference_kernels()) return ref::sum_squares(x, n);
  prof::Scope scope("sum_squares");
  const int64_t blocks = (n + kSquaresBlock - 1) / kSquaresBlock, parts = std::min(kSquaresParts, blocks);
  double part[kSquaresParts] = {};
  parallel_for(
      parts,
      [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t b = blocks * p / parts; b < blocks * (p + 1) / parts; ++b)
            part[p] += block_sum_squares(x + b * kSquaresBlock, std::min(kSquaresBlock, n - b * kSquaresBlock));
      },
      n < 2 * kElemGrain ? parts : 1);  // small x: no pool wake-up
  double s = 0;
  for (int64_t p = 0; p < parts; ++p) s += part[p];
  return s;
}

}  // namespace mnemo
