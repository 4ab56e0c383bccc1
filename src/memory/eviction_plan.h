#pragma once
// What an eviction policy decides for one layer of a KV cache: which entries stay. A plan is plain data — the
// policy makes it (EvictionPolicy::plan), the cache carries it out in one place (BoundedKvCache::apply), and the
// policy then re-indexes its own per-entry state the same way (EvictionPolicy::commit).
//
// Entries are indexed in the order the cache holds them, which is the order they arrived; a plan keeps that order
// (kept indices ascend), so "the first S", "the most recent W" are index ranges and positions stay sorted.
#include <cstdint>
#include <cstring>
#include <vector>

namespace mnemo {

// The shape of the cache a policy serves.
struct CacheShape {
  int n_layer = 0;
  int64_t H = 0;    // query heads
  int64_t Hkv = 0;  // key/value heads; H % Hkv == 0 and query head h reads kv head h / (H / Hkv) (GQA)
};

struct EvictionPlan {
  int64_t n_before = 0;       // entries held per kv head before the plan
  int64_t n_keep = 0;         // entries held per kv head after it (every kv head keeps the same count)
  bool per_head = false;      // false: one row of indices for every kv head (per-layer selection, e.g. TOVA)
  std::vector<int64_t> keep;  // (per_head ? Hkv : 1, n_keep) kept indices, strictly ascending per row, < n_before

  // The kept indices of kv head h (n_keep).
  const int64_t* row(int64_t h) const { return keep.data() + (per_head ? h * n_keep : 0); }
  int64_t* row(int64_t h) { return keep.data() + (per_head ? h * n_keep : 0); }
  // Size the plan for n_before entries -> n_keep, with Hkv rows if per_head.
  void resize(int64_t before, int64_t kept, bool heads, int64_t Hkv) {
    n_before = before, n_keep = kept, per_head = heads;
    keep.resize(size_t((heads ? Hkv : 1) * kept));
  }
};

// Always-on check (file:line) that `plan` is well formed for a cache with Hkv kv heads.
void check_plan(const EvictionPlan& plan, int64_t Hkv);

// Compact one row of per-entry data in place: data is (n_before, width); afterwards its first n_keep rows are the
// kept ones, in order. Safe in place because kept indices ascend (keep[i] >= i).
template <typename T>
void compact_entries(const int64_t* keep, int64_t n_keep, T* data, int64_t width) {
  for (int64_t i = 0; i < n_keep; ++i)
    if (keep[i] != i) std::memmove(data + i * width, data + keep[i] * width, size_t(width) * sizeof(T));
}

}  // namespace mnemo
