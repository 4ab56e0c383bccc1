#include "memory/top_k.h"

#include <algorithm>

#include "base/error.h"

namespace mnemo {

void top_k_indices(const float* scores, int64_t m, int64_t k, int64_t* out, std::vector<int64_t>& order) {
  MNEMO_CHECK(k >= 0 && k <= m, "top_k_indices: k ", k, " of ", m);
  // A strict total order (score, then index), so the choice never depends on the selection's internals.
  auto better = [scores](int64_t a, int64_t b) { return scores[a] != scores[b] ? scores[a] > scores[b] : a > b; };
  if (k == 0) return;
  if (k >= m - 1) {  // all, or all but the worst (one entry leaves at a decode step): one scan
    int64_t worst = m;
    if (k == m - 1) {
      worst = 0;
      for (int64_t i = 1; i < m; ++i)
        if (better(worst, i)) worst = i;
    }
    for (int64_t i = 0, c = 0; i < m; ++i)
      if (i != worst) out[c++] = i;
    return;
  }
  order.resize(size_t(m));
  for (int64_t i = 0; i < m; ++i) order[size_t(i)] = i;
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), better);
  const int64_t last = order[size_t(k - 1)];  // the k-th best: the selection is it and every index better
  // In index order, without sorting the selection: O(m).
  int64_t c = 0;
  for (int64_t i = 0; i < m; ++i)
    if (i == last || better(i, last)) out[c++] = i;
  MNEMO_CHECK(c == k, "top_k_indices: selected ", c, " of ", k);
}

}  // namespace mnemo
