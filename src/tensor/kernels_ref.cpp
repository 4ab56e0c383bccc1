// Reference kernels (mnemo::ref): the plainest correct loops, single-threaded, no SIMD. They define what every fast
// kernel must compute; tests hold the fast ones to these and check these against finite differences.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "tensor/kernels.h"

namespace mnemo::ref {

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;  // 1/sqrt(2*pi)
}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        float a = trans_a ? A[k * lda + i] : A[i * lda + k];  // op(A) (M,K)
        float b = trans_b ? B[j * ldb + k] : B[k * ldb + j];  // op(B) (K,N)
        acc += a * b;
      }
      float* c = &C[i * ldc + j];
      // beta == 0 means C is not read (it may hold garbage), as in BLAS.
      *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
    }
  }
}

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t C,
                    int64_t OC) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    for (int64_t o = 0; o < OC; ++o) {
      const float* w = weight + o * C;  // (C)
      float acc = bias ? bias[o] : 0.0f;
      for (int64_t c = 0; c < C; ++c) acc += x[c] * w[c];
      out[n * OC + o] = acc;
    }
  }
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t C, int64_t OC) {
  if (dinp) {  // dinp (N,C) += dout (N,OC) @ weight (OC,C)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < OC; ++o) {
        float d = dout[n * OC + o];
        for (int64_t c = 0; c < C; ++c) dinp[n * C + c] += d * weight[o * C + c];
      }
  }
  if (dweight) {  // dweight (OC,C) += dout^T (OC,N) @ inp (N,C)
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t n = 0; n < N; ++n) {
        float d = dout[n * OC + o];
        for (int64_t c = 0; c < C; ++c) dweight[o * C + c] += d * inp[n * C + c];
      }
  }
  if (dbias) {  // dbias (OC) += sum over rows of dout
    for (int64_t o = 0; o < OC; ++o) {
      float acc = 0.0f;
      for (int64_t n = 0; n < N; ++n) acc += dout[n * OC + o];
      dbias[o] += acc;
    }
  }
}

void matvec(float* y, const float* W, const float* x, const float* bias, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float acc = 0.0f;
    for (int64_t c = 0; c < cols; ++c) acc += W[r * cols + c] * x[c];
    y[r] = bias ? acc + bias[r] : acc;
  }
}

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = table[int64_t(ids[n]) * C + c];
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) dtable[int64_t(ids[n]) * C + c] += dout[n * C + c];
}

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int64_t N, int64_t C, float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float m = 0.0f;
    for (int64_t c = 0; c < C; ++c) m += x[c];
    m /= float(C);
    float var = 0.0f;  // biased variance, as PyTorch's LayerNorm
    for (int64_t c = 0; c < C; ++c) var += (x[c] - m) * (x[c] - m);
    var /= float(C);
    float s = 1.0f / std::sqrt(var + eps);
    for (int64_t c = 0; c < C; ++c) out[n * C + c] = (x[c] - m) * s * weight[c] + bias[c];
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = s;
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* mean, const float* rstd, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;   // (C)
    const float* g = dout + n * C;  // (C)
    float m = mean[n], s = rstd[n];
    // dinp = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout * weight
    float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      float norm = (x[c] - m) * s;
      float dnorm = g[c] * weight[c];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= float(C);
    dnorm_norm_mean /= float(C);
    for (int64_t c = 0; c < C; ++c) {
      float norm = (x[c] - m) * s;
      float dnorm = g[c] * weight[c];
      if (dbias) dbias[c] += g[c];
      if (dweight) dweight[c] += norm * g[c];
      if (dinp) dinp[n * C + c] += s * (dnorm - dnorm_mean - norm * dnorm_norm_mean);
    }
  }
}

