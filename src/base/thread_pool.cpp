#include "base/thread_pool.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace mnemo {

namespace {

thread_local bool inside = false;  // this thread is running a pool job: nested calls run inline

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  void resize(int n) {
    n = std::max(1, n);
    if (n == nth_) return;
    stop();
    nth_ = n;
    quit_ = false;
    // A new worker must wait for the NEXT job: it starts from the generation already done.
    for (int i = 1; i < nth_; ++i) workers_.emplace_back([this, i, g = generation_] { loop(i, g); });
  }
  int size() const { return nth_; }

  void run(const std::function<void(int, int)>& fn) {
    if (inside || nth_ == 1) {  // nested or single: run inline
      fn(0, 1);
      return;
    }
    {
      std::unique_lock<std::mutex> lk(mu_);
      job_ = &fn;
      pending_ = nth_ - 1;
      ++generation_;
    }
    cv_.notify_all();
    inside = true;
    fn(0, nth_);
    inside = false;
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int ith, uint64_t seen) {
    inside = true;
    while (true) {
      const std::function<void(int, int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        job = job_;
      }
      (*job)(ith, nth_);
      std::lock_guard<std::mutex> lk(mu_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int nth_ = 0;
  bool quit_ = false;
  uint64_t generation_ = 0;
  int pending_ = 0;
  const std::function<void(int, int)>* job_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_, done_;
  std::vector<std::thread> workers_;
};

Pool& pool() {
  static Pool p(int(std::max(1u, std::thread::hardware_concurrency())));
  return p;
}

}  // namespace

void set_num_threads(int n) { pool().resize(n); }
int num_threads() { return pool().size(); }

void parallel_run(const std::function<void(int, int)>& fn) { pool().run(fn); }

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  int nth = num_threads();
  if (nth == 1 || n < 2 * std::max<int64_t>(grain, 1)) {
    fn(0, n);
    return;
  }
  parallel_run([&](int ith, int nth) {
    int64_t begin = n * ith / nth, end = n * (ith + 1) / nth;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace mnemo
