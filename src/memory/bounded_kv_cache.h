#pragma once
// A KV cache capped at `budget` entries per layer, with an eviction policy deciding what stays — the decoder's
// side of memory/eviction_policy.h. It implements the model layer's KvCache interface, so a decoder runs on it
// unchanged: the decoder appends a step's keys/values, runs attention over the held entries, and hands the
// attention to observe(); there the cache lets the policy see it, asks for a plan if the layer is over budget,
// and applies it — the one place the cache is mutated besides append (plan, then apply).
//
// Memory is bounded, not masked: storage is allocated once for budget + max_new + slack entries per layer and kv
// head (max_new = the most tokens one forward call appends; slack = max(64, budget/4) when the cache will evict);
// evicted rows are overwritten by compaction, so a layer's keys stay one contiguous (n, hs) block per kv head, in
// arrival order, and attention costs O(budget) per token. Compaction moves the fewer rows: the kept entries slide
// toward the end of the held range when that is cheaper (a window evicting its oldest entry moves nothing — the
// range's start advances into the slack) or toward its start otherwise; when the range reaches the end of the
// storage it is moved back to the front once (amortized over `slack` steps).
//
// Per-head selection (H2O) gives each kv head its own entries: keys/values are per head; positions(layer) is kv
// head 0's (every head holds the same count and the newest entries are last in every head, which is all a causal
// mask needs); origins(layer, h) gives each head's own.
//
// Re-positioning (StreamingLLM's rolling positions, for streams longer than the trained context): with a RopeSpec,
// entry i of a layer always sits at rotary position i — the caller gives each new token the position
// next_position() (= entries held), and when compaction moves an entry from index j to i < j its key is rotated
// back by j - i (keys are cached after rotation; RoPE rotations compose). Without it positions are absolute.
#include <memory>
#include <vector>

#include "memory/eviction_policy.h"
#include "model/attention.h"
#include "model/kv_cache.h"

namespace mnemo {

// Rotary embedding of the model whose keys the cache holds (Hugging Face "rotate_half" layout).
struct RopeSpec {
  float theta = 10000.0f, linear_scale = 1.0f;
};

class BoundedKvCache : public KvCache {
 public:
  // budgets (n_layer): entries kept per layer between steps (>= policy->min_budget(); uniform when re-positioning).
  // max_new: most tokens one forward call appends per layer before observe(). max_tokens: longest sequence the
  // cache will see (0 = unbounded), so a budget above it allocates only what can be used. rope: re-position keys
  // (see above); null = absolute positions.
  BoundedKvCache(const CacheShape& shape, int64_t hs, std::vector<int64_t> budgets,
                 std::unique_ptr<EvictionPolicy> policy, int64_t max_new = 1, int64_t max_tokens = 0,
                 const RopeSpec* rope = nullptr);

  void reset() override;
  void append(int layer, int64_t pos, const float* k, const float* v) override;
  int64_t size(int layer) const override { return size_[size_t(layer)]; }
  const float* keys(int layer, int64_t h) const override { return k_.data() + first(layer, h) * hs_; }
  const float* values(int layer, int64_t h) const override { return v_.data() + first(layer, h) * hs_; }
  const int64_t* positions(int layer) const override { return pos_.data() + first(layer, 0); }
  // The decoder's attention over the held entries: probs (H, size) of the newest query (see observe_rows).
  void observe(int layer, const float* probs, int64_t H) override;

  // All query rows of a multi-token step (a prompt reduced in one step: H2O adds every row, TOVA reads the last),
  // rows (H, Tq, size). Use rows_observer() as the forward call's observer: while it is installed the single-row
  // observe() above is ignored, so each step is seen once.
  void observe_rows(int layer, const AttentionRows& rows);
  LayerObserver rows_observer();
  void use_rows_observer(bool on) { rows_observer_on_ = on; }

  // Stop (or resume) evicting: while frozen the cache only grows, up to its capacity, and the policy sees nothing.
  // (A prompt's context compressed once, then the question and answer kept whole, as NVIDIA kvpress does.)
  void freeze(bool on) { frozen_ = on; }

  // The position the next token must be given: entries held if re-positioning, else tokens seen so far.
  int64_t next_position() const;
  // Absolute positions (token index in the sequence) of kv head h's entries in `layer` (size).
  const int64_t* origins(int layer, int64_t h) const { return org_.data() + first(layer, h); }
  const EvictionPolicy& policy() const { return *policy_; }
  int64_t budget(int layer) const { return budgets_[size_t(layer)]; }
  // Entries allocated per layer and kv head.
  int64_t capacity() const { return cap_; }
  // Bytes allocated for keys, values and positions (fixed at construction).
  size_t bytes() const;
  // Entries evicted so far in `layer` (per kv head).
  int64_t evicted(int layer) const { return evicted_[size_t(layer)]; }

 private:
  int64_t block(int layer, int64_t h) const { return (int64_t(layer) * shape_.Hkv + h) * cap_; }
  // Row of the first held entry of (layer, h).
  int64_t first(int layer, int64_t h) const { return block(layer, h) + start_[size_t(layer * shape_.Hkv + h)]; }
  // Move rows [from, from + count) of (layer, h)'s storage to [to, to + count) (k, v, positions, origins).
  void move_rows(int64_t b, int64_t from, int64_t to, int64_t count);
  void apply(int layer, const EvictionPlan& plan);

  CacheShape shape_;
  int64_t hs_, cap_, max_new_;
  std::vector<int64_t> budgets_;        // (L)
  std::unique_ptr<EvictionPolicy> policy_;
  bool reposition_ = false;
  std::vector<float> inv_freq_;         // (hs/2) when re-positioning
  std::vector<float> k_, v_;            // (L, Hkv, cap, hs) each
  std::vector<int64_t> pos_, org_;      // (L, Hkv, cap): rotary positions, absolute positions
  std::vector<int64_t> size_, seen_, evicted_;  // (L)
  std::vector<int64_t> pending_;        // (L) entries appended since the last observe
  std::vector<int64_t> start_;          // (L * Hkv) first held row within the head's storage
  EvictionPlan plan_;                   // scratch
  std::vector<float> cos_, sin_, tmp_;  // scratch for re-rotation (cap, hs/2), (cap, hs/2), (cap, hs)
  std::vector<int64_t> shift_;          // scratch (cap)
  bool rows_observer_on_ = false;
  bool frozen_ = false;
};

}  // namespace mnemo