void gelu_forward(float* out, const float* inp, int64_t n, Gelu kind) {
  for (int64_t i = 0; i < n; ++i) {
    float x = inp[i];
    if (kind == Gelu::Tanh)
      out[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
    else
      out[i] = 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
  }
}

void gelu_backward(float* dinp, const float* inp, const float* dout, int64_t n, Gelu kind) {
  for (int64_t i = 0; i < n; ++i) {
    float x = inp[i], d;
    if (kind == Gelu::Tanh) {
      float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
      float t = std::tanh(u);
      float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
      d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
    } else {
      d = 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
    }
    dinp[i] += d * dout[i];
  }
}

void softmax_forward(float* out, const float* inp, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;  // (C)
    float* y = out + n * C;        // (C)
    float mx = -INFINITY;
    for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x[c]);
    float sum = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      y[c] = std::exp(x[c] - mx);
      sum += y[c];
    }
    for (int64_t c = 0; c < C; ++c) y[c] /= sum;
  }
}

void softmax_backward(float* dinp, const float* out, const float* dout, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const float* y = out + n * C;   // (C)
    const float* g = dout + n * C;  // (C)
    float dot = 0.0f;
    for (int64_t c = 0; c < C; ++c) dot += y[c] * g[c];
    for (int64_t c = 0; c < C; ++c) dinp[n * C + c] += y[c] * (g[c] - dot);
  }
}

namespace {
// Whether query i (of batch b) may see key j.
bool visible(const AttentionShape& s, const uint8_t* key_valid, int64_t b, int64_t i, int64_t j) {
  if (key_valid && !key_valid[b * s.Tk + j]) return false;
  return !s.causal || j <= s.q_offset + i;
}
}  // namespace

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       const uint8_t* key_valid, const AttentionShape& s, float scale,
                       const AttentionObserver* observer) {
  MNEMO_CHECK(s.Hkv > 0 && s.H % s.Hkv == 0, "attention: H=", s.H, " not a multiple of Hkv=", s.Hkv);
  MNEMO_CHECK(probs || !(observer && *observer), "attention: an observer needs the probabilities");
  const int64_t group = s.H / s.Hkv;
  std::vector<float> row(size_t(s.Tk));  // when probs is null
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < s.Tq; ++i) {
        const float* qi = q + ((b * s.Tq + i) * s.H + h) * s.hs;                    // (hs)
        float* p = probs ? probs + ((b * s.H + h) * s.Tq + i) * s.Tk : row.data();  // (Tk)
        float mx = -INFINITY;
        for (int64_t j = 0; j < s.Tk; ++j) {
          if (!visible(s, key_valid, b, i, j)) continue;
          const float* kj = k + ((b * s.Tk + j) * s.Hkv + hk) * s.hs;  // (hs)
          float dot = 0.0f;
          for (int64_t c = 0; c < s.hs; ++c) dot += qi[c] * kj[c];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < s.Tk; ++j) {
          if (visible(s, key_valid, b, i, j)) {
            p[j] = std::exp(p[j] - mx);
            sum += p[j];
          } else {
            p[j] = 0.0f;
          }
        }
        // A row with no visible key keeps all-zero probabilities and so gives zero output.
        float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        for (int64_t j = 0; j < s.Tk; ++j) p[j] *= inv;
        float* o = out + ((b * s.Tq + i) * s.H + h) * s.hs;  // (hs)
        for (int64_t c = 0; c < s.hs; ++c) o[c] = 0.0f;
        for (int64_t j = 0; j < s.Tk; ++j) {
          const float* vj = v + ((b * s.Tk + j) * s.Hkv + hk) * s.hs;  // (hs)
          for (int64_t c = 0; c < s.hs; ++c) o[c] += p[j] * vj[c];
        }
      }
    }
  if (observer && *observer) (*observer)(probs, s);
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs, const float* q,
                        const float* k, const float* v, const AttentionShape& s, float scale) {
  const int64_t group = s.H / s.Hkv;
  std::vector<float> dp(size_t(s.Tk));  // (Tk) d loss / d probs for one query row
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < s.Tq; ++i) {
        const float* qi = q + ((b * s.Tq + i) * s.H + h) * s.hs;     // (hs)
        const float* go = dout + ((b * s.Tq + i) * s.H + h) * s.hs;  // (hs)
        const float* p = probs + ((b * s.H + h) * s.Tq + i) * s.Tk;  // (Tk)
        float dot = 0.0f;  // sum_j p_j * dp_j
        for (int64_t j = 0; j < s.Tk; ++j) {
          const float* vj = v + ((b * s.Tk + j) * s.Hkv + hk) * s.hs;  // (hs)
          float d = 0.0f;
          for (int64_t c = 0; c < s.hs; ++c) d += go[c] * vj[c];
          dp[size_t(j)] = d;
          dot += p[j] * d;
          if (dv) {
            float* dvj = dv + ((b * s.Tk + j) * s.Hkv + hk) * s.hs;
            for (int64_t c = 0; c < s.hs; ++c) dvj[c] += p[j] * go[c];
          }
        }
        for (int64_t j = 0; j < s.Tk; ++j) {
          // Masked keys have p = 0, so their score gradient is 0 as well.
          float ds = p[j] * (dp[size_t(j)] - dot) * scale;
          const float* kj = k + ((b * s.Tk + j) * s.Hkv + hk) * s.hs;
          if (dq) {
            float* dqi = dq + ((b * s.Tq + i) * s.H + h) * s.hs;
            for (int64_t c = 0; c < s.hs; ++c) dqi[c] += ds * kj[c];
          }
          if (dk) {
            float* dkj = dk + ((b * s.Tk + j) * s.Hkv + hk) * s.hs;
            for (int64_t c = 0; c < s.hs; ++c) dkj[c] += ds * qi[c];
          }
        }
      }
    }
}

