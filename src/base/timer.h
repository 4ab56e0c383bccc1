#pragma once
// Wall-clock timing and resident-memory readings for progress lines and benchmarks.
#include <chrono>
#include <cstdint>

namespace mnemo {

class Timer {
 public:
  Timer() : t0_(std::chrono::steady_clock::now()) {}
  void reset() { t0_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// Peak resident set size of this process so far, in bytes (getrusage).
int64_t peak_rss_bytes();
// Current resident set size, in bytes (/proc/self/statm).
int64_t current_rss_bytes();

}  // namespace mnemo
