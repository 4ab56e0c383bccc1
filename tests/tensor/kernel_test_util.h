#pragma once
// Helpers for the kernel tests: seeded random data, a scope that selects fast or reference kernels, a comparison
// that reports the worst element, and a central-difference gradient check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "tensor/kernels.h"

namespace mnemo::test {

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

inline std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// Selects the fast (false) or reference (true) kernels for one scope.
struct KernelMode {
  explicit KernelMode(bool reference) : saved(reference_kernels()) { set_reference_kernels(reference); }
  ~KernelMode() { set_reference_kernels(saved); }
  bool saved;
};

// |a - b| <= atol + rtol * |b| for every element; on failure names the worst one.
inline void expect_close(const std::vector<float>& a, const std::vector<float>& b, double atol, double rtol,
                         const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  size_t worst = 0;
  double worst_excess = -1e300;
  for (size_t i = 0; i < a.size(); ++i) {
    double excess = std::fabs(double(a[i]) - double(b[i])) - (atol + rtol * std::fabs(double(b[i])));
    if (!(excess <= worst_excess) || std::isnan(excess)) {
      worst_excess = std::isnan(excess) ? 1e300 : excess;
      worst = i;
    }
  }
  EXPECT_LE(worst_excess, 0.0) << what << ": element " << worst << " is " << a[worst] << ", expected " << b[worst]
                               << " (atol " << atol << ", rtol " << rtol << ")";
}

// Central differences: for each x[i], (L(x + h) - L(x - h)) / (x+h - (x-h)), h = eps, compared with analytic[i].
// L is evaluated by running the float kernels and summing in double (so the sum adds no rounding of its own).
inline void expect_gradient(std::vector<float>& x, const std::vector<float>& analytic,
                            const std::function<double()>& loss, float eps, double atol, double rtol,
                            const std::string& what) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  std::vector<float> numeric(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float saved = x[i];
    const float up = saved + eps, down = saved - eps;
    x[i] = up;
    const double lp = loss();
    x[i] = down;
    const double lm = loss();
    x[i] = saved;
    numeric[i] = float((lp - lm) / (double(up) - double(down)));  // the step as actually represented
  }
  expect_close(analytic, numeric, atol, rtol, what + " gradient vs central differences");
}

// Runs `body` in a fresh copy of this test program (a death test in the "threadsafe" style, which re-executes the
// binary) whose pool is given `threads` workers before any parallel work, exactly as the mnemo program does once
// from -t; the test passes when body reaches the end and the child exits 0. Changing the thread count of a pool
// that has already run jobs is avoided on purpose: in base/thread_pool.cpp a freshly started worker can pick up
// the previous, finished job (reported; see docs/kernels.md).
#define MNEMO_EXPECT_WITH_THREADS(threads, body)                                           \
  do {                                                                                     \
    GTEST_FLAG_SET(death_test_style, "threadsafe");                                        \
    EXPECT_EXIT(                                                                           \
        {                                                                                  \
          ::mnemo::set_num_threads(threads);                                               \
          body;                                                                            \
          std::exit(0);                                                                    \
        },                                                                                 \
        ::testing::ExitedWithCode(0), "")                                                  \
        << "with " << (threads) << " threads";                                             \
  } while (0)

// sum_i out[i] * w[i] in double: the scalar loss whose gradient wrt out is w.
inline double dot(const std::vector<float>& out, const std::vector<float>& w) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += double(out[i]) * double(w[i]);
  return s;
}

}  // namespace mnemo::test