void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) {
      losses[n] = 0.0f;
      continue;
    }
    MNEMO_CHECK(targets[n] < V, "crossentropy: target ", targets[n], " out of range [0, ", V, ")");
    const float* x = logits + n * V;  // (V)
    float mx = -INFINITY;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, x[j]);
    float sum = 0.0f;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(x[j] - mx);
    losses[n] = std::log(sum) + mx - x[targets[n]];
  }
}

void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets, const float* dlosses,
                           int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    MNEMO_CHECK(targets[n] < V, "crossentropy: target ", targets[n], " out of range [0, ", V, ")");
    const float* x = logits + n * V;  // (V)
    float* d = dlogits + n * V;       // (V)
    float mx = -INFINITY;
    for (int64_t j = 0; j < V; ++j) mx = std::max(mx, x[j]);
    float sum = 0.0f;
    for (int64_t j = 0; j < V; ++j) sum += std::exp(x[j] - mx);
    for (int64_t j = 0; j < V; ++j) {
      float p = std::exp(x[j] - mx) / sum;
      d[j] += (p - (j == targets[n] ? 1.0f : 0.0f)) * dlosses[n];
    }
  }
}

void adamw_update(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWConfig& cfg,
                  int64_t step) {
  MNEMO_CHECK(step >= 1, "adamw: step is 1-based, got ", step);
  const float c1 = 1.0f - std::pow(cfg.beta1, float(step));  // bias corrections
  const float c2 = 1.0f - std::pow(cfg.beta2, float(step));
  for (int64_t i = 0; i < n; ++i) {
    float g = grad[i];
    m[i] = cfg.beta1 * m[i] + (1.0f - cfg.beta1) * g;
    v[i] = cfg.beta2 * v[i] + (1.0f - cfg.beta2) * g * g;
    float mhat = m[i] / c1, vhat = v[i] / c2;
    // Decoupled decay uses the parameter before this step, as torch.optim.AdamW.
    param[i] -= cfg.lr * (mhat / (std::sqrt(vhat) + cfg.eps) + cfg.weight_decay * param[i]);
  }
}

double sum_squares(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return s;
}

}  // namespace mnemo::ref
