#include "model/attention.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace mnemo {

void cached_attention(float* out, float* scores, const float* q, KvCache& cache, int layer, int64_t pos, int64_t H,
                      int64_t Hkv, int64_t hs, const LayerObserver* observer) {
  const int64_t n = cache.size(layer);
  MNEMO_CHECK(n > 0 && H % Hkv == 0, "cached_attention: ", n, " entries, H ", H, " Hkv ", Hkv);
  const float scale = 1.0f / std::sqrt(float(hs));
  const int64_t group = H / Hkv;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t kvh = h / group;
    float* s = scores + h * n;  // (n)
    matvec(s, cache.keys(layer, kvh), q + h * hs, nullptr, n, hs);
    // Softmax of the scaled scores, in place (one row of n; cheap next to the matvecs).
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j] * scale);
    float sum = 0.0f;
    for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] * scale - mx));
    for (int64_t j = 0; j < n; ++j) s[j] /= sum;
  }
  for (int64_t h = 0; h < H; ++h) {
    // out_h (1,hs) = p_h (1,n) @ V_h (n,hs)
    gemm(false, false, 1, hs, n, 1.0f, scores + h * n, n, cache.values(layer, h / group), hs, 0.0f, out + h * hs,
         hs);
  }
  cache.observe(layer, scores, H);
  if (observer) {
    AttentionShape s;
    s.B = 1, s.Tq = 1, s.Tk = n, s.H = H, s.Hkv = Hkv, s.hs = hs, s.q_offset = pos, s.causal = true;
    (*observer)(layer, scores, s);
  }
}

}  // namespace mnemo
