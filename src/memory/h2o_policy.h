#pragma once
// H2O, "Heavy-Hitter Oracle" (Zhang et al. 2023), per kv head: keep the most recent entries plus the "heavy
// hitters", the older entries with the largest attention accumulated over every query since they arrived.
// As published (FMInference/H2O, utils_real_drop): the budget is split between a recent window and heavy hitters
// (heavy_ratio = recent_ratio, i.e. half each: recent = budget - floor(budget * (1 - recent_share)), the odd one to
// the window); scores add the attention of every query row of every step (a prompt's rows all count); heavy
// hitters are chosen only among entries outside the recent window; evicted entries' scores are forgotten.
// GQA: a kv head's score is the mean over its group of query heads (memory/attention_rows.h).
// Ties: the more recent entry stays.
#include <vector>

#include "memory/eviction_policy.h"

namespace mnemo {

class H2OPolicy : public EvictionPolicy {
 public:
  explicit H2OPolicy(double recent_share = 0.5);
  std::string name() const override;
  bool uses_attention() const override { return true; }
  bool uses_every_row() const override { return true; }
  void reset(const CacheShape& shape) override;
  void observe(int layer, const AttentionRows& rows) override;
  void plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) override;
  void commit(int layer, const EvictionPlan& plan) override;
  // Accumulated score of entry j of kv head h in layer (for tests and retention analysis).
  float score(int layer, int64_t h, int64_t j) const;
  // How a budget splits: entries kept for recency (the rest are heavy hitters).
  int64_t recent_count(int64_t budget) const;

 private:
  double recent_share_;
  CacheShape shape_;
  std::vector<std::vector<float>> score_;  // (L * Hkv) of (n) accumulated attention per entry
  std::vector<float> pooled_;              // scratch (Hkv, n)
  std::vector<int64_t> order_;             // scratch for selection
};

}  // namespace mnemo
