#include "memory/sink_policy.h"

#include "base/error.h"

namespace mnemo {

SinkPolicy::SinkPolicy(int64_t n_sink, std::unique_ptr<EvictionPolicy> rest)
    : n_sink_(n_sink), rest_(std::move(rest)) {
  MNEMO_CHECK(n_sink_ >= 0 && rest_, "SinkPolicy: ", n_sink_, " sinks");
}

std::string SinkPolicy::name() const {
  const std::string base = cat("sink:", n_sink_);
  return rest_->name() == "window" ? base : cat(base, "+", rest_->name());
}

void SinkPolicy::reset(const CacheShape& shape) {
  Hkv_ = shape.Hkv;
  rest_->reset(shape);
}

void SinkPolicy::observe(int layer, const AttentionRows& rows) {
  // The inner policy only ever sees the entries after the sinks; while the sinks fill up it sees nothing.
  if (rows.n > n_sink_) rest_->observe(layer, rows.columns(n_sink_, rows.n - n_sink_));
}

void SinkPolicy::plan(int layer, int64_t n, int64_t budget, EvictionPlan& plan) {
  MNEMO_CHECK(budget >= min_budget() && budget < n, "sink plan: budget ", budget, " of ", n);
  // The sinks are indices [0, S): they arrive first and are never evicted, so they stay at the front.
  rest_->plan(layer, n - n_sink_, budget - n_sink_, inner_);
  plan.resize(n, budget, inner_.per_head, Hkv_);
  const int64_t rows = inner_.per_head ? Hkv_ : 1;
  for (int64_t h = 0; h < rows; ++h) {
    int64_t* r = plan.row(h);
    const int64_t* in = inner_.row(h);
    for (int64_t i = 0; i < n_sink_; ++i) r[i] = i;
    for (int64_t i = 0; i < inner_.n_keep; ++i) r[n_sink_ + i] = n_sink_ + in[i];
  }
}

void SinkPolicy::commit(int layer, const EvictionPlan& plan) {
  // The plan is the one plan() built from inner_: hand the inner policy its own part.
  MNEMO_CHECK(plan.n_before == inner_.n_before + n_sink_ && plan.n_keep == inner_.n_keep + n_sink_,
              "sink commit: plan does not match the last plan()");
  rest_->commit(layer, inner_);
}

}  // namespace mnemo
