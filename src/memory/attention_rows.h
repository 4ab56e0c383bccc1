#pragma once
// The attention that the latest query rows paid to the entries one layer of the cache holds — what scoring
// policies (H2O, TOVA) read. A decode step has one query row; a prompt reduced in one step has one row per prompt
// token (causally masked: zeros past each row's own position).
//
// Grouped-query attention: H query heads share Hkv key/value heads (query head h reads kv head h / (H/Hkv)), but
// an entry is stored once per kv head, so a per-kv-head score needs the group's query heads pooled. mnemo pools
// by the MEAN over the group (as NVIDIA kvpress does for GQA models); a per-layer score (TOVA) is then the mean over
// kv heads, which equals the mean over all H query heads because groups are equal in size.
#include <cstdint>

namespace mnemo {

struct AttentionRows {
  const float* probs = nullptr;  // probs(h, t, c) = probs[(h * Tq + t) * stride + c] for storage column c
  int64_t H = 0;                 // query heads
  int64_t Tq = 0;                // query rows; the last one is the newest token
  int64_t n = 0;                 // entries, in cache (arrival) order
  int64_t stride = 0;            // floats between consecutive rows (>= the columns)
  // Where entry j sits among the columns, when the cache stores entries out of arrival order: query head h's
  // entry j is column slots[(h / group) * slot_stride + j] (a kv head's own order). Null: column j.
  const int64_t* slots = nullptr;
  int64_t slot_stride = 0, group = 1;

  const float* at(int64_t h, int64_t t) const { return probs + (h * Tq + t) * stride; }
  // Query head h's columns of entries 0..n-1 (null: the identity).
  const int64_t* columns_of(int64_t h) const { return slots ? slots + (h / group) * slot_stride : nullptr; }
  // Entries [from, from + count) (a view; count may be 0).
  AttentionRows columns(int64_t from, int64_t count) const {
    AttentionRows r = *this;
    if (slots) {
      r.slots = slots + from;
    } else {
      r.probs = probs + from;
    }
    r.n = count;
    return r;
  }
};

// out (Hkv, n) += for each kv head g, the mean over its query heads h of the sum over query rows t in [t0, Tq) of
// probs(h, t, :).
void pool_attention(const AttentionRows& rows, int64_t Hkv, int64_t t0, float* out);

}  // namespace mnemo
