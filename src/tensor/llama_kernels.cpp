// Llama kernels: plain reference versions (mnemo::ref) and the fast ones (AVX-512 through tensor/simd.h, rows split
// over the thread pool). Rows are independent, so splitting by row keeps results identical for any thread count;
// the fast versions sum in a different order than the reference ones (vector lanes), hence tests with tolerances.
#include "tensor/llama_kernels.h"

#include <algorithm>
#include <cmath>

#include "base/thread_pool.h"
#include "tensor/kernels.h"
#include "tensor/simd.h"

namespace mnemo {

// ---------------------------------------------------------------- shared (no fast/ref split needed)

void rope_inv_freq(float* inv_freq, int64_t dim, float theta, float scale) {
  // transformers: 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)), all in fp32.
  for (int64_t i = 0; i < dim / 2; ++i) {
    float e = float(2 * i) / float(dim);
    inv_freq[i] = (1.0f / std::pow(theta, e)) / scale;
  }
}

void rope_tables(float* cos, float* sin, const int64_t* pos, const float* inv_freq, int64_t N, int64_t half) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t i = 0; i < half; ++i) {
      float a = float(pos[n]) * inv_freq[i];  // the fp32 product, as transformers forms it
      cos[n * half + i] = float(std::cos(double(a)));
      sin[n * half + i] = float(std::sin(double(a)));
    }
  }
}

// ---------------------------------------------------------------- reference

namespace ref {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float ss = 0.0f;
    for (int64_t c = 0; c < C; ++c) ss += x[c] * x[c];
    float s = 1.0f / std::sqrt(ss / float(C) + eps);
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = x[c] * s * weight[c];
    if (rstd) rstd[n] = s;
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;   // (C)
    const float* g = dout + n * C;  // (C)
    float s = rstd[n];
    // y = x s w, s = (mean(x^2) + eps)^-1/2: dx = s (g w) - x s^3 mean(g w x)
    float dot = 0.0f;
    for (int64_t c = 0; c < C; ++c) dot += g[c] * weight[c] * x[c];
    float k = s * s * s * dot / float(C);
    for (int64_t c = 0; c < C; ++c) {
      if (dweight) dweight[c] += g[c] * x[c] * s;
      if (dinp) dinp[n * C + c] += s * g[c] * weight[c] - x[c] * k;
    }
  }
}

void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t N, int64_t H,
                  int64_t hs) {
  const int64_t half = hs / 2;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t h = 0; h < H; ++h) {
      const float* x = inp + (n * H + h) * hs;  // (hs)
      float* y = out + (n * H + h) * hs;        // (hs)
      for (int64_t i = 0; i < half; ++i) {
        float c = cos[n * half + i], s = sin[n * half + i];
        float a = x[i], b = x[i + half];
        y[i] = a * c - b * s;
        y[i + half] = b * c + a * s;
      }
    }
  }
}

void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t N, int64_t H,
                   int64_t hs) {
  const int64_t half = hs / 2;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t h = 0; h < H; ++h) {
      const float* g = dout + (n * H + h) * hs;  // (hs)
      float* d = dinp + (n * H + h) * hs;        // (hs)
      for (int64_t i = 0; i < half; ++i) {
        float c = cos[n * half + i], s = sin[n * half + i];
        d[i] += g[i] * c + g[i + half] * s;
        d[i + half] += g[i + half] * c - g[i] * s;
      }
    }
  }
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i], sg = 1.0f / (1.0f + std::exp(-g));
    if (dgate) dgate[i] += dout[i] * up[i] * sg * (1.0f + g * (1.0f - sg));  // silu'(g) = s (1 + g (1 - s))
    if (dup) dup[i] += dout[i] * g * sg;
  }
}

void attn_scores(float* s, int64_t ld, const float* q, const float* K, int64_t n, int64_t G, int64_t hs,
                 float scale) {
  for (int64_t g = 0; g < G; ++g)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t d = 0; d < hs; ++d) acc += q[g * hs + d] * K[j * hs + d];
      s[g * ld + j] = acc * scale;
    }
}

void attn_softmax(float* s, int64_t m, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < m; ++j) mx = std::max(mx, s[j]);
  float sum = 0.0f;
  for (int64_t j = 0; j < m; ++j) sum += (s[j] = std::exp(s[j] - mx));
  for (int64_t j = 0; j < m; ++j) s[j] /= sum;
  for (int64_t j = m; j < n; ++j) s[j] = 0.0f;
}

