#include "train/optimizer.h"

#include <cmath>

#include "base/error.h"
#include "base/thread_pool.h"

namespace mnemo {

AdamW::AdamW(ParameterSet& params, AdamWConfig cfg) : params_(params), cfg_(cfg) {
  m_ = Tensor::zeros({params.numel()});
  v_ = Tensor::zeros({params.numel()});
}

void AdamW::step(float lr) {
  ++step_;
  int64_t off = 0;
  for (auto& p : params_.all()) {
    AdamWConfig c = cfg_;
    c.lr = lr;
    if (p.value.rank() < 2) c.weight_decay = 0;
    int64_t n = p.value.numel();
    adamw_update(p.value.data(), p.grad.data(), m_.data() + off, v_.data() + off, n, c, step_);
    off += n;
  }
  MNEMO_CHECK(off == params_.numel(), "optimizer state covers ", off, " of ", params_.numel(), " values");
}

double clip_grad_norm(std::initializer_list<ParameterSet*> sets, double max_norm) {
  double sq = 0;
  for (ParameterSet* ps : sets)
    if (Tensor& g = ps->grad_storage(); g.defined()) sq += sum_squares(g.data(), g.numel());
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const float scale = float(max_norm / (norm + 1e-6));
    for (ParameterSet* ps : sets)
      if (Tensor& g = ps->grad_storage(); g.defined())
        parallel_for(
            g.numel(),
            [&, d = g.data()](int64_t i0, int64_t i1) {
              for (int64_t i = i0; i < i1; ++i) d[i] *= scale;
            },
            16384);
  }
  return norm;
}

double LrSchedule::at(int64_t step) const {
  if (warmup > 0 && step < warmup) return peak * double(step + 1) / double(warmup);
  if (total <= warmup) return peak;
  double f = std::min(1.0, double(step - warmup) / double(total - warmup));
  return peak * (1.0 - f * (1.0 - final_fraction));
}

}  // namespace mnemo
