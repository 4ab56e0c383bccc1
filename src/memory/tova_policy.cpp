#include "memory/tova_policy.h"

#include <algorithm>

#include "base/error.h"
#include "memory/top_k.h"

namespace mnemo {

void TovaPolicy::reset(const CacheShape& shape) {
  shape_ = shape;
  last_.assign(size_t(shape.n_layer), {});
}

void TovaPolicy::observe(int layer, const AttentionRows& rows) {
  MNEMO_CHECK(layer >= 0 && layer < shape_.n_layer && rows.H == shape_.H && rows.Tq >= 1, "tova observe: layer ",
              layer, " H ", rows.H, " Tq ", rows.Tq);
  // Only the newest query row counts: mean over kv heads of the group means = mean over all H query heads.
  pooled_.assign(size_t(shape_.Hkv * rows.n), 0.0f);
  pool_attention(rows, shape_.Hkv, rows.Tq - 1, pooled_.data());
  std::vector<float>& s = last_[size_t(layer)];
  s.assign(size_t(rows.n), 0.0f);
  const float w = 1.0f / float(shape_.Hkv);
  for (int64_t g = 0; g < shape_.Hkv; ++g)
    for (int64_t j = 0; j < rows.n; ++j) s[size_t(j)] += w * pooled_[size_t(g * rows.n + j)];
}

void TovaPolicy::plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) {
  const std::vector<float>& s = last_[size_t(layer)];
  MNEMO_CHECK(int64_t(s.size()) == n, "tova plan: layer ", layer, " holds ", n, " entries but ", s.size(),
              " were observed (attention must be observed every step)");
  MNEMO_CHECK(budget >= 1 && budget < n, "tova plan: budget ", budget, " of ", n);
  plan.resize(n, budget, false, 1);
  top_k_indices(s.data(), n, budget, plan.keep.data(), order_);
}

void TovaPolicy::commit(int layer, const EvictionPlan& plan) {
  std::vector<float>& s = last_[size_t(layer)];
  compact_entries(plan.row(0), plan.n_keep, s.data(), 1);
  s.resize(size_t(plan.n_keep));
}

}  // namespace mnemo
