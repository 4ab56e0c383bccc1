// quant_matmat (a quantized matrix times a few vectors) against its reference, quant_matvec per vector: for every
// quantizable type, odd row counts (the kernel takes rows in pairs), vector counts around its group of 4, an
// output stride wider than the rows, F32 rows of odd width (a ragged end), and any thread count.
#include "tensor/quant_matmat.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/thread_pool.h"

using namespace mnemo;

namespace {

struct Case {
  std::vector<uint8_t> W;    // (rows, row_bytes)
  std::vector<float> dense;  // (rows, cols): W dequantized
  std::vector<float> X;      // (n, cols)
};

Case make(QType t, int64_t rows, int64_t cols, int64_t n, std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Case c;
  const int64_t rb = row_bytes(t, cols);
  c.W.resize(size_t(rows * rb));
  c.dense.resize(size_t(rows * cols));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = normal(gen);
    quantize_row(t, row.data(), c.W.data() + r * rb, cols);
    dequantize_row(t, c.W.data() + r * rb, c.dense.data() + r * cols, cols);
  }
  c.X.resize(size_t(n * cols));
  for (float& v : c.X) v = normal(gen);
  return c;
}

}  // namespace

TEST(QuantMatmat, MatchesMatvecPerVector) {
  std::mt19937 gen(3);
  for (QType t : {QType::F32, QType::F16, QType::BF16, QType::Q4_0, QType::Q4_1, QType::Q5_0, QType::Q5_1,
                  QType::Q8_0}) {
    const int64_t cols = t == QType::F32 ? 45 : 576;
    for (int64_t rows : {1, 2, 37}) {
      for (int64_t n : {1, 2, 3, 4, 5, 7, 9}) {
        SCOPED_TRACE(testing::Message() << qtype_name(uint32_t(t)) << " rows " << rows << " n " << n);
        Case c = make(t, rows, cols, n, gen);
        const int64_t ldy = rows + 3;
        std::vector<float> got(size_t(n * ldy), -7.0f), want(got);
        quant_matmat(t, got.data(), ldy, c.W.data(), c.X.data(), rows, cols, n);
        ref::quant_matmat(t, want.data(), ldy, c.W.data(), c.X.data(), rows, cols, n);
        for (int64_t b = 0; b < n; ++b)
          for (int64_t r = 0; r < ldy; ++r) {
            const size_t i = size_t(b * ldy + r);
            if (r >= rows) {  // past the rows: untouched
              ASSERT_EQ(got[i], -7.0f);
              continue;
            }
            // Two fp32 sums of `cols` products in different orders differ by at most cols * 2^-24 * sum |w x|;
            // a wrong row, vector or block would be off by about sum |w x| / blocks, far more.
            double sum_abs = 0;
            for (int64_t k = 0; k < cols; ++k)
              sum_abs += std::fabs(double(c.dense[size_t(r * cols + k)]) * c.X[size_t(b * cols + k)]);
            ASSERT_NEAR(got[i], want[i], double(cols) * 0x1p-24 * sum_abs) << "row " << r << " vector " << b;
          }
      }
    }
  }
}

TEST(QuantMatmat, DoesNotDependOnTheThreadCount) {
  std::mt19937 gen(5);
  const int64_t rows = 301, cols = 576, n = 6;
  Case c = make(QType::Q4_1, rows, cols, n, gen);
  std::vector<float> y1(size_t(n * rows)), y2(y1.size());
  const int saved = num_threads();
  set_num_threads(1);
  quant_matmat(QType::Q4_1, y1.data(), rows, c.W.data(), c.X.data(), rows, cols, n);
  set_num_threads(2);
  quant_matmat(QType::Q4_1, y2.data(), rows, c.W.data(), c.X.data(), rows, cols, n);
  set_num_threads(saved);
  EXPECT_EQ(y1, y2);
}
