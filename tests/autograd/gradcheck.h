#pragma once
// Finite-difference gradient checks for tape-built functions (shared by the autograd and model tests).
//
// Everything is fp32, so the central difference (L(x+h) - L(x-h)) / 2h carries a rounding error of about
// eps_fp32 * |L| / h and a truncation error of O(h^2 L'''). With h = 1e-2 and |L| ~ 1 both are ~1e-4..1e-5, so an
// entry passes when |analytic - fd| <= atol + rtol * max(|analytic|, |fd|) with atol ~ 1e-3 and rtol ~ 2e-2: a
// wrong gradient (a missed term, a transposed index, a wrong sign) is off by O(|g|) and fails by orders of magnitude.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/tape.h"
#include "base/rng.h"

namespace mnemo::testing {

// A tensor under test and where its analytic gradient accumulates.
struct Checked {
  std::string name;
  Tensor value, grad;
};

struct GradCheckOptions {
  float h = 1e-2f, atol = 1e-3f, rtol = 2e-2f;
  int entries = 6;  // random entries per tensor (all when the tensor is smaller)
  uint64_t seed = 1;
};

// f(tape) builds the graph from the Checked values (giving them their grad only when tape.recording()) and
// returns a scalar. Returns the number of entries compared.
inline int gradcheck(const std::function<Var(Tape&)>& f, std::vector<Checked> items, GradCheckOptions o = {}) {
  for (auto& it : items) it.grad.fill(0.0f);
  {
    Tape t(Tape::Mode::Train);
    Var loss = f(t);
    t.backward(loss);
  }
  Tape inf(Tape::Mode::Inference);
  auto eval = [&]() {
    inf.reset();
    return double(f(inf).value[0]);
  };
  Rng rng(o.seed);
  int compared = 0;
  for (auto& it : items) {
    const int64_t n = it.value.numel();
    std::vector<int64_t> idx;
    if (n <= o.entries) {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    } else {
      for (int k = 0; k < o.entries; ++k) idx.push_back(int64_t(rng.below(uint64_t(n))));
    }
    for (int64_t i : idx) {
      const float x0 = it.value[i];
      it.value[i] = x0 + o.h;
      const double lp = eval();
      it.value[i] = x0 - o.h;
      const double lm = eval();
      it.value[i] = x0;
      const double fd = (lp - lm) / (2.0 * double(o.h));
      const double an = it.grad[i];
      const double tol = o.atol + o.rtol * std::max(std::fabs(an), std::fabs(fd));
      EXPECT_LE(std::fabs(an - fd), tol) << it.name << "[" << i << "]: analytic " << an << " vs finite difference "
                                         << fd;
      ++compared;
    }
  }
  return compared;
}

inline Tensor random_tensor(Shape shape, Rng& rng, float scale = 1.0f) {
  Tensor t = Tensor::zeros(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = float(rng.normal()) * scale;
  return t;
}

}  // namespace mnemo::testing
