#include "base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mnemo {

namespace {

thread_local bool inside = false;  // this thread is running a pool job: nested calls run inline

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Busy-wait up to budget_ns for ready(); true if it became true. The clock is read every 64 pauses.
template <class Ready>
bool spin_until(const Ready& ready, int64_t budget_ns) {
  if (ready()) return true;
  if (budget_ns <= 0) return false;
  const int64_t start = now_ns();
  for (int i = 1;; ++i) {
    cpu_relax();
    if (ready()) return true;
    if ((i & 63) == 0 && now_ns() - start > budget_ns) return false;
  }
}

// A waiter's spin budget adapts to the gaps it sees: a wait that ended while spinning doubles it; one that slept
// sets it to twice that wait when the wait was shorter than the cap (a longer spin would have caught it) and halves
// it otherwise. On a quiet machine kernels follow each other within microseconds and the spin catches them; under
// load the gaps stretch past the cap and the pool falls back to sleeping (spinning there cost 5x: docs/llama.md).
struct SpinBudget {
  int64_t ns, cap;
  void succeeded() { ns = std::min(cap, ns * 2 + 1000); }
  void slept(int64_t waited_ns) { ns = waited_ns < cap ? std::min(cap, 2 * waited_ns) : ns / 2; }
};

// Cap on one spin, MNEMO_SPIN_US microseconds (0 = always sleep, as the pool did before it spun).
int64_t spin_cap_ns(int nth) {
  if (nth > int(std::max(1u, std::thread::hardware_concurrency()))) return 0;  // oversubscribed: never spin
  static const int64_t cap = [] {
    const char* s = std::getenv("MNEMO_SPIN_US");
    return s ? std::max<int64_t>(0, std::atoll(s)) * 1000 : int64_t(50'000);
  }();
  return cap;
}

// Workers spin, then sleep, waiting for the next generation; the caller does share 0, then spins, then sleeps
// waiting for `pending_` to reach 0. Sleepers are counted so a wake-up costs a futex call only when someone sleeps.
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  void resize(int n) {
    n = std::max(1, n);
    if (n == nth_) return;
    stop();
    nth_ = n;
    quit_.store(false);
    caller_spin_ = {spin_cap_ns(n), spin_cap_ns(n)};
    // A new worker must wait for the NEXT job: it starts from the generation already done.
    const uint64_t g = generation_.load();
    for (int i = 1; i < nth_; ++i) workers_.emplace_back([this, i, g] { loop(i, g); });
  }
  int size() const { return nth_; }

  void run(const std::function<void(int, int)>& fn) {
    if (inside || nth_ == 1) {  // nested or single: run inline
      fn(0, 1);
      return;
    }
    job_.store(&fn, std::memory_order_relaxed);
    pending_.store(nth_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1);  // publishes job_ and pending_
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      wake_.notify_all();
    }
    inside = true;
    fn(0, nth_);
    inside = false;
    await([&] { return pending_.load(std::memory_order_acquire) == 0; }, caller_spin_, done_, caller_sleeping_);
  }

 private:
  // Wait until ready(): spin within the budget, then sleep on cv, counted in `sleepers` so that whoever makes
  // ready() true notifies only when someone sleeps. The count's seq_cst increment, read against the waker's seq_cst
  // store and sleepers read, means no wake-up is lost.
  template <class Ready>
  void await(const Ready& ready, SpinBudget& budget, std::condition_variable& cv, std::atomic<int>& sleepers) {
    const int64_t start = now_ns();
    if (spin_until(ready, budget.ns)) return budget.succeeded();
    {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers.fetch_add(1);
      cv.wait(lk, ready);
      sleepers.fetch_sub(1);
    }
    budget.slept(now_ns() - start);
  }

  void loop(int ith, uint64_t seen) {
    inside = true;
    SpinBudget spin{spin_cap_ns(nth_), spin_cap_ns(nth_)};
    while (true) {
      await([&] { return generation_.load(std::memory_order_acquire) != seen; }, spin, wake_, sleepers_);
      if (quit_.load()) return;
      seen = generation_.load(std::memory_order_acquire);  // run() cannot bump it again before we finish
      (*job_.load(std::memory_order_relaxed))(ith, nth_);
      if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load() > 0) {
        std::lock_guard<std::mutex> lk(mu_);
        done_.notify_one();
      }
    }
  }
  void stop() {
    quit_.store(true);
    generation_.fetch_add(1);
    {
      std::lock_guard<std::mutex> lk(mu_);
      wake_.notify_all();
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int nth_ = 0;
  std::atomic<bool> quit_{false};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};          // workers asleep on wake_
  std::atomic<int> caller_sleeping_{0};   // 1 while the caller sleeps on done_
  std::atomic<const std::function<void(int, int)>*> job_{nullptr};
  SpinBudget caller_spin_{0, 0};
  std::mutex mu_;
  std::condition_variable wake_, done_;
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
