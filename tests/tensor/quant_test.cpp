// Block quantization: layouts, reference vs AVX-512 dequantization (bit-exact), quantize round trips, and the
// quantized matvec against dequantize-then-fp32. Agreement with llama.cpp's own definition of every type is
// checked by tests/oracle/test_formats.py (against the gguf Python package).
#include "tensor/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "tensor/kernels.h"

using namespace mnemo;

namespace {

const QType kAllTypes[] = {QType::F32,  QType::F16,  QType::BF16, QType::Q4_0, QType::Q4_1, QType::Q5_0,
                           QType::Q5_1, QType::Q8_0, QType::Q8_1, QType::Q2_K, QType::Q3_K, QType::Q4_K,
                           QType::Q5_K, QType::Q6_K, QType::Q8_K};

// Offsets of the fp16 scale fields inside one block (random bytes there could be inf/NaN).
std::vector<int> half_fields(QType t) {
  switch (t) {
    case QType::Q4_0: case QType::Q5_0: case QType::Q8_0: return {0};
    case QType::Q4_1: case QType::Q5_1: case QType::Q8_1: case QType::Q4_K: case QType::Q5_K: return {0, 2};
    case QType::Q2_K: return {80, 82};
    case QType::Q3_K: return {108};
    case QType::Q6_K: return {208};
    default: return {};
  }
}

// n values of type t: random quants, finite random scales (so every bit of the layout is exercised).
std::vector<uint8_t> random_row(QType t, int64_t n, std::mt19937& gen) {
  std::vector<uint8_t> bytes(size_t(row_bytes(t, n)));
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& b : bytes) b = uint8_t(byte(gen));
  const int64_t bs = qtype_block_bytes(t), nb = int64_t(bytes.size()) / bs;
  auto put_half = [&](size_t at, float v) {
    uint16_t h = fp32_to_fp16(v);
    std::memcpy(&bytes[at], &h, 2);
  };
  if (t == QType::F32)
    for (int64_t i = 0; i < n; ++i) {
      float v = normal(gen);
      std::memcpy(&bytes[size_t(i) * 4], &v, 4);
    }
  if (t == QType::F16) for (int64_t i = 0; i < n; ++i) put_half(size_t(i) * 2, normal(gen));
  if (t == QType::BF16)
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h = fp32_to_bf16(normal(gen));
      std::memcpy(&bytes[size_t(i) * 2], &h, 2);
    }
  if (t == QType::Q8_K)
    for (int64_t b = 0; b < nb; ++b) {
      float d = 0.01f * normal(gen);
      std::memcpy(&bytes[size_t(b * bs)], &d, 4);
    }
  for (int64_t b = 0; b < nb; ++b)
    for (int off : half_fields(t)) put_half(size_t(b * bs + off), 0.05f * normal(gen));
  return bytes;
}

std::vector<float> deq(QType t, const std::vector<uint8_t>& bytes, int64_t n, bool reference) {
  std::vector<float> out(static_cast<size_t>(n));
  if (reference) ref::dequantize_row(t, bytes.data(), out.data(), n);
  else dequantize_row(t, bytes.data(), out.data(), n);
  return out;
}

}  // namespace

TEST(Quant, LayoutsMatchTheFileFormat) {
  EXPECT_STREQ(qtype_name(3), "Q4_1");
  EXPECT_STREQ(qtype_name(14), "Q6_K");
  EXPECT_EQ(qtype_name(4), nullptr);  // removed Q4_2
  EXPECT_EQ(qtype_name(99), nullptr);
  EXPECT_EQ(row_bytes(QType::Q4_1, 576), 18 * 20);
  EXPECT_EQ(row_bytes(QType::Q8_0, 576), 18 * 34);
  EXPECT_EQ(row_bytes(QType::Q6_K, 512), 2 * 210);
  EXPECT_EQ(row_bytes(QType::BF16, 3), 6);
}

