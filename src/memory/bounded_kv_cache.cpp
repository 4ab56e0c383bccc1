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
    std::vector<float> inv_freq(static_cast<size_t>(hs / 2));
    rope_inv_freq(inv_freq.data(), hs, rope->theta, rope->linear_scale);
    // An entry moves back by the number of entries evicted before it in one step: 1 .. max_new (a layer holds at
    // most budget + max_new). One rotation table per distance, made once.
    std::vector<int64_t> back(static_cast<size_t>(max_new));
    for (int64_t d = 0; d < max_new; ++d) back[size_t(d)] = -(d + 1);
    cos_.resize(size_t(max_new * hs / 2));
    sin_.resize(size_t(max_new * hs / 2));
    rope_tables(cos_.data(), sin_.data(), back.data(), inv_freq.data(), max_new, hs / 2);  // (max_new, hs/2) each
  }
  // A layer never holds more than its budget plus one forward call's tokens (nor more than the sequence).
  const int64_t held = max_tokens > 0 ? std::min(most, max_tokens) : most;
  cap_ = held + max_new;
  const size_t blocks = size_t(shape.n_layer) * size_t(shape.Hkv) * size_t(cap_);
  k_.assign(blocks * size_t(hs), 0.0f);
  v_.assign(blocks * size_t(hs), 0.0f);
  pos_.assign(blocks, 0);
  org_.assign(blocks, 0);
  slot_.assign(blocks, 0);
  ev_.resize(size_t(cap_));
  ev_row_.resize(size_t(cap_));
  ev_flag_.resize(size_t(cap_));
  rows_observer_ = [this](int layer, const float* probs, const AttentionShape& s) {
    MNEMO_CHECK(s.B == 1 && s.Tk == size_[size_t(layer)], "rows observer: B ", s.B, " Tk ", s.Tk);
    observe_rows(layer, AttentionRows{probs, s.H, s.Tq, s.Tk, s.Tk});
  };
  reset();
}

void BoundedKvCache::reset() {
  frozen_ = false;
  size_.assign(size_t(shape_.n_layer), 0);
  seen_.assign(size_t(shape_.n_layer), 0);
  evicted_.assign(size_t(shape_.n_layer), 0);
  pending_.assign(size_t(shape_.n_layer), 0);
  policy_->reset(shape_);
}

size_t BoundedKvCache::bytes() const {
  return (k_.size() + v_.size()) * sizeof(float) + (pos_.size() + org_.size() + slot_.size()) * sizeof(int64_t);
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
    const int64_t row = block(layer, h) + n;  // rows [0, n) are held: the new entry is the last row
    std::memcpy(k_.data() + row * hs_, k + h * hs_, size_t(hs_) * sizeof(float));
    std::memcpy(v_.data() + row * hs_, v + h * hs_, size_t(hs_) * sizeof(float));
    pos_[size_t(row)] = pos;
    org_[size_t(row)] = seen_[size_t(layer)];
    slot_[size_t(row)] = n;
  }
  ++n;
  ++seen_[size_t(layer)];
  ++pending_[size_t(layer)];
}

void BoundedKvCache::observe(int layer, const float* probs, int64_t H) {
  if (rows_observer_on_) return;  // the full rows come through rows_observer_
  const int64_t n = size_[size_t(layer)];
  observe_rows(layer, AttentionRows{probs, H, 1, n, n});
}

const LayerObserver* BoundedKvCache::observer_for(bool all_rows) {
  rows_observer_on_ = all_rows && policy_->uses_every_row();
  return rows_observer_on_ ? &rows_observer_ : nullptr;
}

void BoundedKvCache::observe_rows(int layer, const AttentionRows& stored) {
  const int64_t n = size_[size_t(layer)];
  MNEMO_CHECK(stored.n == n && stored.H == shape_.H && !stored.slots, "observe: ", stored.n, " columns for ", n,
              " entries, H ", stored.H);
  pending_[size_t(layer)] = 0;
  if (frozen_) return;
  // Columns are rows of storage; the policy reads entries in arrival order (identical until the first eviction).
  AttentionRows rows = stored;
  if (evicted_[size_t(layer)] > 0)
    rows.slots = slot_.data() + block(layer, 0), rows.slot_stride = cap_, rows.group = shape_.H / shape_.Hkv;
  if (policy_->uses_attention()) policy_->observe(layer, rows);
  const int64_t budget = budgets_[size_t(layer)];
  if (n <= budget) return;
  policy_->plan(layer, n, budget, plan_);
  check_plan(plan_, shape_.Hkv);
  MNEMO_CHECK(plan_.n_before == n && plan_.n_keep == budget, "plan keeps ", plan_.n_keep, " of ", plan_.n_before);
  apply(layer, plan_);
  policy_->commit(layer, plan_);
}

