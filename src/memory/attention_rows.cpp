#include "memory/attention_rows.h"

#include <algorithm>
#include <vector>

#include "base/error.h"

namespace mnemo {

void pool_attention(const AttentionRows& rows, int64_t Hkv, int64_t t0, float* out) {
  MNEMO_CHECK(Hkv > 0 && rows.H % Hkv == 0 && t0 >= 0 && t0 <= rows.Tq && rows.stride >= rows.n,
              "pool_attention: H ", rows.H, " Hkv ", Hkv, " t0 ", t0, " Tq ", rows.Tq);
  const int64_t group = rows.H / Hkv;
  const float w = 1.0f / float(group);  // mean over the group's query heads
  // The group's rows are summed in storage order (contiguous), then read in entry order: one gather per kv head.
  thread_local std::vector<float> sum;  // (columns) scratch, grown once
  for (int64_t g = 0; g < Hkv; ++g) {
    const int64_t* col = rows.columns_of(g * group);  // the same map for the whole group (one kv head)
    int64_t width = rows.n;  // storage columns to sum: up to the last one an entry sits in
    if (col)
      for (int64_t j = 0; j < rows.n; ++j) width = std::max(width, col[j] + 1);
    sum.assign(size_t(width), 0.0f);
    for (int64_t h = g * group; h < (g + 1) * group; ++h)
      for (int64_t t = t0; t < rows.Tq; ++t) {
        const float* p = rows.at(h, t);
        for (int64_t c = 0; c < width; ++c) sum[size_t(c)] += w * p[c];
      }
    float* o = out + g * rows.n;  // (n)
    if (col) {
      for (int64_t j = 0; j < rows.n; ++j) o[j] += sum[size_t(col[j])];
    } else {
      for (int64_t j = 0; j < rows.n; ++j) o[j] += sum[size_t(j)];
    }
  }
}

}  // namespace mnemo