TEST(Quant, HandWorkedBlocks) {
  // Q4_1: d = 0.5, m = -1; value j = 0.5 * q_j - 1 with q_j = j % 16 (low nibbles) and 15 - j % 16 (high).
  BlockQ4_1 b41{};
  b41.d = fp32_to_fp16(0.5f);
  b41.m = fp32_to_fp16(-1.0f);
  for (int j = 0; j < 16; ++j) b41.qs[j] = uint8_t(j | (15 - j) << 4);
  // Q8_0: d = 0.25, q_j = j - 16.
  BlockQ8_0 b80{};
  b80.d = fp32_to_fp16(0.25f);
  for (int j = 0; j < 32; ++j) b80.qs[j] = int8_t(j - 16);
  // Q4_0: d = 2, all nibbles 3 -> (3 - 8) * 2 = -10.
  BlockQ4_0 b40{};
  b40.d = fp32_to_fp16(2.0f);
  std::memset(b40.qs, 0x33, 16);
  // Q5_0: d = 1, nibbles 0, fifth bit set on odd values -> odd: 16 - 16 = 0, even: -16.
  BlockQ5_0 b50{};
  b50.d = fp32_to_fp16(1.0f);
  uint32_t qh = 0xaaaaaaaau;
  std::memcpy(b50.qh, &qh, 4);
  for (bool reference : {true, false}) {
    set_reference_kernels(reference);
    float y[32];
    dequantize_row(QType::Q4_1, &b41, y, 32);
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[j], 0.5f * float(j) - 1.0f);
      EXPECT_EQ(y[j + 16], 0.5f * float(15 - j) - 1.0f);
    }
    dequantize_row(QType::Q8_0, &b80, y, 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.25f * float(j - 16));
    dequantize_row(QType::Q4_0, &b40, y, 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], -10.0f);
    dequantize_row(QType::Q5_0, &b50, y, 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], j % 2 ? 0.0f : -16.0f);
  }
  set_reference_kernels(false);

  // Q6_K: d = 1, scales all 1, every quant 32 + 1 = 33 except value 200 -> 0 (so -32).
  BlockQ6_K b6{};
  b6.d = fp32_to_fp16(1.0f);
  for (auto& s : b6.scales) s = 1;
  for (auto& q : b6.ql) q = 0x11;          // low nibble 1 everywhere
  for (auto& q : b6.qh) q = 0xaa;          // high bits 2 everywhere -> q = 1 | 2 << 4 = 33
  // value 200: half 1, r = 72: ql[64 + 8] high nibble, qh[32 + 8] bits 4..5.
  b6.ql[72] &= 0x0f;
  b6.qh[40] &= uint8_t(~0x30);
  float y6[256];
  dequantize_row(QType::Q6_K, &b6, y6, 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(y6[i], i == 200 ? -32.0f : 1.0f) << i;
}

TEST(Quant, FastDequantizationIsBitExactWithTheReference) {
  std::mt19937 gen(7);
  for (QType t : kAllTypes) {
    const int64_t n = qtype_block_size(t) == 256 ? 1024 : 160;
    for (int rep = 0; rep < 4; ++rep) {
      auto bytes = random_row(t, n, gen);
      auto a = deq(t, bytes, n, true), b = deq(t, bytes, n, false);
      ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << qtype_name(uint32_t(t));
      for (float v : a) ASSERT_TRUE(std::isfinite(v)) << qtype_name(uint32_t(t));
    }
  }
  // Unaligned rows (a GGUF tensor may start at any byte in a hand-made file).
  auto bytes = random_row(QType::F16, 33, gen);
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  std::vector<float> a(33), b(33);
  ref::dequantize_row(QType::F16, bytes.data(), a.data(), 33);
  dequantize_row(QType::F16, shifted.data() + 1, b.data(), 33);
  EXPECT_EQ(a, b);
}

