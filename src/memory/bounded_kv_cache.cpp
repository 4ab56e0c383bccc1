#include "memory/bounded_kv_cache.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "tensor/llama_kernels.h"

namespace mnemo {

BoundedKvCache::BoundedKvCache(const CacheShape& shape, int64_t hs, std::vector<int64_t> budgets,
                               std::unique_ptr<EvictionPolicy> policy, int64_t max_new, int64_t max_tokens,
                               const RopeSpec* rope)
    : shape_(shape), hs_(hs), max_new_(max_new), budgets_(std::move(budgets)), policy_(std::move(policy)), reposition_(rope) {
  MNEMO_CHECK(shape.n_layer > 0 && shape.Hkv > 0 && shape.H % shape.Hkv == 0 && hs > 0 && max_new >= 1 && policy_,
              "BoundedKvCache shape");
  if (int64_t(budgets_.size()) != shape.n_layer)
    throw Error(cat("--budget: ", budgets_.size(), " values for a model of ", shape.n_layer, " layers"));
  int64_t most = 0;
  for (int64_t b : budgets_) {
    if (b < policy_->min_budget())
      throw Error(cat("--budget ", b, ": ", policy_->name(), " needs at least ", policy_->min_budget(),
                      " entries per layer"));
    most = std::max(most, b);
  }
  if (reposition_) {
    if (std::any_of(budgets_.begin(), budgets_.end(), [&](int64_t b) { return b != budgets_[0]; }))
      throw Error("--budget: re-positioning keys needs the same budget in every layer");
    MNEMO_CHECK(hs % 2 == 0, "rotary head size ", hs);
    inv_freq_.resize(size_t(hs / 2));
    rope_inv_freq(inv_freq_.data(), hs, rope->theta, rope->linear_scale);
  }
  // A layer never holds more than its budget plus one forward call's tokens (nor more than the sequence).
  // plus slack into which the held range slides instead of moving every row at every eviction.
  const int64_t held = max_tokens > 0 ? std::min(most, max_tokens) : most;
  const bool evicts = max_tokens <= 0 || most < max_tokens;
  cap_ = held + max_new + (evicts ? std::max<int64_t>(64, most / 4) : 0);
  const size_t blocks = size_t(shape.n_layer) * size_t(shape.Hkv) * size_t(cap_);
  k_.assign(blocks * size_t(hs), 0.0f);
  v_.assign(blocks * size_t(hs), 0.0f);
  pos_.assign(blocks, 0);
  org_.assign(blocks, 0);
  cos_.resize(size_t(cap_ * hs / 2));
  sin_.resize(size_t(cap_ * hs / 2));
  shift_.resize(size_t(cap_));
  reset();
}

void BoundedKvCache::reset() {
  frozen_ = false;
  size_.assign(size_t(shape_.n_layer), 0);
  seen_.assign(size_t(shape_.n_layer), 0);
  evicted_.assign(size_t(shape_.n_layer), 0);
  pending_.assign(size_t(shape_.n_layer), 0);
  start_.assign(size_t(shape_.n_layer) * size_t(shape_.Hkv), 0);
  policy_->reset(shape_);
}

size_t BoundedKvCache::bytes() const {
  return (k_.size() + v_.size()) * sizeof(float) + (pos_.size() + org_.size()) * sizeof(int64_t);
}

int64_t BoundedKvCache::next_position() const { return reposition_ ? size_[0] : seen_[0]; }

void BoundedKvCache::append(int layer, int64_t pos, const float* k, const float* v) {
  MNEMO_CHECK(layer >= 0 && layer < shape_.n_layer, "layer ", layer);
  int64_t& n = size_[size_t(layer)];
  if (frozen_ && n >= cap_)
    throw Error(cat("bounded KV cache: full at ", cap_, " entries in layer ", layer, " while not evicting"));
  if (!frozen_ && pending_[size_t(layer)] >= max_new_)
    throw Error(cat("bounded KV cache: more tokens appended to layer ", layer, " in one step than the ", max_new_,
                    " it was sized for (split the run)"));
  if (reposition_ && pos != n)
    throw Error(cat("bounded KV cache: token given position ", pos, ", but re-positioned entries need ", n,
                    " (use next_position())"));
  MNEMO_CHECK(n < cap_, "bounded KV cache over capacity in layer ", layer);
  for (int64_t h = 0; h < shape_.Hkv; ++h) {
    int64_t& start = start_[size_t(layer * shape_.Hkv + h)];
    if (start + n == cap_) {  // the held range reached the end of the storage: back to the front, once
      move_rows(block(layer, h), start, 0, n);
      start = 0;
    }
    const int64_t row = block(layer, h) + start + n;
    std::memcpy(k_.data() + row * hs_, k + h * hs_, size_t(hs_) * sizeof(float));
    std::memcpy(v_.data() + row * hs_, v + h * hs_, size_t(hs_) * sizeof(float));
    pos_[size_t(row)] = pos;
    org_[size_t(row)] = seen_[size_t(layer)];
  }
  ++n;
  ++seen_[size_t(layer)];
  ++pending_[size_t(layer)];
}

void BoundedKvCache::observe(int layer, const float* probs, int64_t H) {
  if (rows_observer_on_) return;  // the full rows come through rows_observer()
  const int64_t n = size_[size_t(layer)];
  observe_rows(layer, AttentionRows{probs, H, 1, n, n});
}

LayerObserver BoundedKvCache::rows_observer() {
  return [this](int layer, const float* probs, const AttentionShape& s) {
    MNEMO_CHECK(s.B == 1 && s.Tk == size_[size_t(layer)], "rows observer: B ", s.B, " Tk ", s.Tk);
    observe_rows(layer, AttentionRows{probs, s.H, s.Tq, s.Tk, s.Tk});
  };
}

void BoundedKvCache::observe_rows(int layer, const AttentionRows& rows) {
  const int64_t n = size_[size_t(layer)];
  MNEMO_CHECK(rows.n == n && rows.H == shape_.H, "observe: ", rows.n, " columns for ", n, " entries, H ", rows.H);
  pending_[size_t(layer)] = 0;
  if (frozen_) return;
  if (policy_->uses_attention()) policy_->observe(layer, rows);
  const int64_t budget = budgets_[size_t(layer)];
  if (n <= budget) return;
  policy_->plan(layer, n, budget, plan_);
  check_plan(plan_, shape_.Hkv);
  MNEMO_CHECK(plan_.n_before == n && plan_.n_keep == budget, "plan keeps ", plan_.n_keep, " of ", plan_.n_before);
  apply(layer, plan_);
  policy_->commit(layer, plan_);
}

void BoundedKvCache::move_rows(int64_t b, int64_t from, int64_t to, int64_t count) {
  if (from == to || count == 0) return;
  std::memmove(k_.data() + (b + to) * hs_, k_.data() + (b + from) * hs_, size_t(count * hs_) * sizeof(float));
  std::memmove(v_.data() + (b + to) * hs_, v_.data() + (b + from) * hs_, size_t(count * hs_) * sizeof(float));
  std::memmove(pos_.data() + b + to, pos_.data() + b + from, size_t(count) * sizeof(int64_t));
  std::memmove(org_.data() + b + to, org_.data() + b + from, size_t(count) * sizeof(int64_t));
}

// The one place entries leave the cache: compact each kv head's held rows to the kept indices, in order.
void BoundedKvCache::apply(int layer, const EvictionPlan& plan) {
  const int64_t half = hs_ / 2, n = plan.n_before, k = plan.n_keep;
  for (int64_t h = 0; h < shape_.Hkv; ++h) {
    int64_t& start = start_[size_t(layer * shape_.Hkv + h)];
    const int64_t b = block(layer, h);
    const int64_t* keep = plan.row(h);
    // Kept entry i goes to held index i either way; in storage it lands at start + i (toward the front) or at
    // start + (n - k) + i (toward the end, and the range then starts n - k later). Move the fewer rows.
    int64_t to_front = 0, to_end = 0;
    for (int64_t i = 0; i < k; ++i) to_front += keep[i] != i, to_end += keep[i] != n - k + i;
    if (to_end <= to_front) {
      for (int64_t i = k - 1; i >= 0; --i) move_rows(b, start + keep[i], start + n - k + i, 1);  // upward: from the end
      start += n - k;
    } else {
      for (int64_t i = 0; i < k; ++i) move_rows(b, start + keep[i], start + i, 1);  // downward: from the front
    }
    if (!reposition_) continue;
    // Entry i came from index keep[i] >= i: rotate its key back by keep[i] - i positions so it sits at position i.
    // Only the rows that moved are rotated (the first index that moved onwards; all later ones moved too).
    int64_t moved = 0;
    while (moved < k && keep[moved] == moved) ++moved;
    const int64_t m = k - moved;
    if (m > 0) {
      if (h == 0 || plan.per_head) {  // per-layer plans move every head the same way: one table
        for (int64_t i = 0; i < m; ++i) shift_[size_t(i)] = (moved + i) - keep[moved + i];
        rope_tables(cos_.data(), sin_.data(), shift_.data(), inv_freq_.data(), m, half);
      }
      float* rows = k_.data() + (b + start + moved) * hs_;  // (m, hs)
      rope_forward(rows, rows, cos_.data(), sin_.data(), m, 1, hs_);
    }
    for (int64_t i = 0; i < k; ++i) pos_[size_t(b + start + i)] = i;
  }
  size_[size_t(layer)] = k;
  evicted_[size_t(layer)] += n - k;
}

}  // namespace mnemo
