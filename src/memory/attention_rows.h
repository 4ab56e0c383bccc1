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
  const float* probs = nullptr;  // probs(h, t, j) = probs[(h * Tq + t) * stride + j]
  int64_t H = 0;                 // query heads
  int64_t Tq = 0;                // query rows; the last one is the newest token
  int64_t n = 0;                 // entries (columns), in cache order
  int64_t stride = 0;            // floats between consecutive rows (>= n)

  const float* at(int64_t h, int64_t t) const { return probs + (h * Tq + t) * stride; }
  // Columns [from, from + count) of every row (a view; count may be 0).
  AttentionRows columns(int64_t from, int64_t count) const {
    AttentionRows r = *this;
    r.probs = probs + from, r.n = count;
    return r;
  }
};

// out (Hkv, n) += for each kv head g, the mean over its query heads h of the sum over query rows t in [t0, Tq) of
// probs(h, t, :).
void pool_attention(const AttentionRows& rows, int64_t Hkv, int64_t t0, float* out);

}  // namespace mnemo