TEST(Quant, QuantizeRoundTripErrorIsWithinHalfAStep) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 256;
  std::vector<float> x(n);
  for (auto& v : x) v = normal(gen);
  x[5] = 0;  // and a block that is all equal values, where d = 0
  std::vector<float> flat(32, 0.75f);
  for (QType t : {QType::Q4_0, QType::Q4_1, QType::Q5_0, QType::Q5_1, QType::Q8_0, QType::F16, QType::BF16}) {
    for (const auto* src : {&x, &flat}) {
      const int64_t m = int64_t(src->size());
      std::vector<uint8_t> q(size_t(row_bytes(t, m)));
      quantize_row(t, src->data(), q.data(), m);
      std::vector<float> back(static_cast<size_t>(m));
      dequantize_row(t, q.data(), back.data(), m);
      for (int64_t b = 0; b < m; b += 32) {
        float lo = (*src)[b], hi = lo, amax = 0;
        for (int j = 0; j < 32; ++j) {
          lo = std::min(lo, (*src)[b + j]);
          hi = std::max(hi, (*src)[b + j]);
          amax = std::max(amax, std::fabs((*src)[b + j]));
        }
        // Step of the grid: range / levels for the asymmetric types, amax / half-levels for the symmetric ones;
        // half a step of rounding plus fp16 rounding of the scale (and min), applied to the largest quant.
        float step = 0;
        switch (t) {
          case QType::Q4_0: step = amax / 8; break;
          case QType::Q5_0: step = amax / 16; break;
          case QType::Q8_0: step = amax / 127; break;
          case QType::Q4_1: step = (hi - lo) / 15; break;
          case QType::Q5_1: step = (hi - lo) / 31; break;
          case QType::F16: step = amax * 0x1p-10f; break;
          case QType::BF16: step = amax * 0x1p-7f; break;
          default: break;
        }
        // Q4_0 / Q5_0 map the extreme value to -8 / -16 steps, so the opposite side only reaches +7 / +15 and a
        // value there can be clamped by up to one whole step.
        const bool clamps = t == QType::Q4_0 || t == QType::Q5_0;
        const float tol = (clamps ? 1.0f : 0.5f) * step + 2 * amax * 0x1p-11f + 1e-7f;
        for (int j = 0; j < 32; ++j)
          ASSERT_NEAR(back[size_t(b + j)], (*src)[b + j], tol) << qtype_name(uint32_t(t)) << " value " << b + j;
      }
    }
  }
}

TEST(Quant, MatvecMatchesDequantizeThenFp32) {
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (QType t : kAllTypes) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 256}, {130, 512}, {5, 1536}}) {
      std::vector<uint8_t> W;
      for (int64_t r = 0; r < rows; ++r) {
        auto row = random_row(t, cols, gen);
        W.insert(W.end(), row.begin(), row.end());
      }
      std::vector<float> x(static_cast<size_t>(cols)), dense(static_cast<size_t>(rows * cols)), want(static_cast<size_t>(rows)), got(static_cast<size_t>(rows)),
          refy(static_cast<size_t>(rows));
      for (auto& v : x) v = normal(gen);
      dequantize_rows(t, W.data(), dense.data(), rows, cols);  // (rows, cols)
      matvec(want.data(), dense.data(), x.data(), nullptr, rows, cols);
      quant_matvec(t, got.data(), W.data(), x.data(), rows, cols);
      ref::quant_matvec(t, refy.data(), W.data(), x.data(), rows, cols);
      for (int64_t r = 0; r < rows; ++r) {
        // fp32 sums of `cols` products in different orders differ by at most cols * 2^-24 * sum |w x| (the
        // classic worst case); a missing or misplaced block would be off by about sum |w x| / blocks, far more.
        double sum_abs = 0;
        for (int64_t c = 0; c < cols; ++c) sum_abs += std::fabs(double(dense[size_t(r * cols + c)]) * x[size_t(c)]);
        const double tol = double(cols) * 0x1p-24 * sum_abs + 1e-30;
        ASSERT_NEAR(got[size_t(r)], want[size_t(r)], tol) << qtype_name(uint32_t(t)) << " row " << r;
        ASSERT_NEAR(got[size_t(r)], refy[size_t(r)], tol) << qtype_name(uint32_t(t)) << " row " << r;
      }
    }
  }
}

