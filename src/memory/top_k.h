#pragma once
// Selection shared by the scoring policies: the k entries with the largest scores, returned in cache order.
#include <cstdint>
#include <vector>

namespace mnemo {

// out (k) = the indices in [0, m) of the k largest scores[i], ascending. Ties go to the larger index (the more
// recent entry stays). order is scratch (grown as needed). Requires 0 <= k <= m.
void top_k_indices(const float* scores, int64_t m, int64_t k, int64_t* out, std::vector<int64_t>& order);

}  // namespace mnemo
