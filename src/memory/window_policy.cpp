#include "memory/window_policy.h"

#include "base/error.h"

namespace mnemo {

void WindowPolicy::plan(int, int64_t n, int64_t budget, EvictionPlan& plan) {
  MNEMO_CHECK(budget >= 1 && budget < n, "window plan: budget ", budget, " of ", n);
  plan.resize(n, budget, false, 1);
  for (int64_t i = 0; i < budget; ++i) plan.keep[size_t(i)] = n - budget + i;
}

}  // namespace mnemo