TEST(Quant, MatvecDoesNotDependOnTheThreadCount) {
  std::mt19937 gen(5);
  const int64_t rows = 300, cols = 576;
  std::vector<uint8_t> W = random_row(QType::Q4_1, rows * cols, gen);
  std::vector<float> x(static_cast<size_t>(cols)), y1(static_cast<size_t>(rows)), y2(static_cast<size_t>(rows));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(gen);
  const int saved = num_threads();
  set_num_threads(1);
  quant_matvec(QType::Q4_1, y1.data(), W.data(), x.data(), rows, cols);
  set_num_threads(2);
  quant_matvec(QType::Q4_1, y2.data(), W.data(), x.data(), rows, cols);
  set_num_threads(saved);
  EXPECT_EQ(y1, y2);
}

TEST(Quant, Q8VectorRoundsEachValueWithinHalfAStep) {
  std::mt19937 gen(9);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> x(96);
  for (auto& v : x) v = normal(gen);
  for (int j = 32; j < 64; ++j) x[size_t(j)] = 0;  // an all-zero block: d = 0, q = 0
  Q8Vector q;
  quantize_q8_vector(x.data(), 96, &q);
  for (int64_t b = 0; b < 3; ++b) {
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      const size_t i = size_t(b * 32 + j);
      EXPECT_NEAR(q.d[size_t(b)] * float(q.q[i]), x[i], q.d[size_t(b)] / 2 * 1.0001f) << i;
      sum += q.q[i];
    }
    EXPECT_EQ(q.isum[size_t(b)], sum);
    EXPECT_EQ(q.s[size_t(b)], q.d[size_t(b)] * float(sum));
  }
  EXPECT_EQ(q.d[1], 0.0f);
}

TEST(Quant, Q8MatvecMatchesItsReferenceAndStaysWithinTheXRoundingBound) {
  std::mt19937 gen(13);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (QType t : {QType::Q4_0, QType::Q4_1, QType::Q8_0}) {
    ASSERT_TRUE(quant_matvec_q8_supported(t));
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 96}, {130, 576}, {9, 1536}}) {
      std::vector<uint8_t> W = random_row(t, rows * cols, gen);
      std::vector<float> x(static_cast<size_t>(cols)), dense(static_cast<size_t>(rows * cols));
      for (auto& v : x) v = normal(gen);
      dequantize_rows(t, W.data(), dense.data(), rows, cols);  // (rows, cols)
      Q8Vector xq;
      quantize_q8_vector(x.data(), cols, &xq);
      std::vector<float> fast(static_cast<size_t>(rows)), slow(static_cast<size_t>(rows)), exact(static_cast<size_t>(rows));
      quant_matvec_q8(t, fast.data(), W.data(), xq, rows);
      ref::quant_matvec_q8(t, slow.data(), W.data(), xq, rows);
      quant_matvec(t, exact.data(), W.data(), x.data(), rows, cols);
      for (int64_t r = 0; r < rows; ++r) {
        // Fast vs reference: the same exact integer dot per block, fp32 sums in another order (the fp32
        // reordering bound over cols products, as in the fp32-x test).
        double sum_abs = 0, xbound = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const double w = dense[size_t(r * cols + c)];
          sum_abs += std::fabs(w * x[size_t(c)]);
          xbound += std::fabs(w) * xq.d[size_t(c / 32)] / 2;  // each x value moved by at most d/2
        }
        const double fp = double(cols) * 0x1p-24 * (sum_abs + xbound) * 2 + 1e-30;
        ASSERT_NEAR(fast[size_t(r)], slow[size_t(r)], fp) << qtype_name(uint32_t(t)) << " row " << r;
        ASSERT_NEAR(fast[size_t(r)], exact[size_t(r)], xbound + fp) << qtype_name(uint32_t(t)) << " row " << r;
      }
    }
  }
  EXPECT_FALSE(quant_matvec_q8_supported(QType::Q6_K));
}

