#pragma once
// A KV cache capped at `budget` entries per layer, with an eviction policy deciding what stays — the decoder's
// side of memory/eviction_policy.h. It implements the model layer's KvCache interface, so a decoder runs on it
// unchanged: the decoder appends a step's keys/values, runs attention over the held entries, and hands the
// attention to observe(); there the cache lets the policy see it, asks for a plan if the layer is over budget,
// and applies it — the one place the cache is mutated besides append (plan, then apply).
//
// Memory is bounded, not masked: storage is allocated once for budget + max_new entries per layer and kv head
// (max_new = the most tokens one forward call appends); rows [0, size) of a kv head hold its entries in ANY order
// (attention over one new token does not care about order, RoPE being applied before caching), and a new entry
// goes to row size. Evicting therefore moves only rows that must fill a hole: an entry evicted from the middle
// takes the last row's entry (one row moved, whatever the budget), a window evicting its oldest entry moves one
// row too. Arrival order lives apart in a small index per kv head (order(): entry i -> row), which is what
// policies see: observe() hands them the attention in arrival order (AttentionRows::slots), and their plans index
// entries in arrival order as before. Attention costs O(budget) per token.
//
// Per-head selection (H2O) gives each kv head its own entries and its own row order: keys/values/positions are
// per head; origins(layer, h) gives each row's absolute position.
//
// Re-positioning (StreamingLLM's rolling positions, for streams longer than the trained context): with a RopeSpec,
// the entry i-th in arrival order always sits at rotary position i — the caller gives each new token the position
// next_position() (= entries held), and when an eviction moves an entry from arrival index j to i < j its key is
// rotated back by j - i (keys are cached after rotation; RoPE rotations compose). Without it positions are
// absolute.
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
  BoundedKvCache(const BoundedKvCache&) = delete;  // rows_observer_ points at this object
  BoundedKvCache& operator=(const BoundedKvCache&) = delete;

  void reset() override;
  void append(int layer, int64_t pos, const float* k, const float* v) override;
  int64_t size(int layer) const override { return size_[size_t(layer)]; }
  const float* keys(int layer, int64_t h) const override { return k_.data() + block(layer, h) * hs_; }
  const float* values(int layer, int64_t h) const override { return v_.data() + block(layer, h) * hs_; }
  const int64_t* positions(int layer, int64_t h) const override { return pos_.data() + block(layer, h); }
  // The decoder's attention over the held entries: probs (H, size) of the newest query (see observe_rows).
  void observe(int layer, const float* probs, int64_t H) override;

  // All query rows of a multi-token step (a prompt reduced in one step: H2O adds every row), rows (H, Tq, size).
  void observe_rows(int layer, const AttentionRows& rows);
  // The observer to give the next forward call: for a multi-token call (all_rows) whose every row the policy reads
  // (H2O), one that shows it all rows through observe_rows() — the single-row observe() is then ignored, so the
  // step is seen once. Otherwise null: the newest row, which observe() gets anyway, is all the policy reads
  // (TOVA, window, sinks), and the decoder need not keep every head's probabilities.
  const LayerObserver* observer_for(bool all_rows);

  // Stop (or resume) evicting: while frozen the cache only grows, up to its capacity, and the policy sees nothing.
  // (A prompt's context compressed once, then the question and answer kept whole, as NVIDIA kvpress does.)
  void freeze(bool on) { frozen_ = on; }

  // The position the next token must be given: entries held if re-positioning, else tokens seen so far.
  int64_t next_position() const;
  // Absolute positions (token index in the sequence) of kv head h's rows in `layer` (size).
  const int64_t* origins(int layer, int64_t h) const { return org_.data() + block(layer, h); }
  // kv head h's rows in `layer` in arrival order (size): entry i (the i-th oldest held) is row order(...)[i].
  const int64_t* order(int layer, int64_t h) const { return slot_.data() + block(layer, h); }
  const EvictionPolicy& policy() const { return *policy_; }
  int64_t budget(int layer) const { return budgets_[size_t(layer)]; }
  // Entries allocated per layer and kv head.
  int64_t capacity() const { return cap_; }
  // Bytes allocated for keys, values and positions (fixed at construction).
  size_t bytes() const;
  // Entries evicted so far in `layer` (per kv head).
  int64_t evicted(int layer) const { return evicted_[size_t(layer)]; }

 private:
  // First row of (layer, h)'s storage.
  int64_t block(int layer, int64_t h) const { return (int64_t(layer) * shape_.Hkv + h) * cap_; }
  // Move row `from` of storage block b to row `to` (k, v, positions, origins).
  void move_row(int64_t b, int64_t from, int64_t to);
  void apply(int layer, const EvictionPlan& plan);
  // Re-positioning: rotate kv head h's kept entries to their new arrival index after `plan`.
  void reposition(int layer, int64_t h, const EvictionPlan& plan);

  CacheShape shape_;
  int64_t hs_, cap_, max_new_;
  std::vector<int64_t> budgets_;        // (L)
  std::unique_ptr<EvictionPolicy> policy_;
  bool reposition_ = false;
  std::vector<float> k_, v_;            // (L, Hkv, cap, hs) each
  std::vector<int64_t> pos_, org_;      // (L, Hkv, cap) per row: rotary position, absolute position
  std::vector<int64_t> slot_;           // (L, Hkv, cap): arrival order -> row, first `size` valid
  std::vector<int64_t> size_, seen_, evicted_;  // (L)
  std::vector<int64_t> pending_;        // (L) entries appended since the last observe
  EvictionPlan plan_;                   // scratch
  std::vector<float> cos_, sin_;        // (max_new, hs/2) each when re-positioning: rotation back by 1..max_new
  std::vector<int64_t> ev_, ev_row_;    // scratch (cap) each: evicted arrival indices and their rows
  std::vector<char> ev_flag_;                  // scratch (cap): rows >= n_keep freed by the plan
  LayerObserver rows_observer_;         // observe_rows() on a forward call's (H, Tq, size) probabilities
  bool rows_observer_on_ = false;
  bool frozen_ = false;
};

}  // namespace mnemo
