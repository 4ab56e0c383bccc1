#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int nth : {1, 2, 3}) {
    mnemo::set_num_threads(nth);
    std::vector<int> hits(1001, 0);
    mnemo::parallel_for(1001, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
    });
    for (int h : hits) ASSERT_EQ(h, 1);
  }
}

TEST(ThreadPool, NestedCallsRunInline) {
  mnemo::set_num_threads(2);
  std::atomic<int> total{0};
  mnemo::parallel_run([&](int, int) {
    mnemo::parallel_for(100, [&](int64_t b, int64_t e) { total += int(e - b); });
  });
  EXPECT_EQ(total.load(), 200);
}

TEST(ThreadPool, ResizingAUsedPoolStartsWorkersIdle) {
  // A worker created after jobs have run must not run the last (finished) job again.
  std::atomic<int> total{0};
  for (int round = 0; round < 20; ++round) {
    mnemo::set_num_threads(2);
    mnemo::parallel_run([&](int, int) { total++; });
    mnemo::set_num_threads(1);
    mnemo::set_num_threads(2);
    mnemo::parallel_run([&](int, int) { total++; });
  }
  EXPECT_EQ(total.load(), 80);
}
