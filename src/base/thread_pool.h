#pragma once
// One thread pool for every kernel (../shared/STYLE.md #8). A job is called as fn(ith, nth) on nth workers, the
// calling thread being worker 0; work is split by index, never by timing, so results are identical run to run
// for a fixed thread count. Nested calls run inline on the caller (nth = 1).
#include <cstdint>
#include <functional>

namespace mnemo {

// Number of workers used by parallel calls (default: all cores). Set once from -t/--threads.
void set_num_threads(int n);
int num_threads();

// Run fn(ith, nth) for ith in [0, nth) on the pool; returns when all are done.
void parallel_run(const std::function<void(int ith, int nth)>& fn);

// Split [0, n) into nth contiguous chunks and call fn(begin, end) for each, in parallel. Chunks are skipped
// entirely when n is small (below `grain` items per worker) to avoid waking threads for tiny work.
void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn, int64_t grain = 1);

}  // namespace mnemo
