#pragma once
// An eviction policy decides which entries a KV cache capped at `budget` entries per layer keeps: the decoder as a
// multi-state RNN with `budget` states per layer (Oren et al. 2024, "Transformers are Multi-State RNNs").
//
// The contract, in the order a bounded cache calls it for one layer at one step:
//   1. the cache appends the step's new entries (one per token) — it now holds n entries, the new ones last;
//   2. attention runs over all n entries; observe(layer, rows) shows the policy that attention (only if
//      uses_attention());
//   3. if n > budget: plan(layer, n, budget, plan) chooses the `budget` entries to keep (the new token competes like
//      any other: TOVA and H2O may evict it at once);
//   4. the cache applies the plan to its tensors, then commit(layer, plan) lets the policy re-index its own state.
// So between steps a layer holds at most `budget` entries and a step attends over budget + (new tokens), as in the
// published TOVA and H2O code.
//
// Policy state (accumulated scores…) lives here, apart from the tensors, so each policy is tested on hand-made
// attention rows without a model. One policy object serves one sequence; reset() starts a new one.
#include <cstdint>
#include <memory>
#include <string>

#include "memory/attention_rows.h"
#include "memory/eviction_plan.h"

namespace mnemo {

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  // The name as --memory spells it ("window", "sink:4+tova"…).
  virtual std::string name() const = 0;
  // True if plan() depends on observed attention (the decoder must then hand it over every step).
  virtual bool uses_attention() const = 0;
  // True if observe() reads every query row of a multi-token step (H2O adds them all); otherwise the newest row
  // is all it reads (TOVA), which a decoder hands over without materializing the other rows' probabilities.
  virtual bool uses_every_row() const { return false; }
  // The smallest per-layer budget the policy can honour.
  virtual int64_t min_budget() const { return 1; }
  // Start a new sequence in a cache of this shape: forget all per-entry state.
  virtual void reset(const CacheShape& shape) = 0;
  // `layer` now holds rows.n entries (those that arrived this step last); rows is the latest attention over them.
  virtual void observe(int layer, const AttentionRows& rows) = 0;
  // Choose the `budget` entries of `layer` to keep out of the n it holds (n > budget >= min_budget()). Writes only
  // `plan` (and scratch): the policy's state changes in commit(), after the cache applied the plan.
  virtual void plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) = 0;
  // The cache applied `plan` to `layer`.
  virtual void commit(int layer, const EvictionPlan& plan) = 0;
};

// The policies, by --memory name:
//   window            the most recent `budget` entries (per layer)
//   sink, sink:S      StreamingLLM: the first S entries (S = 4 by default) + the most recent budget - S
//   h2o, h2o:R        H2O, per kv head: the most recent R·budget entries (R = 0.5 as published: half the budget
//                     recent, half heavy hitters) + the rest by attention accumulated since each entry arrived
//   tova              TOVA, per layer: the `budget` entries with the highest attention from the newest query,
//                     averaged over heads
//   sink[:S]+P        the first S entries + policy P (window, h2o[:R], tova) over the rest
// "full" is not a policy: it is the unbounded cache (no eviction), see memory/memory_spec.h.
// Throws Error naming the flag for an unknown or malformed name.
std::unique_ptr<EvictionPolicy> make_policy(const std::string& name);

}  // namespace mnemo
