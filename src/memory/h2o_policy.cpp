#include "memory/h2o_policy.h"

#include <cmath>

#include "base/error.h"
#include "memory/top_k.h"

namespace mnemo {

H2OPolicy::H2OPolicy(double recent_share) : recent_share_(recent_share) {
  MNEMO_CHECK(recent_share > 0.0 && recent_share <= 1.0, "h2o recent share ", recent_share);
}

std::string H2OPolicy::name() const { return recent_share_ == 0.5 ? "h2o" : cat("h2o:", recent_share_); }

int64_t H2OPolicy::recent_count(int64_t budget) const {
  // heavy = floor(budget * heavy share); the window takes the rest (so it is never empty).
  return budget - int64_t(std::floor(double(budget) * (1.0 - recent_share_)));
}

void H2OPolicy::reset(const CacheShape& shape) {
  shape_ = shape;
  score_.assign(size_t(shape.n_layer) * size_t(shape.Hkv), {});
}

float H2OPolicy::score(int layer, int64_t h, int64_t j) const {
  return score_[size_t(layer * shape_.Hkv + h)][size_t(j)];
}

void H2OPolicy::observe(int layer, const AttentionRows& rows) {
  MNEMO_CHECK(layer >= 0 && layer < shape_.n_layer && rows.H == shape_.H && rows.Tq >= 1, "h2o observe: layer ",
              layer, " H ", rows.H, " Tq ", rows.Tq);
  // Every query row of this step adds its attention (pooled over the group) to each entry's running score; the
  // entries that arrived this step start from zero.
  pooled_.assign(size_t(shape_.Hkv * rows.n), 0.0f);
  pool_attention(rows, shape_.Hkv, 0, pooled_.data());
  for (int64_t g = 0; g < shape_.Hkv; ++g) {
    std::vector<float>& s = score_[size_t(layer * shape_.Hkv + g)];
    MNEMO_CHECK(int64_t(s.size()) <= rows.n, "h2o observe: ", rows.n, " entries, fewer than the ", s.size(),
                " scored");
    s.resize(size_t(rows.n), 0.0f);
    for (int64_t j = 0; j < rows.n; ++j) s[size_t(j)] += pooled_[size_t(g * rows.n + j)];
  }
}

void H2OPolicy::plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) {
  MNEMO_CHECK(budget >= 1 && budget < n, "h2o plan: budget ", budget, " of ", n);
  const int64_t recent = recent_count(budget), heavy = budget - recent;
  const int64_t older = n - recent;  // heavy hitters come from [0, older)
  plan.resize(n, budget, true, shape_.Hkv);
  for (int64_t g = 0; g < shape_.Hkv; ++g) {
    const std::vector<float>& s = score_[size_t(layer * shape_.Hkv + g)];
    MNEMO_CHECK(int64_t(s.size()) == n, "h2o plan: layer ", layer, " holds ", n, " entries but ", s.size(),
                " were observed (attention must be observed every step)");
    int64_t* r = plan.row(g);
    top_k_indices(s.data(), older, heavy, r, order_);
    for (int64_t i = 0; i < recent; ++i) r[heavy + i] = older + i;
  }
}

void H2OPolicy::commit(int layer, const EvictionPlan& plan) {
  MNEMO_CHECK(plan.per_head, "h2o commit: a per-layer plan");
  for (int64_t g = 0; g < shape_.Hkv; ++g) {
    std::vector<float>& s = score_[size_t(layer * shape_.Hkv + g)];
    compact_entries(plan.row(g), plan.n_keep, s.data(), 1);
    s.resize(size_t(plan.n_keep));
  }
}

}  // namespace mnemo
