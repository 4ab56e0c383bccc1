// The SIMD layer itself (tensor/simd.h), for whichever width this build compiled (16 lanes with AVX-512, 8 with
// AVX2, 1 scalar): partial loads and stores touch only their lanes (checked against a page that faults), the
// reductions, copysign and abs, and exp against std::exp over its whole range, ends included.
#include "tensor/simd.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <vector>

namespace mnemo::simd {
namespace {

std::vector<float> lanes(Vf a) {
  std::vector<float> out(static_cast<size_t>(kLanes));
  store(out.data(), a);
  return out;
}

Vf ramp(float start) {  // start, start + 1, ... in the lanes
  std::vector<float> v(static_cast<size_t>(kLanes));
  for (int64_t i = 0; i < kLanes; ++i) v[size_t(i)] = start + float(i);
  return load(v.data());
}

TEST(Simd, PartialLoadAndStoreTouchOnlyTheirLanes) {
  // A row that ends exactly where an inaccessible page begins: reading or writing one float too far faults.
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  ASSERT_EQ(mprotect(static_cast<char*>(mem) + page, page, PROT_NONE), 0);
  float* end = reinterpret_cast<float*>(static_cast<char*>(mem) + page);
  for (int64_t n = 0; n < kLanes; ++n) {
    float* p = end - n;  // (n) the last n floats of the page
    for (int64_t i = 0; i < n; ++i) p[i] = float(10 + i);
    const std::vector<float> got = lanes(loadn(p, n, -3.0f));
    for (int64_t i = 0; i < kLanes; ++i) EXPECT_EQ(got[size_t(i)], i < n ? float(10 + i) : -3.0f) << n << " " << i;
    EXPECT_EQ(lanes(loadn(p, n))[size_t(kLanes - 1)], n == kLanes ? float(10 + n - 1) : 0.0f);  // fill defaults to 0
    if (n > 0) p[-1] = 99.0f;  // a guard before the row
    storen(p, ramp(100.0f), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(p[i], 100.0f + float(i));
    if (n > 0) {
      EXPECT_EQ(p[-1], 99.0f);
    }
  }
  munmap(mem, 2 * page);
}

TEST(Simd, ReductionsSignAndAbs) {
  EXPECT_EQ(reduce_add(ramp(1.0f)), float(kLanes * (kLanes + 1) / 2));
  EXPECT_EQ(reduce_max(ramp(-50.0f)), -50.0f + float(kLanes - 1));
  EXPECT_EQ(reduce_max(set1(-std::numeric_limits<float>::infinity())), -std::numeric_limits<float>::infinity());
  const std::vector<float> c = lanes(copysign(ramp(1.0f), set1(-0.0f))), a = lanes(abs(ramp(-3.5f)));
  for (int64_t i = 0; i < kLanes; ++i) {
    EXPECT_EQ(c[size_t(i)], -(1.0f + float(i)));
    EXPECT_EQ(a[size_t(i)], std::fabs(-3.5f + float(i)));
  }
  EXPECT_EQ(lanes(copysign(set1(-2.0f), set1(3.0f)))[0], 2.0f);
}

TEST(Simd, ExpMatchesStdExpOverItsRange) {
  // Within 2 ulp where the result is a normal float (the polynomial's truncation is 6e-9 relative, the rest is
  // rounding); where it is subnormal, within 1 unit of the smallest subnormal (the last product rounds once).
  // Beyond the float range: +inf above ln(FLT_MAX) = 88.72, 0 for -inf and far below.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> xs = {-inf, -1e30f, -104.0f, -103.3f, -87.5f, -87.33f, -10.0f, -1e-8f, -0.0f, 0.0f, 1e-8f,
                           0.34657f, 1.0f, 20.0f, 88.72f, 88.75f, 88.8f, 1e30f, inf};
  for (float x = -105.0f; x < 90.0f; x += 0.0137f) xs.push_back(x);
  xs.resize((xs.size() + size_t(kLanes) - 1) / size_t(kLanes) * size_t(kLanes), 0.5f);
  std::vector<float> ys(xs.size());
  for (size_t i = 0; i < xs.size(); i += size_t(kLanes)) store(ys.data() + i, exp(load(xs.data() + i)));
  for (size_t i = 0; i < xs.size(); ++i) {
    const float want = std::exp(xs[i]), got = ys[i];
    if (std::isinf(want) || want == 0.0f) {
      EXPECT_EQ(got, want) << "x = " << xs[i];
    } else if (want < std::numeric_limits<float>::min()) {
      EXPECT_NEAR(got, want, std::numeric_limits<float>::denorm_min()) << "x = " << xs[i];
    } else {
      const float ulp = std::nextafter(want, inf) - want;
      EXPECT_NEAR(got, want, 2 * ulp) << "x = " << xs[i];
    }
  }
}

}  // namespace
}  // namespace mnemo::simd
