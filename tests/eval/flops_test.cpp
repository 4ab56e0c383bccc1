#include "eval/flops.h"

#include <gtest/gtest.h>

#include "base/error.h"

using namespace mnemo;

// The RMT scaling report (arXiv 2304.11062, Fig. 3) gives about ×295 fewer FLOPs for OPT-125M and ×29 for
// OPT-175B at 2,048,000 tokens with 512-token segments. Our count reproduces both within 2 % (docs/flops.md).
TEST(Flops, ReproducesPublishedRmtRatios) {
  auto ratio = [](const char* name) {
    const auto& m = opt_model(name);
    return forward_flops(m, 2048000).total() / rmt_flops(m, 2048000, 512, 0).total();
  };
  EXPECT_NEAR(ratio("opt-125m"), 295, 295 * 0.02);
  EXPECT_NEAR(ratio("175b"), 29, 29 * 0.02);
}

TEST(Flops, LinearTermsMatchTwiceTheParameterCount) {
  // Non-embedding parameters of OPT-125M: 12 layers × (4d² + 2·d·d_ff) = 84.9M; a forward pass is 2 FLOPs each.
  const auto& m = opt_model("opt-125m");
  FlopsBreakdown f = forward_flops(m, 1);
  EXPECT_DOUBLE_EQ(f.projections + f.ffn, 2.0 * 12 * (4.0 * 768 * 768 + 2.0 * 768 * 3072));
}

TEST(Flops, RmtIsLinearAndFullIsQuadratic) {
  const auto& m = opt_model("opt-1.3b");
  double r1 = rmt_flops(m, 512 * 100, 512, 0).total(), r2 = rmt_flops(m, 512 * 200, 512, 0).total();
  EXPECT_DOUBLE_EQ(r2, 2 * r1);
  // At one segment's length the two agree exactly.
  EXPECT_DOUBLE_EQ(forward_flops(m, 512).total(), rmt_flops(m, 512, 512, 0).total());
  // Memory tokens take text positions: 10 of 512 → ceil(1024/502) = 3 segments.
  EXPECT_DOUBLE_EQ(rmt_flops(m, 1024, 512, 10).total(), 3 * forward_flops(m, 512).total());
}

TEST(Flops, BadInputIsRejected) {
  EXPECT_THROW(opt_model("gpt-9"), Error);
  EXPECT_THROW(rmt_flops(opt_model("125m"), 1000, 512, 512), Error);
}
