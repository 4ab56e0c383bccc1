#pragma once
// Attention sinks (StreamingLLM, Xiao et al. 2023): the first S entries of a sequence stay forever — the model
// parks attention on them — and an owned policy chooses among the rest with the remaining budget - S. With a
// window inside, this is StreamingLLM's cache (S = 4 as published). The composite owns its inner policy (it is the
// only one that talks to it), and hands it the attention columns and plan rows of the non-sink entries only.
#include <memory>

#include "memory/eviction_policy.h"

namespace mnemo {

class SinkPolicy : public EvictionPolicy {
 public:
  SinkPolicy(int64_t n_sink, std::unique_ptr<EvictionPolicy> rest);
  std::string name() const override;
  bool uses_attention() const override { return rest_->uses_attention(); }
  bool uses_every_row() const override { return rest_->uses_every_row(); }
  int64_t min_budget() const override { return n_sink_ + rest_->min_budget(); }
  void reset(const CacheShape& shape) override;
  void observe(int layer, const AttentionRows& rows) override;
  void plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) override;
  void commit(int layer, const EvictionPlan& plan) override;
  int64_t n_sink() const { return n_sink_; }

 private:
  int64_t n_sink_;
  std::unique_ptr<EvictionPolicy> rest_;
  int64_t Hkv_ = 0;
  EvictionPlan inner_;  // scratch: the inner policy's plan over entries [n_sink, n)
};

}  // namespace mnemo