TEST(Quant, HalfAndF32RowsOfAnyLength) {
  // F32, F16 and BF16 have one value per block, so rows may have any length: the vector loops' ragged ends run.
  std::mt19937 gen(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (QType t : {QType::F32, QType::F16, QType::BF16})
    for (int64_t cols : {1, 7, 9, 17, 24, 37, 100}) {
      const int64_t rows = 5;
      std::vector<uint8_t> W = random_row(t, rows * cols, gen);
      std::vector<float> a = deq(t, W, rows * cols, true), b = deq(t, W, rows * cols, false);
      ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << qtype_name(uint32_t(t)) << " " << cols;
      std::vector<float> x(static_cast<size_t>(cols)), got(static_cast<size_t>(rows)), want(static_cast<size_t>(rows));
      for (auto& v : x) v = normal(gen);
      quant_matvec(t, got.data(), W.data(), x.data(), rows, cols);
      ref::quant_matvec(t, want.data(), W.data(), x.data(), rows, cols);
      for (int64_t r = 0; r < rows; ++r) {
        double sum_abs = 0;  // the fp32 reordering bound, as in MatvecMatchesDequantizeThenFp32
        for (int64_t c = 0; c < cols; ++c) sum_abs += std::fabs(double(a[size_t(r * cols + c)]) * x[size_t(c)]);
        ASSERT_NEAR(got[size_t(r)], want[size_t(r)], double(cols) * 0x1p-24 * sum_abs + 1e-30)
            << qtype_name(uint32_t(t)) << " cols " << cols << " row " << r;
      }
    }
}

TEST(Quant, Q8VectorFastIsBitExactWithTheReference) {
  // The fast quantizer does the reference's arithmetic in lanes, so quants, scales and sums agree bit for bit:
  // on normal values, tiny and large magnitudes, an all-zero block, and exact ties (d = 1, x = k + 0.5: to even).
  std::mt19937 gen(21);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 32 * 6;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = normal(gen) * (i < 32 ? 1.0f : i < 64 ? 1e-30f : 1e4f);
  for (int j = 96; j < 128; ++j) x[size_t(j)] = 0.0f;
  for (int j = 128; j < 160; ++j) x[size_t(j)] = j == 128 ? 127.0f : float(j - 144) + 0.5f;
  for (int j = 160; j < 192; ++j) x[size_t(j)] = j == 170 ? -3e5f : 1e-3f * float(j % 7);
  Q8Vector fast, slow;
  quantize_q8_vector(x.data(), n, &fast);
  ref::quantize_q8_vector(x.data(), n, &slow);
  EXPECT_EQ(fast.n, n);
  EXPECT_EQ(fast.q, slow.q);
  EXPECT_EQ(fast.d, slow.d);
  EXPECT_EQ(fast.s, slow.s);
  EXPECT_EQ(fast.isum, slow.isum);
  EXPECT_EQ(slow.q[size_t(128 + 1)], -14);  // -14.5 ties to even
  EXPECT_EQ(slow.q[size_t(128 + 2)], -14);  // -13.5 ties to even
}

TEST(Quant, Q8MatvecIsExactAtTheExtremeQuants) {
  // The largest integer products each type makes: Q8_0 weights -128 and 127, 4-bit weights 0 and 15, against x
  // quants of +-127. A kernel whose 16-bit pair sums saturated (e.g. one that made Q8_0's weights unsigned by
  // adding 128) would be off by thousands. One block per row and dW = dx = 1, so every output is an exact integer.
  const uint16_t one = fp32_to_fp16(1.0f);
  std::vector<BlockQ8_0> w8(3);
  std::vector<BlockQ4_0> w40(2);
  std::vector<BlockQ4_1> w41(2);
  for (int j = 0; j < 32; ++j) {
    w8[0].qs[j] = -128;
    w8[1].qs[j] = 127;
    w8[2].qs[j] = int8_t(j % 2 ? 127 : -128);
  }
  for (auto& b : w8) b.d = one;
  std::memset(w40[0].qs, 0x00, 16);  // every value 0 - 8
  std::memset(w40[1].qs, 0xff, 16);  // every value 15 - 8
  for (auto& b : w40) b.d = one;
  std::memset(w41[0].qs, 0xff, 16);
  std::memset(w41[1].qs, 0xf0, 16);  // values 0..15 are 0, 16..31 are 15
  for (auto& b : w41) b.d = one, b.m = one;
  for (int sign_pattern = 0; sign_pattern < 2; ++sign_pattern) {
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[size_t(j)] = sign_pattern && j % 3 == 0 ? -127.0f : 127.0f;
    Q8Vector xq;
    quantize_q8_vector(x.data(), 32, &xq);
    ASSERT_EQ(xq.d[0], 1.0f);
    auto check = [&](QType t, const void* W, int64_t rows, auto value) {
      std::vector<float> fast(static_cast<size_t>(rows)), slow(static_cast<size_t>(rows));
      quant_matvec_q8(t, fast.data(), W, xq, rows);
      ref::quant_matvec_q8(t, slow.data(), W, xq, rows);
      for (int64_t r = 0; r < rows; ++r) {
        double want = 0;
        for (int j = 0; j < 32; ++j) want += value(r, j) * double(xq.q[size_t(j)]);
        EXPECT_EQ(fast[size_t(r)], want) << qtype_name(uint32_t(t)) << " row " << r << " pattern " << sign_pattern;
        EXPECT_EQ(slow[size_t(r)], want) << qtype_name(uint32_t(t)) << " row " << r << " pattern " << sign_pattern;
      }
    };
    check(QType::Q8_0, w8.data(), 3, [&](int64_t r, int j) { return double(w8[size_t(r)].qs[j]); });
    check(QType::Q4_0, w40.data(), 2, [&](int64_t r, int j) { return r == 0 ? -8.0 : 7.0; });
    check(QType::Q4_1, w41.data(), 2, [&](int64_t r, int j) { return (r == 0 || j >= 16 ? 15.0 : 0.0) + 1.0; });
  }
}

TEST(Quant, DecodeMatvecTakesTheInt8PathOnlyWhenAskedAndSupported) {
  std::mt19937 gen(23);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t rows = 40, cols = 96;
  std::vector<float> x(static_cast<size_t>(cols));
  for (auto& v : x) v = normal(gen);
  Q8Vector xq;
  quantize_q8_vector(x.data(), cols, &xq);
  for (QType t : {QType::Q4_0, QType::Q4_1, QType::Q8_0, QType::Q5_1, QType::F16}) {
    std::vector<uint8_t> W = random_row(t, rows * cols, gen);
    std::vector<float> fp32x(static_cast<size_t>(rows)), int8x(static_cast<size_t>(rows)), got(static_cast<size_t>(rows));
    quant_matvec(t, fp32x.data(), W.data(), x.data(), rows, cols);
    if (quant_matvec_q8_supported(t)) quant_matvec_q8(t, int8x.data(), W.data(), xq, rows);
    else int8x = fp32x;  // no integer kernel: the fp32-x product either way
    decode_matvec(t, got.data(), W.data(), x.data(), rows, cols);
    EXPECT_EQ(got, fp32x) << qtype_name(uint32_t(t));
    set_int8_decode(true);
    decode_matvec(t, got.data(), W.data(), x.data(), rows, cols);
    set_int8_decode(false);
    EXPECT_EQ(got, int8x) << qtype_name(uint32_t(t));
    if (quant_matvec_q8_supported(t)) {
      EXPECT_NE(int8x, fp32x) << qtype_name(uint32_t(t));  // the two paths do differ
    }
  }
}
