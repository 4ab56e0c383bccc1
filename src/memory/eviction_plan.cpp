#include "memory/eviction_plan.h"

#include "base/error.h"

namespace mnemo {

void check_plan(const EvictionPlan& plan, int64_t Hkv) {
  MNEMO_CHECK(plan.n_keep >= 0 && plan.n_keep <= plan.n_before, "plan keeps ", plan.n_keep, " of ", plan.n_before);
  const int64_t rows = plan.per_head ? Hkv : 1;
  MNEMO_CHECK(int64_t(plan.keep.size()) == rows * plan.n_keep, "plan has ", plan.keep.size(), " indices, expected ",
              rows * plan.n_keep);
  for (int64_t h = 0; h < rows; ++h) {
    const int64_t* r = plan.row(h);
    for (int64_t i = 0; i < plan.n_keep; ++i) {
      MNEMO_CHECK(r[i] >= 0 && r[i] < plan.n_before, "plan index ", r[i], " outside [0, ", plan.n_before, ")");
      MNEMO_CHECK(i == 0 || r[i] > r[i - 1], "plan indices not strictly ascending at ", i, " (head ", h, ")");
    }
  }
}

}  // namespace mnemo
