#pragma once
// Kernel profiler for performance work: with MNEMO_PROFILE=1 in the environment, each public kernel entry point
// (and each gemm shape) adds its wall time to a table that is printed to stderr when the program exits, sorted by
// total time. Off (the default) it costs one predictable branch per kernel call. Times are inclusive: linear
// includes the gemm it calls, which also appears under its own shape.
#include <chrono>
#include <cstdint>

namespace mnemo::prof {

bool enabled();
// Add `seconds` to the entry `name` (with an optional shape suffix) — thread-safe.
void add(const char* name, int64_t a, int64_t b, int64_t c, double seconds);

// Times the enclosing scope under name (and up to three sizes) when profiling is on.
class Scope {
 public:
  Scope(const char* name, int64_t a = -1, int64_t b = -1, int64_t c = -1) {
    if (enabled()) {
      name_ = name, a_ = a, b_ = b, c_ = c;
      t0_ = std::chrono::steady_clock::now();
    }
  }
  ~Scope() {
    if (name_) add(name_, a_, b_, c_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_ = nullptr;
  int64_t a_ = -1, b_ = -1, c_ = -1;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace mnemo::prof
