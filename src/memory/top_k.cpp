#include "memory/top_k.h"

#include <algorithm>

#include "base/error.h"

namespace mnemo {

void top_k_indices(const float* scores, int64_t m, int64_t k, int64_t* out, std::vector<int64_t>& order) {
  MNEMO_CHECK(k >= 0 && k <= m, "top_k_indices: k ", k, " of ", m);
  if (k == 0) return;
  order.resize(size_t(m));
  for (int64_t i = 0; i < m; ++i) order[size_t(i)] = i;
  // A strict total order (score, then index), so the choice never depends on the sort's internals.
  auto better = [scores](int64_t a, int64_t b) { return scores[a] != scores[b] ? scores[a] > scores[b] : a > b; };
  if (k < m) std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), better);
  std::sort(order.begin(), order.begin() + k);
  std::copy(order.begin(), order.begin() + k, out);
}

}  // namespace mnemo
