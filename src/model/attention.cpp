#include "model/attention.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/thread_pool.h"
#include "tensor/llama_kernels.h"

namespace mnemo {

namespace {
// Below this many (query head x entry) scores a decode step's attention runs on one thread (waking the pool
// costs more than it saves).
constexpr int64_t kParallelScores = 4096;
}  // namespace

void cached_attention(float* out, float* scores, const float* q, KvCache& cache, int layer, int64_t pos, int64_t H,
                      int64_t Hkv, int64_t hs, const LayerObserver* observer) {
  const int64_t N = cache.size(layer);
  MNEMO_CHECK(N > 0 && Hkv > 0 && H % Hkv == 0, "cached_attention: ", N, " entries, H ", H, " Hkv ", Hkv);
  const int64_t G = H / Hkv;  // query heads sharing one kv head
  const float scale = 1.0f / std::sqrt(float(hs));
  float* s = scores;  // (H, N)
  auto score = [&](int64_t j0, int64_t j1) {
    for (int64_t g = 0; g < Hkv; ++g)
      attn_scores(s + g * G * N + j0, N, q + g * G * hs, cache.keys(layer, g) + j0 * hs, j1 - j0, G, hs, scale);
  };
  auto mix = [&](int64_t d0, int64_t d1) {
    for (int64_t g = 0; g < Hkv; ++g)
      attn_mix(out + g * G * hs, hs, s + g * G * N, N, cache.values(layer, g), N, G, hs, d0, d1);
  };
  if (H * N < kParallelScores) {
    score(0, N);
    for (int64_t h = 0; h < H; ++h) attn_softmax(s + h * N, N, N);
    mix(0, hs);
  } else {
    // Three pool wakes a layer: entries split for the scores, heads for the softmax, output dimensions for the
    // mix. Splits fall on multiples of 16 so each row's vector alignment is the same for any thread count.
    parallel_run([&](int ith, int nth) {
      int64_t per = (N + nth - 1) / nth;
      per = (per + 15) / 16 * 16;
      score(std::min(N, ith * per), std::min(N, (ith + 1) * per));
    });
    parallel_for(H, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) attn_softmax(s + h * N, N, N);
    });
    parallel_run([&](int ith, int nth) {
      if (hs % 16) {  // odd head sizes: one worker
        if (ith == 0) mix(0, hs);
        return;
      }
      const int64_t vecs = hs / 16, per = (vecs + nth - 1) / nth;
      const int64_t d0 = std::min(hs, ith * per * 16), d1 = std::min(hs, (ith + 1) * per * 16);
      if (d1 > d0) mix(d0, d1);
    });
  }
  cache.observe(layer, s, H);
  if (observer) {
    AttentionShape shape;
    shape.B = 1, shape.Tq = 1, shape.Tk = N, shape.H = H, shape.Hkv = Hkv, shape.hs = hs, shape.q_offset = pos;
    shape.causal = true;
    (*observer)(layer, s, shape);
  }
}

}  // namespace mnemo
