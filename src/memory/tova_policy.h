#pragma once
// TOVA, "Token Omission Via Attention" (Oren et al. 2024), per layer: keep the `budget` entries with the highest
// attention from the newest query, averaged over all heads; every kv head keeps the same entries. A prompt is
// reduced in one step with its last token's attention row (schwartz-lab-NLP/TOVA, TOVACache.reduce: topk of
// attn_weights[:, :, -1, :].mean(heads)). Scores do not accumulate: each step's row replaces the last.
// Ties: the more recent entry stays (the reference evicts the first argmin, i.e. the oldest of equals).
#include <vector>

#include "memory/eviction_policy.h"

namespace mnemo {

class TovaPolicy : public EvictionPolicy {
 public:
  std::string name() const override { return "tova"; }
  bool uses_attention() const override { return true; }
  void reset(const CacheShape& shape) override;
  void observe(int layer, const AttentionRows& rows) override;
  void plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) override;
  void commit(int layer, const EvictionPlan& plan) override;
  // The newest query's head-averaged attention to entry j of layer.
  float score(int layer, int64_t j) const { return last_[size_t(layer)][size_t(j)]; }

 private:
  CacheShape shape_;
  std::vector<std::vector<float>> last_;  // (L) of (n) newest row, averaged over H heads
  std::vector<float> pooled_;             // scratch (Hkv, n)
  std::vector<int64_t> order_;            // scratch for selection
};

}  // namespace mnemo
