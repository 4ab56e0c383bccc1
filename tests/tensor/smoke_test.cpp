// Hand-computed values for the reference kernels (the fuller checks live in the other tests of this directory).
#include <gtest/gtest.h>

#include <cmath>

#include "tensor/kernels.h"

using namespace mnemo;

TEST(KernelsSmoke, GemmTwoByTwo) {
  const float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8};  // (2,2) each
  float C[4] = {0, 0, 0, 0};
  ref::gemm(false, false, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
  EXPECT_FLOAT_EQ(C[0], 19);
  EXPECT_FLOAT_EQ(C[1], 22);
  EXPECT_FLOAT_EQ(C[2], 43);
  EXPECT_FLOAT_EQ(C[3], 50);
}

TEST(KernelsSmoke, SoftmaxOfEqualLogitsIsUniform) {
  const float x[3] = {2, 2, 2};
  float y[3];
  softmax_forward(y, x, 1, 3);
  for (float p : y) EXPECT_FLOAT_EQ(p, 1.0f / 3.0f);
}

TEST(KernelsSmoke, CrossEntropyOfUniformLogitsIsLogV) {
  const float x[4] = {0, 0, 0, 0};
  const int32_t t[1] = {2};
  float loss[1];
  crossentropy_forward(loss, x, t, 1, 4);
  EXPECT_NEAR(loss[0], std::log(4.0f), 1e-6f);
}
