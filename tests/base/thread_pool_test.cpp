#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
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

TEST(ThreadPool, BackToBackAndSpacedJobsAllRunOnEveryWorker) {
  // Workers spin between close jobs and sleep through long gaps; both paths must hand every job to every worker.
  mnemo::set_num_threads(2);
  std::vector<int64_t> per_worker(2, 0);
  int64_t expected = 0;
  for (int round = 0; round < 200; ++round) {
    for (int j = 0; j < 50; ++j) {
      mnemo::parallel_run([&](int ith, int) { per_worker[size_t(ith)] += j; });
      expected += j;
    }
    if (round % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past any spin
  }
  EXPECT_EQ(per_worker[0], expected);
  EXPECT_EQ(per_worker[1], expected);
}