void attn_mix(float* out, int64_t ldo, const float* p, int64_t ld, const float* V, int64_t n, int64_t G, int64_t hs,
              int64_t d0, int64_t d1) {
  for (int64_t g = 0; g < G; ++g)
    for (int64_t d = d0; d < d1; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n; ++j) acc += p[g * ld + j] * V[j * hs + d];
      out[g * ldo + d] = acc;
    }
}

}  // namespace ref

// ---------------------------------------------------------------- fast

namespace {
using simd::kLanes;
using simd::Vf;

// Elementwise work is split in chunks of this many floats (a multiple of every lane count).
constexpr int64_t kChunk = 4096;

inline Vf sigmoid(Vf g) { return simd::set1(1.0f) / (simd::set1(1.0f) + simd::exp(simd::zero() - g)); }
}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                     float eps) {
  if (reference_kernels()) return ref::rmsnorm_forward(out, rstd, inp, weight, N, C, eps);
  parallel_for(
      N,
      [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n) {
          const float* x = inp + n * C;  // (C)
          float* y = out + n * C;        // (C)
          Vf acc = simd::zero();
          int64_t c = 0;
          for (; c + kLanes <= C; c += kLanes) acc = simd::fmadd(simd::load(x + c), simd::load(x + c), acc);
          if (c < C) {
            Vf t = simd::loadn(x + c, C - c);
            acc = simd::fmadd(t, t, acc);
          }
          float s = 1.0f / std::sqrt(simd::reduce_add(acc) / float(C) + eps);
          Vf vs = simd::set1(s);
          for (c = 0; c + kLanes <= C; c += kLanes)
            simd::store(y + c, simd::load(x + c) * vs * simd::load(weight + c));
          if (c < C) simd::storen(y + c, simd::loadn(x + c, C - c) * vs * simd::loadn(weight + c, C - c), C - c);
          if (rstd) rstd[n] = s;
        }
      },
      4);
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C) {
  // dweight sums over rows: kept in the reference (row order fixed) so it is identical for any thread count;
  // backward is not on the decode path.
  if (reference_kernels() || dweight) return ref::rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C);
  parallel_for(
      N,
      [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n) ref::rmsnorm_backward(dinp + n * C, nullptr, dout + n * C, inp + n * C,
                                                              weight, rstd + n, 1, C);
      },
      4);
}

void rope_forward(float* out, const float* inp, const float* cos, const float* sin, int64_t N, int64_t H,
                  int64_t hs) {
  if (reference_kernels()) return ref::rope_forward(out, inp, cos, sin, N, H, hs);
  const int64_t half = hs / 2;
  parallel_for(
      N * H,
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const int64_t n = r / H;
          const float* x = inp + r * hs;  // (hs)
          float* y = out + r * hs;        // (hs)
          const float* cr = cos + n * half;
          const float* sr = sin + n * half;
          for (int64_t i = 0; i < half; i += kLanes) {
            int64_t m = half - i < kLanes ? half - i : kLanes;
            Vf c = simd::loadn(cr + i, m), s = simd::loadn(sr + i, m);
            Vf a = simd::loadn(x + i, m), bb = simd::loadn(x + half + i, m);
            simd::storen(y + i, a * c - bb * s, m);
            simd::storen(y + half + i, bb * c + a * s, m);
          }
        }
      },
      16);
}

void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, int64_t N, int64_t H,
                   int64_t hs) {
  // Not on the decode path; the reference is fast enough for training-sized batches here.
  ref::rope_backward(dinp, dout, cos, sin, N, H, hs);
}

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  if (reference_kernels()) return ref::swiglu_forward(out, gate, up, n);
  parallel_for(
      (n + kChunk - 1) / kChunk,
      [&](int64_t b, int64_t e) {
        int64_t end = e * kChunk < n ? e * kChunk : n;
        for (int64_t i = b * kChunk; i < end; i += kLanes) {
          int64_t m = end - i < kLanes ? end - i : kLanes;
          Vf g = simd::loadn(gate + i, m);
          simd::storen(out + i, g * sigmoid(g) * simd::loadn(up + i, m), m);
        }
      },
      1);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  if (reference_kernels()) return ref::swiglu_backward(dgate, dup, dout, gate, up, n);
  parallel_for(
      (n + kChunk - 1) / kChunk,
      [&](int64_t b, int64_t e) {
        int64_t end = e * kChunk < n ? e * kChunk : n;
        const Vf one = simd::set1(1.0f);
        for (int64_t i = b * kChunk; i < end; i += kLanes) {
          int64_t m = end - i < kLanes ? end - i : kLanes;
          Vf g = simd::loadn(gate + i, m), u = simd::loadn(up + i, m), d = simd::loadn(dout + i, m);
          Vf s = sigmoid(g);
          if (dgate) simd::storen(dgate + i, simd::loadn(dgate + i, m) + d * u * s * (one + g * (one - s)), m);
          if (dup) simd::storen(dup + i, simd::loadn(dup + i, m) + d * g * s, m);
        }
      },
      1);
}

