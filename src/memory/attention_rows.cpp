#include "memory/attention_rows.h"

#include "base/error.h"

namespace mnemo {

void pool_attention(const AttentionRows& rows, int64_t Hkv, int64_t t0, float* out) {
  MNEMO_CHECK(Hkv > 0 && rows.H % Hkv == 0 && t0 >= 0 && t0 <= rows.Tq && rows.stride >= rows.n,
              "pool_attention: H ", rows.H, " Hkv ", Hkv, " t0 ", t0, " Tq ", rows.Tq);
  const int64_t group = rows.H / Hkv;
  const float w = 1.0f / float(group);  // mean over the group's query heads
  for (int64_t g = 0; g < Hkv; ++g) {
    float* o = out + g * rows.n;  // (n)
    for (int64_t h = g * group; h < (g + 1) * group; ++h)
      for (int64_t t = t0; t < rows.Tq; ++t) {
        const float* p = rows.at(h, t);
        for (int64_t j = 0; j < rows.n; ++j) o[j] += w * p[j];
      }
  }
}

}  // namespace mnemo
