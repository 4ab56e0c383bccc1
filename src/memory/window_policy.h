#pragma once
// Sliding window: keep the `budget` most recent entries of a layer. Stateless; reads no attention.
#include "memory/eviction_policy.h"

namespace mnemo {

class WindowPolicy : public EvictionPolicy {
 public:
  std::string name() const override { return "window"; }
  bool uses_attention() const override { return false; }
  void reset(const CacheShape&) override {}
  void observe(int, const AttentionRows&) override {}
  void plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) override;
  void commit(int, const EvictionPlan&) override {}
};

}  // namespace mnemo