void BoundedKvCache::move_row(int64_t b, int64_t from, int64_t to) {
  std::memcpy(k_.data() + (b + to) * hs_, k_.data() + (b + from) * hs_, size_t(hs_) * sizeof(float));
  std::memcpy(v_.data() + (b + to) * hs_, v_.data() + (b + from) * hs_, size_t(hs_) * sizeof(float));
  pos_[size_t(b + to)] = pos_[size_t(b + from)];
  org_[size_t(b + to)] = org_[size_t(b + from)];
}

// The one place entries leave the cache. Per kv head: the evicted entries are the gaps in the kept indices (found
// by binary search: keep[p] - p, the entries evicted before keep[p], never decreases); the order index closes up
// over them (memmove); rows below n_keep that held an evicted entry are holes, and the kept entries in rows at or
// above n_keep (exactly as many) move into them — so rows [0, n_keep) are held again, having moved only those.
// O(evicted * log n) plus a memmove of the order index: one eviction moves one row whatever the budget.
void BoundedKvCache::apply(int layer, const EvictionPlan& plan) {
  const int64_t n = plan.n_before, k = plan.n_keep, e = n - k;
  for (int64_t h = 0; h < shape_.Hkv; ++h) {
    const int64_t b = block(layer, h);
    int64_t* slot = slot_.data() + b;
    const int64_t* org = org_.data() + b;
    const int64_t* keep = plan.row(h);
    // The evicted arrival indices, ascending (ev_), their rows (ev_row_), and which rows >= k they free (ev_flag_).
    std::fill(ev_flag_.begin(), ev_flag_.begin() + e, 0);
    for (int64_t found = 0, p = 0; found < e;) {
      int64_t hi = k;  // p = the first kept index with more than `found` evictions before it
      while (p < hi) {
        const int64_t mid = (p + hi) / 2;
        if (keep[mid] - mid > found) hi = mid; else p = mid + 1;
      }
      const int64_t upto = p < k ? keep[p] - p : e;
      for (int64_t x = found; x < upto; ++x) ev_[size_t(x)] = p + x;
      found = upto;
    }
    for (int64_t x = 0; x < e; ++x) {
      const int64_t row = ev_row_[size_t(x)] = slot[ev_[size_t(x)]];
      if (row >= k) ev_flag_[size_t(row - k)] = 1;
    }
    for (int64_t x = 0; x < e; ++x) {  // close up: entries after the x-th eviction move x + 1 places down
      const int64_t from = ev_[size_t(x)] + 1, to = x + 1 < e ? ev_[size_t(x + 1)] : n;
      std::memmove(slot + from - x - 1, slot + from, size_t(to - from) * sizeof(int64_t));
    }
    // Each row k..n-1 still held moves into the next hole (an evicted row below k); its arrival index is found by
    // its origin (origins ascend in arrival order).
    int64_t hole = 0;
    for (int64_t r = k; r < n; ++r) {
      if (ev_flag_[size_t(r - k)]) continue;
      while (ev_row_[size_t(hole)] >= k) ++hole;
      const int64_t to = ev_row_[size_t(hole++)];
      const int64_t i = std::partition_point(slot, slot + k, [&](int64_t q) { return org[q] < org[r]; }) - slot;
      MNEMO_CHECK(i < k && slot[i] == r, "bounded KV cache: row ", r, " not found in arrival order");
      move_row(b, r, to);
      slot[i] = to;
    }
    if (reposition_) reposition(layer, h, plan);
  }
  size_[size_t(layer)] = k;
  evicted_[size_t(layer)] += e;
}

void BoundedKvCache::reposition(int layer, int64_t h, const EvictionPlan& plan) {
  // Entry i came from arrival index keep[i] >= i: rotate its key back by keep[i] - i so it sits at position i.
  // keep[i] - i never decreases, so the entries that moved are those from the first one that did.
  const int64_t half = hs_ / 2, k = plan.n_keep, b = block(layer, h);
  const int64_t* keep = plan.row(h);
  const int64_t* slot = slot_.data() + b;
  int64_t i = 0;
  while (i < k && keep[i] == i) ++i;
  for (; i < k; ++i) {
    const int64_t d = keep[i] - i, row = b + slot[i];  // d in [1, max_new]
    MNEMO_CHECK(d >= 1 && d <= max_new_, "re-positioning: an entry moves back ", d, " positions");
    float* key = k_.data() + row * hs_;  // (hs)
    rope_forward(key, key, cos_.data() + (d - 1) * half, sin_.data() + (d - 1) * half, 1, 1, hs_);
    pos_[size_t(row)] = i;
  }
}

}  // namespace mnemo