// Scores: each key row is loaded once and dotted with the G query rows of its group (G <= kMaxG in registers).
void attn_scores(float* s, int64_t ld, const float* q, const float* K, int64_t n, int64_t G, int64_t hs,
                 float scale) {
  constexpr int64_t kMaxG = 8;
  if (reference_kernels() || G > kMaxG || hs % kLanes) return ref::attn_scores(s, ld, q, K, n, G, hs, scale);
  for (int64_t j = 0; j < n; ++j) {
    const float* k = K + j * hs;  // (hs)
    Vf acc[kMaxG];
    for (int64_t g = 0; g < G; ++g) acc[g] = simd::zero();
    for (int64_t d = 0; d < hs; d += kLanes) {
      Vf kv = simd::load(k + d);
      for (int64_t g = 0; g < G; ++g) acc[g] = simd::fmadd(simd::load(q + g * hs + d), kv, acc[g]);
    }
    for (int64_t g = 0; g < G; ++g) s[g * ld + j] = simd::reduce_add(acc[g]) * scale;
  }
}

void attn_softmax(float* s, int64_t m, int64_t n) {
  if (reference_kernels()) return ref::attn_softmax(s, m, n);
  Vf vmx = simd::set1(-INFINITY);
  int64_t j = 0;
  for (; j + kLanes <= m; j += kLanes) vmx = simd::max(vmx, simd::load(s + j));
  if (j < m) vmx = simd::max(vmx, simd::loadn(s + j, m - j, -INFINITY));
  const Vf mx = simd::set1(simd::reduce_max(vmx));
  Vf vsum = simd::zero();
  for (j = 0; j + kLanes <= m; j += kLanes) {
    Vf e = simd::exp(simd::load(s + j) - mx);
    simd::store(s + j, e);
    vsum += e;
  }
  if (j < m) {
    Vf e = simd::exp(simd::loadn(s + j, m - j) - mx);
    simd::storen(s + j, e, m - j);
    vsum += simd::loadn(s + j, m - j);  // masked lanes add 0
  }
  const Vf inv = simd::set1(1.0f / simd::reduce_add(vsum));
  for (j = 0; j + kLanes <= m; j += kLanes) simd::store(s + j, simd::load(s + j) * inv);
  if (j < m) simd::storen(s + j, simd::loadn(s + j, m - j) * inv, m - j);
  for (j = m; j < n; ++j) s[j] = 0.0f;
}

// Mix: accumulators for (up to 4 query heads) x (up to 4 vectors of output dims) stay in registers while the
// value rows stream past once.
void attn_mix(float* out, int64_t ldo, const float* p, int64_t ld, const float* V, int64_t n, int64_t G, int64_t hs,
              int64_t d0, int64_t d1) {
  constexpr int64_t kG = 4, kD = 4;
  if (reference_kernels() || (d1 - d0) % kLanes || d0 % kLanes) return ref::attn_mix(out, ldo, p, ld, V, n, G, hs, d0, d1);
  for (int64_t g0 = 0; g0 < G; g0 += kG) {
    const int64_t ng = std::min(kG, G - g0);
    for (int64_t dd = d0; dd < d1; dd += kD * kLanes) {
      const int64_t nd = std::min(kD, (d1 - dd) / kLanes);
      Vf acc[kG][kD];
      for (int64_t g = 0; g < ng; ++g)
        for (int64_t v = 0; v < nd; ++v) acc[g][v] = simd::zero();
      for (int64_t j = 0; j < n; ++j) {
        const float* vr = V + j * hs + dd;
        Vf vv[kD];
        for (int64_t v = 0; v < nd; ++v) vv[v] = simd::load(vr + v * kLanes);
        for (int64_t g = 0; g < ng; ++g) {
          Vf pj = simd::set1(p[(g0 + g) * ld + j]);
          for (int64_t v = 0; v < nd; ++v) acc[g][v] = simd::fmadd(pj, vv[v], acc[g][v]);
        }
      }
      for (int64_t g = 0; g < ng; ++g)
        for (int64_t v = 0; v < nd; ++v) simd::store(out + (g0 + g) * ldo + dd + v * kLanes, acc[g][v]);
    }
  }
}

}  // namespace mnemo
